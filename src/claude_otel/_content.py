"""Opt-in capture of what was said: system instructions, input and output messages, and tool definitions.

Off by default: prompts and completions are the application's users' data. The mode, as the GenAI instrumentations
of OpenTelemetry name it:

    NO_CONTENT      nothing (the default)
    SPAN_ONLY       JSON strings on the call span: `gen_ai.system_instructions`, `gen_ai.input.messages`,
                    `gen_ai.output.messages`, `gen_ai.tool.definitions`
    EVENT_ONLY      the same, structured, on the event `gen_ai.client.inference.operation.details`, a log record of
                    the OpenTelemetry logs signal (so only with a logger provider)
    SPAN_AND_EVENT  both

It is the `capture_content` option of `instrument()`, else `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
(case-insensitive; any other value warns once and means NO_CONTENT), else what the SDK's own tracing was told: a
client whose SDK option or `ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE` is `content` gets SPAN_ONLY, within the
SDK's `max_content_bytes` for it, so that replacing the SDK's spans by ours keeps the content they had.

The values follow the JSON schemas of the GenAI conventions (parts `text`, `reasoning`, `tool_call`,
`tool_call_response`; an output message has its `finish_reason`), with the Anthropic SDK's own mapping of content
blocks: a block of any other kind keeps only its type, as `anthropic_<type>`, and images and documents never keep
their data. All the content of a call together is kept within `max_content_bytes` bytes of UTF-8 JSON (option, else
`CLAUDE_OTEL_MAX_CONTENT_BYTES`, else 750000, the SDK's default): the longest strings are shortened first, to the same
length, and the JSON keeps its structure; `claude_otel.content.truncated` says when anything was cut. A
`content_hook` sees the content first and returns what to record (`None`: nothing), to redact it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from ._extract import field, fields_of
from ._warnings import warn

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider
    from opentelemetry.trace import Span

log = logging.getLogger("claude_otel")

NO_CONTENT = "NO_CONTENT"
SPAN_ONLY = "SPAN_ONLY"
EVENT_ONLY = "EVENT_ONLY"
SPAN_AND_EVENT = "SPAN_AND_EVENT"
MODES = (NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT)

ENV_MODE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_MAX_BYTES = "CLAUDE_OTEL_MAX_CONTENT_BYTES"
ENV_SDK_MODE = "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"
DEFAULT_MAX_BYTES = 750_000

ContentHook = Callable[[dict[str, Any]], Any]

# The content's keys, in the order in which they are recorded.
_KEYS = (sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_TOOL_DEFINITIONS)

# What the event has besides the content: the call's identity and result, as on its span.
_EVENT_KEYS = (
    sc.GEN_AI_RESPONSE_ID,
    sc.GEN_AI_RESPONSE_MODEL,
    sc.GEN_AI_RESPONSE_FINISH_REASONS,
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.ERROR_TYPE,
)


class ContentCapture:
    """What `instrument()` was told about content, for every call: `recorder` gives a call its `Recorder`."""

    def __init__(
        self,
        mode: str | None,
        max_bytes: int | None,
        hook: ContentHook | None,
        logger_provider: LoggerProvider | None,
    ) -> None:
        """`mode` and `max_bytes` are `None` when neither the option nor the environment sets them."""
        self._mode = mode
        self._max_bytes = max_bytes
        self._hook = hook
        # For an SDK without its own tracing, whose clients have no option that says it.
        self._sdk_env_mode = SPAN_ONLY if os.environ.get(ENV_SDK_MODE, "").strip().lower() == "content" else None
        self._logger: Logger | None = None
        if logger_provider is not None and mode in (EVENT_ONLY, SPAN_AND_EVENT):
            from .version import __version__

            self._logger = logger_provider.get_logger("claude_otel", __version__)

    @classmethod
    def configure(
        cls, mode: str | None, max_bytes: int | None, hook: ContentHook | None, logger_provider: LoggerProvider | None
    ) -> ContentCapture:
        """From `instrument()`'s options, as `claude_otel._options` checked them, and the environment for an option
        left at `None`: an environment value that is not valid warns (`ConfigurationWarning`) and is not used."""
        if mode is not None:
            mode = mode.strip().upper()
        elif os.environ.get(ENV_MODE, "").strip():
            mode = os.environ[ENV_MODE].strip().upper()
            if mode not in MODES:
                warn(f"claude_otel: {ENV_MODE}={os.environ[ENV_MODE]!r} is not one of {', '.join(MODES)}; no content is captured")
                mode = NO_CONTENT
        if max_bytes is None and os.environ.get(ENV_MAX_BYTES, "").strip():
            text = os.environ[ENV_MAX_BYTES].strip()
            # `isdecimal` and a bounded length: `int()` refuses a number of thousands of digits, by raising.
            max_bytes = int(text) if text.isascii() and text.isdecimal() and len(text) < 19 and int(text) >= 1 else None
            if max_bytes is None:
                warn(f"claude_otel: {ENV_MAX_BYTES}={text!r} is not a whole number >= 1; using {DEFAULT_MAX_BYTES}")
        if mode in (EVENT_ONLY, SPAN_AND_EVENT) and logger_provider is None:
            warn(f"claude_otel: content capture {mode} needs a logger provider for its events; none is set")
        return cls(mode, max_bytes, hook, logger_provider)

    def recorder(self, span: Span, body: object, sdk_options: object) -> Recorder | None:
        """The `Recorder` of a chat call whose request body is `body`, or `None` when nothing is to be captured.

        `sdk_options` is the client's resolved `open_telemetry` option (SDK >= 1.14), `None` before. Never raises.
        """
        mode, limit = self._mode, self._max_bytes
        try:
            if mode is None:
                traces = sdk_options.get("traces") if isinstance(sdk_options, Mapping) else None
                if isinstance(traces, Mapping):
                    mode = SPAN_ONLY if traces.get("content_mode") == "content" else None
                    sdk_limit = traces.get("max_content_bytes")
                    limit = limit or (sdk_limit if isinstance(sdk_limit, int) and sdk_limit >= 1 else None)
                elif sdk_options is None:
                    mode = self._sdk_env_mode
            if mode is None or mode == NO_CONTENT:
                return None
            on_span = mode in (SPAN_ONLY, SPAN_AND_EVENT) and span.is_recording()
            logger = self._logger if mode in (EVENT_ONLY, SPAN_AND_EVENT) else None
            if not on_span and logger is None:
                return None
            return Recorder(body, on_span, logger, limit or DEFAULT_MAX_BYTES, self._hook)
        except Exception:
            log.debug("claude_otel: could not read the content of a request", exc_info=True)
            return None


class Recorder:
    """The content of one call: its request's, read when it starts, and its response's, as it arrives.

    Every method is called by the call's `Call` and never raises.
    """

    __slots__ = ("_blocks", "_hook", "_limit", "_logger", "_on_span", "_output", "_request")

    def __init__(self, body: object, on_span: bool, logger: Logger | None, limit: int, hook: ContentHook | None) -> None:
        self._on_span = on_span
        self._logger = logger
        self._limit = limit
        self._hook = hook
        # Copied now: the application may change its messages (append the answer, say) before the call ends.
        self._request = request_content(body)
        self._output: list[Any] | None = None
        # A streamed answer's content blocks by index: the block that `content_block_start` gave, and its deltas.
        self._blocks: dict[int, tuple[dict[str, Any], list[str]]] | None = None

    def message(self, message: object) -> None:
        """The whole answer, a Message as a model or as decoded JSON."""
        try:
            content = field(message, "content")
            if isinstance(content, (list, tuple)):
                self._output = parts(content)
        except Exception:
            log.debug("claude_otel: could not read the content of a response", exc_info=True)

    def block_start(self, event: object) -> None:
        try:
            index = field(event, "index")
            block = plain(field(event, "content_block"))
            if isinstance(index, int) and isinstance(block, dict):
                if self._blocks is None:
                    self._blocks = {}
                self._blocks[index] = (block, [])
        except Exception:
            log.debug("claude_otel: could not read a content block of a stream", exc_info=True)

    def delta(self, event: object) -> None:
        """A `content_block_delta`: its text, thinking or tool input JSON is added to its block."""
        try:
            fields = fields_of(event)  # Once per event, and once for its delta: this runs for every delta.
            index = fields.get("index")
            entry = self._blocks.get(index) if self._blocks is not None and isinstance(index, int) else None
            if entry is None:
                return
            delta = fields_of(fields.get("delta"))
            piece = delta.get(_DELTA_FIELDS.get(str(delta.get("type")), "text"))
            if isinstance(piece, str):
                entry[1].append(piece)
        except Exception:
            log.debug("claude_otel: could not read a content delta of a stream", exc_info=True)

    def record(self, span: Span, attributes: Mapping[str, AttributeValue], base: Mapping[str, AttributeValue]) -> None:
        """Records the call's content on `span` and in its event, after the hook; `attributes` are its final ones."""
        try:
            content = dict(self._request)
            output = self._output if self._output is not None else self._streamed_output()
            if output is not None:
                reasons = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
                reason = reasons[0] if isinstance(reasons, (list, tuple)) and reasons else sc.FINISH_REASON_ERROR
                content[sc.GEN_AI_OUTPUT_MESSAGES] = [{"role": "assistant", "parts": output, "finish_reason": reason}]
            if self._hook is not None:
                content = self._hook(content)
                if content is None:
                    return
                if not isinstance(content, Mapping):
                    raise TypeError(f"the content hook returned {type(content).__name__}, not a mapping or None")
            values = {key: content[key] for key in _KEYS if content.get(key) is not None}
            if not values:
                return
            values, texts, truncated = fit(values, self._limit)
        except Exception:
            log.debug("claude_otel: could not capture the content of a call; none is recorded", exc_info=True)
            return
        if self._on_span:
            try:
                span.set_attributes({**texts, **({sc.CLAUDE_OTEL_CONTENT_TRUNCATED: True} if truncated else {})})
            except Exception:
                log.debug("claude_otel: could not record the content of a call on its span", exc_info=True)
        if self._logger is not None:
            self._emit(span, values, truncated, attributes, base)

    def _streamed_output(self) -> list[Any] | None:
        if self._blocks is None:
            return None
        blocks = []
        for index in sorted(self._blocks):
            block, pieces = self._blocks[index]
            kind = block.get("type")
            if pieces and kind in ("text", "thinking"):
                start = block.get(kind)
                block = {**block, kind: (start if isinstance(start, str) else "") + "".join(pieces)}
            elif pieces:
                text = "".join(pieces)
                try:
                    arguments = json.loads(text)
                except ValueError:
                    arguments = text  # Cut short: the JSON as far as it came.
                block = {**block, "input": arguments}
            blocks.append(block)
        return parts(blocks)

    def _emit(
        self,
        span: Span,
        values: dict[str, Any],
        truncated: bool,
        attributes: Mapping[str, AttributeValue],
        base: Mapping[str, AttributeValue],
    ) -> None:
        try:
            from opentelemetry._logs import LogRecord, SeverityNumber
            from opentelemetry.trace import set_span_in_context

            event_attributes: dict[str, Any] = {**base}
            event_attributes.update({key: attributes[key] for key in _EVENT_KEYS if key in attributes})
            event_attributes.update(values)
            if truncated:
                event_attributes[sc.CLAUDE_OTEL_CONTENT_TRUNCATED] = True
            assert self._logger is not None
            self._logger.emit(
                LogRecord(
                    context=set_span_in_context(span),
                    severity_number=SeverityNumber.INFO,
                    event_name=sc.EVENT_INFERENCE_DETAILS,
                    attributes=event_attributes,
                )
            )
        except Exception:
            log.debug("claude_otel: could not emit the content event of a call", exc_info=True)


_DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
"""The field of each kind of delta that adds to its block's content. Any other kind (a signature, a citation) adds
nothing."""


# --- the content as the conventions' JSON schemas have it ------------------------------------------------------------


def request_content(body: object) -> dict[str, Any]:
    """The system instructions, input messages and tool definitions of a request body."""
    content: dict[str, Any] = {}
    if not isinstance(body, Mapping):
        return content
    system = body.get("system")
    if system is not None:
        content[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = parts(system)
    messages = body.get("messages")
    content[sc.GEN_AI_INPUT_MESSAGES] = [
        {"role": str(field(message, "role") or "user"), "parts": parts(field(message, "content"))}
        for message in (messages if isinstance(messages, (list, tuple)) else [])
    ]
    tools = body.get("tools")
    if isinstance(tools, (list, tuple)) and tools:
        content[sc.GEN_AI_TOOL_DEFINITIONS] = [tool_definition(tool) for tool in tools]
    return content


def parts(content: object) -> list[Any]:
    """The parts of a message's `content`: a string, or a list of content blocks."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, (list, tuple)):
        return [part(block) for block in content]
    return []


def part(block: object) -> dict[str, Any]:
    """One content block as a part: the same as the SDK's own tracing makes of it."""
    kind = field(block, "type")
    if kind == "text":
        return {"type": "text", "content": plain(field(block, "text"))}
    if kind == "thinking":
        return {"type": "reasoning", "content": plain(field(block, "thinking"))}
    if kind in ("tool_use", "server_tool_use", "mcp_tool_use"):
        call = {"type": "tool_call", "id": field(block, "id"), "name": field(block, "name")}
        call["arguments"] = plain(field(block, "input"))
        if kind == "mcp_tool_use":
            call["anthropic_mcp_server_name"] = field(block, "server_name")
        elif kind == "tool_use" and isinstance(field(block, "toolset_name"), str):
            call["anthropic_toolset_name"] = field(block, "toolset_name")
        return call
    if isinstance(kind, str) and (kind == "tool_result" or kind.endswith("_tool_result")):
        response = field(block, "content")
        return {
            "type": "tool_call_response",
            "id": field(block, "tool_use_id"),
            "response": [{"type": "text", "text": response}] if isinstance(response, str) else without_data(response),
        }
    return {"type": f"anthropic_{kind}" if isinstance(kind, str) else "anthropic_unknown"}


def tool_definition(tool: object) -> dict[str, Any]:
    """A tool as the conventions define one: a `function` with its schema, or the type of a server tool."""
    kind = field(tool, "type")
    if kind in (None, "custom"):
        definition = {"type": "function", "name": field(tool, "name")}
        description = field(tool, "description")
        if description is not None:
            definition["description"] = plain(description)
        definition["parameters"] = plain(field(tool, "input_schema"))
        return definition
    return {"type": plain(kind), "name": plain(field(tool, "name"))}


def without_data(value: object) -> Any:
    """`value` as plain data, without image and document data and `encrypted_` fields, which are bulk, not words."""
    if isinstance(value, (list, tuple)):
        return [without_data(item) for item in value]
    value = plain(value)
    if not isinstance(value, dict):
        return value
    if value.get("type") in ("image", "document"):
        return {"type": value["type"]}
    return {key: without_data(item) for key, item in value.items() if not key.startswith("encrypted_")}


def plain(value: object) -> Any:
    """A copy of `value` as JSON data: the application's objects are never recorded (or changed) themselves."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return plain(dump(mode="json", exclude_unset=True, warnings=False))
    return str(value)


# --- truncation ------------------------------------------------------------------------------------------------------


def to_json(value: object) -> str:
    """Compact JSON, as the SDK's own tracing writes content, never with a character that UTF-8 cannot encode."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # A lone surrogate, which no exporter could send.
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def fit(values: dict[str, Any], limit: int) -> tuple[dict[str, Any], dict[str, str], bool]:
    """`values` within `limit` bytes of JSON in all: the values, their JSON, and whether any string was shortened.

    Strings are shortened from their ends, the longest first and all to one length, so that short ones (roles,
    types, names, short turns) stay whole while one huge document gives up what it must. Keys, numbers and the
    structure stay as they are; if those alone exceed `limit`, every value is an empty list.
    """
    texts = {key: to_json(value) for key, value in values.items()}
    total = sum(map(utf8_size, texts.values()))
    if total <= limit:
        return values, texts, False
    sizes: list[int] = []
    _string_sizes(values, sizes)
    room = limit - (total - sum(sizes))
    if room < 0:
        return {key: [] for key in values}, {key: "[]" for key in values}, True
    cap = _level(sorted(sizes), room)
    values = {key: _shortened(value, cap) for key, value in values.items()}
    return values, {key: to_json(value) for key, value in values.items()}, True


def _string_sizes(value: object, sizes: list[int]) -> None:
    """Appends the size of the JSON of each string in `value`, without its quotes, which stay whatever its length."""
    if isinstance(value, str):
        sizes.append(utf8_size(to_json(value)) - 2)
    elif isinstance(value, dict):
        for item in value.values():
            _string_sizes(item, sizes)
    elif isinstance(value, list):
        for item in value:
            _string_sizes(item, sizes)


def _level(sizes: list[int], room: int) -> int:
    """The largest size that strings of `sizes` (ascending) can be cut to with all of them within `room`."""
    for index, size in enumerate(sizes):
        count = len(sizes) - index
        if size * count > room:
            return room // count
        room -= size
    return sizes[-1] if sizes else 0


def _shortened(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return _cut(value, cap)
    if isinstance(value, dict):
        return {key: _shortened(item, cap) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item, cap) for item in value]
    return value


def _cut(text: str, cap: int) -> str:
    """The longest start of `text` whose JSON, without its quotes, is at most `cap` bytes of UTF-8."""

    def size(length: int) -> int:
        return utf8_size(to_json(text[:length])) - 2

    if size(len(text)) <= cap:
        return text
    low, high = 0, min(len(text), cap)  # No character is less than one byte.
    while low < high:
        middle = (low + high + 1) // 2
        if size(middle) <= cap:
            low = middle
        else:
            high = middle - 1
    return text[:low]
