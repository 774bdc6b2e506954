"""What a call's response said: read from a whole body or from a stream's events as they come, and turned into the
call span's attributes when the call ends.

A `Call` owns the span, the attempts and the end; it asks the reader of its response (`ResponseReader`) for the rest:

    attempt_seen → body_sink / body_done (a body the application reads) or absorb (a body the SDK read)
                 → event (each event of a stream) → attributes, cost, record → span events → record_metrics

`MessageReader` reads the Messages API (`messages.create`, `messages.stream`, `count_tokens`, in every variant);
`claude_otel._batches.BatchReader` reads the Message Batches API. Neither trusts a type (see `claude_otel._extract`):
a field that is missing or of another type yields nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from ._extract import as_int, as_str, field, fields_of, put
from ._prices import Cost, round_cost

if TYPE_CHECKING:
    from ._call import Call, Request
    from ._content import Recorder
    from ._prices import PriceTable

log = logging.getLogger("claude_otel")


class ResponseReader:
    """What a `Call` asks of the reader of its response. The defaults read a JSON body and record nothing of it.

    `Call` calls these inside its own guards; a reader's method may raise, and the call records what it has.
    """

    __slots__ = ()

    sees_attempts = False
    """Whether `attempt_seen` reads anything: a call asks it of each attempt only then."""

    def attempt_seen(self, response_or_error: object) -> None:
        """An attempt got its response (headers), or failed without one (when `sees_attempts`)."""

    def body_sink(self, content_type: str) -> Any:
        """What keeps the bytes of a successful body as they are read, for `body_done`; `None` keeps nothing."""
        return [] if "json" in content_type else None

    def body_done(self, sink: Any) -> None:
        """The application read the body to its end; `sink` is what `body_sink` gave, with the bytes."""
        if isinstance(sink, list):
            self.absorb(json.loads(b"".join(sink)))

    def absorb(self, data: object) -> None:
        """Reads a whole response body: the SDK's model, or decoded JSON."""

    def event(self, event: object) -> None:
        """Reads one event of a stream. Never raises."""

    def stream_complete(self) -> bool:
        """Whether the stream read to its end was whole (for a Message: it had `message_stop`)."""
        return True

    def attributes(self, attributes: dict[str, AttributeValue], started: float) -> None:
        """Adds what the response said to the call span's final `attributes`; `started` is the call's
        `time.perf_counter()` start."""

    def cost(self, attributes: dict[str, AttributeValue], prices: PriceTable) -> Cost | None:
        """Adds the call's cost to `attributes` and returns it; `None` for a call with no cost of its own."""
        return None

    def record(self, span: Span, attributes: dict[str, AttributeValue], metric_base: dict[str, AttributeValue]) -> None:
        """Adds the span events of what the response said (a refusal; the content, when captured) to `span`."""

    def failure_event(
        self, attributes: dict[str, AttributeValue], failure: Exception | None, duration: float
    ) -> dict[str, AttributeValue]:
        """The attributes of the span event of a body whose reading failed or was cut short: what had arrived."""
        return {sc.ERROR_TYPE: attributes[sc.ERROR_TYPE], sc.CLAUDE_OTEL_ELAPSED: duration}

    def record_metrics(self, call: Call, attributes: dict[str, AttributeValue], outcome: str | None) -> None:
        """Records the metrics of the response beyond the call's own (`claude_otel._metrics`)."""


class MessageReader(ResponseReader):
    """Reads a Message (whole, or as a stream of events) or a token count. `event` runs for every event of a stream,
    so it reads as little as it can: the counts and the final fields, never the content unless it is captured."""

    __slots__ = (
        "compaction",
        "count_tokens",
        "deltas",
        "events",
        "first_chunk",
        "id",
        "model",
        "output_tokens",
        "recorder",
        "request",
        "saw_message_delta",
        "saw_message_stop",
        "stop_category",
        "stop_reason",
        "stop_type",
        "tool_calls",
        "usage",
    )

    def __init__(self, request: Request, recorder: Recorder | None) -> None:
        self.request = request
        self.recorder = recorder
        """The call's content when the application captures it, else `None`: nothing of it is read."""
        self.events = 0
        self.deltas = 0
        self.first_chunk: float | None = None
        self.saw_message_stop = False
        self.saw_message_delta = False
        self.id: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.stop_category: str | None = None
        self.stop_type: str | None = None
        self.usage: dict[str, Any] = {}
        """The usage fields as the API reports them (Anthropic's `input_tokens` excludes cache reads and writes)."""
        self.output_tokens: int | None = None
        self.compaction: tuple[int, int] | None = None
        self.tool_calls: list[tuple[str, str, str]] | None = None
        """(name, id, `gen_ai.tool.type`) of each tool the model called, when it called any."""
        self.count_tokens: int | None = None

    # --- reading --------------------------------------------------------------------------------------------------

    def body_sink(self, content_type: str) -> Any:
        # A stream of events is read by `event`, not from its bytes.
        return None if self.request.streams else super().body_sink(content_type)

    def absorb(self, data: object) -> None:
        if data is None:
            return
        if self.request.operation == sc.OPERATION_COUNT_TOKENS:
            self.count_tokens = as_int(field(data, "input_tokens"))
            return
        self._message(data, complete=True)
        if self.recorder is not None:
            self.recorder.message(data)

    def event(self, event: object) -> None:
        """Called for every event of a stream, so the common case is first."""
        self.events += 1
        try:
            kind = event.type  # type: ignore[attr-defined]
            if kind == "content_block_delta":
                self.deltas += 1
                if self.first_chunk is None:
                    self.first_chunk = time.perf_counter()
                if self.recorder is not None:
                    self.recorder.delta(event)
            elif kind == "message_start":
                self._message(event.message, complete=False)  # type: ignore[attr-defined]
            elif kind == "message_delta":
                self.saw_message_delta = True
                delta = event.delta  # type: ignore[attr-defined]
                self.stop_reason = as_str(field(delta, "stop_reason")) or self.stop_reason
                self._stop_details(field(delta, "stop_details"))
                usage = fields_of(event.usage)  # type: ignore[attr-defined]
                # Cumulative: the last `message_delta` has the whole count. Never added to `message_start`'s.
                self.output_tokens = as_int(usage.get("output_tokens"))
                self._usage(usage)
                self.compaction = _compaction(usage) or self.compaction
            elif kind == "message_stop":
                self.saw_message_stop = True
            elif kind == "content_block_start":
                self._block(event.content_block)  # type: ignore[attr-defined]
                if self.recorder is not None:
                    self.recorder.block_start(event)
            elif kind not in OTHER_EVENTS:
                log.debug("claude_otel: unknown stream event type %r, passed on as it is", kind)
        except Exception:
            log.debug("claude_otel: could not record a stream event", exc_info=True)

    def stream_complete(self) -> bool:
        return self.saw_message_stop

    def _message(self, message: object, complete: bool) -> None:
        fields = fields_of(message)
        self.id = as_str(fields.get("id")) or self.id
        self.model = as_str(fields.get("model")) or self.model
        usage = fields_of(fields.get("usage"))
        self._usage(usage)
        if not complete:
            # `message_start` has placeholders for the stop reason and the output tokens; `message_delta` has them.
            return
        self.stop_reason = as_str(fields.get("stop_reason"))
        self._stop_details(fields.get("stop_details"))
        self.output_tokens = as_int(usage.get("output_tokens"))
        self.compaction = _compaction(usage)
        content = fields.get("content")
        if isinstance(content, list):
            for block in content:
                self._block(block)

    def _block(self, block: object) -> None:
        """Keeps the name and id of a tool call block (`tool_use`, `server_tool_use`, `mcp_tool_use`): never its
        input."""
        fields = fields_of(block)
        kind = TOOL_BLOCKS.get(fields.get("type"))  # type: ignore[arg-type]
        if kind is not None:
            calls = self.tool_calls if self.tool_calls is not None else []
            calls.append((as_str(fields.get("name")) or "unknown", as_str(fields.get("id")) or "", kind))
            self.tool_calls = calls

    def _usage(self, usage: Mapping[str, Any]) -> None:
        """Keeps the fields of `usage` (see `fields_of`) that are present: a `message_delta` whose usage lacks the
        cache counts keeps those of `message_start` rather than zeroing them."""
        for name in USAGE_FIELDS:
            value = usage.get(name)
            if value is not None:
                self.usage[name] = value

    def _stop_details(self, details: object) -> None:
        if details is not None:
            self.stop_category = as_str(field(details, "category"))
            self.stop_type = as_str(field(details, "type"))

    # --- the end --------------------------------------------------------------------------------------------------

    def attributes(self, attributes: dict[str, AttributeValue], started: float) -> None:
        """Adds a Message's id, model, stop reason and usage, or a token count."""
        if self.request.operation == sc.OPERATION_COUNT_TOKENS:
            put(attributes, sc.ANTHROPIC_COUNT_TOKENS_INPUT_TOKENS, self.count_tokens)
            return
        put(attributes, sc.GEN_AI_RESPONSE_ID, self.id)
        put(attributes, sc.GEN_AI_RESPONSE_MODEL, self.model)
        if self.first_chunk is not None:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk - started
        # Stop reason and output tokens are final only from a whole Message or a `message_delta`.
        final = not self.request.streams or self.saw_message_delta
        stop_reason = self.stop_reason if final else None
        if stop_reason is not None and stop_reason not in STOP_REASONS:
            log.debug("claude_otel: unknown stop_reason %r, recorded as it is", stop_reason)
        if final and not self.usage:
            log.debug("claude_otel: the response of %s has no usage", attributes.get(sc.ANTHROPIC_REQUEST_ID, "a call"))
        put(attributes, sc.ANTHROPIC_STOP_REASON, stop_reason)
        put(attributes, sc.ANTHROPIC_STOP_DETAILS_CATEGORY, self.stop_category if final else None)
        put(attributes, sc.ANTHROPIC_STOP_DETAILS_TYPE, self.stop_type if final else None)
        attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [
            sc.FINISH_REASONS.get(stop_reason, stop_reason) if stop_reason else sc.FINISH_REASON_ERROR
        ]
        self._usage_attributes(attributes, final)

    def _usage_attributes(self, attributes: dict[str, AttributeValue], final: bool) -> None:
        usage = self.usage
        input_tokens = as_int(usage.get("input_tokens"))
        cache_read = as_int(usage.get("cache_read_input_tokens"))
        cache_write = as_int(usage.get("cache_creation_input_tokens"))
        if input_tokens is not None:
            # The conventions' rule for Anthropic: input tokens include the cache reads and writes.
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens + (cache_read or 0) + (cache_write or 0)
        put(attributes, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read)
        put(attributes, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, cache_write)
        for attribute, path, convert in USAGE_ATTRIBUTES:
            put(attributes, attribute, convert(_at(usage, path)))
        if not final:
            return
        put(attributes, sc.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens)
        for attribute, path, convert in FINAL_USAGE_ATTRIBUTES:
            put(attributes, attribute, convert(_at(usage, path)))
        if self.compaction is not None:
            attributes[sc.ANTHROPIC_COMPACTION_INPUT_TOKENS] = self.compaction[0]
            attributes[sc.ANTHROPIC_COMPACTION_OUTPUT_TOKENS] = self.compaction[1]
        if self.tool_calls:
            names, ids, types = zip(*self.tool_calls)
            attributes[sc.CLAUDE_OTEL_TOOL_CALLS_NAMES] = names
            attributes[sc.CLAUDE_OTEL_TOOL_CALLS_IDS] = ids
            attributes[sc.CLAUDE_OTEL_TOOL_CALLS_TYPES] = types

    def cost(self, attributes: dict[str, AttributeValue], prices: PriceTable) -> Cost | None:
        """Adds the cost of a chat call and its parts (rounded: see `round_cost`) to `attributes`; `None`, marked
        unpriced, when its model or a line of its usage has no price, and for a call with no usage."""
        if self.request.operation != sc.OPERATION_CHAT or sc.GEN_AI_USAGE_INPUT_TOKENS not in attributes:
            return None
        price = prices.price(self.model or self.request.model or "")
        batch = self.usage.get("service_tier") == "batch"
        output = self.output_tokens if attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) is not None else 0
        cost = prices.cost(price, self.usage, output or 0, batch) if price is not None else None
        if not isinstance(cost, Cost):
            attributes[sc.CLAUDE_OTEL_COST_UNPRICED] = True
            return None
        attributes[sc.CLAUDE_OTEL_COST_USD] = round_cost(cost.total)
        # The parts that are not zero: most calls write or read no cache, and each attribute costs the span.
        for name, value in (
            (sc.CLAUDE_OTEL_COST_INPUT_USD, cost.input),
            (sc.CLAUDE_OTEL_COST_CACHE_WRITE_USD, cost.cache_write),
            (sc.CLAUDE_OTEL_COST_CACHE_READ_USD, cost.cache_read),
            (sc.CLAUDE_OTEL_COST_OUTPUT_USD, cost.output),
            (sc.CLAUDE_OTEL_COST_SERVER_TOOLS_USD, cost.server_tools),
            (sc.CLAUDE_OTEL_COST_SURCHARGE_USD, cost.surcharge),
            (sc.CLAUDE_OTEL_COST_CACHE_SAVINGS_USD, cost.cache_savings),
        ):
            if value:
                attributes[name] = round_cost(value)
        return cost

    def record(self, span: Span, attributes: dict[str, AttributeValue], metric_base: dict[str, AttributeValue]) -> None:
        if self.recorder is not None:
            self.recorder.record(span, attributes, metric_base)
        if self.stop_reason == "refusal" and attributes.get(sc.ANTHROPIC_STOP_REASON) == "refusal":
            keys = (sc.ANTHROPIC_STOP_DETAILS_TYPE, sc.ANTHROPIC_STOP_DETAILS_CATEGORY, sc.ANTHROPIC_REQUEST_ID)
            span.add_event(sc.EVENT_REFUSAL, {key: attributes[key] for key in keys if key in attributes})

    def failure_event(
        self, attributes: dict[str, AttributeValue], failure: Exception | None, duration: float
    ) -> dict[str, AttributeValue]:
        return {
            sc.ERROR_TYPE: attributes[sc.ERROR_TYPE],
            sc.CLAUDE_OTEL_STREAM_EVENTS: self.events,
            sc.CLAUDE_OTEL_STREAM_CONTENT_DELTAS: self.deltas,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: self.output_tokens or 0,
            sc.CLAUDE_OTEL_ELAPSED: duration,
            sc.EXCEPTION_MESSAGE: str(failure) if failure is not None else "The stream ended before message_stop.",
        }


USAGE_FIELDS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "service_tier",
    "cache_creation",
    "output_tokens_details",
    "server_tool_use",
    "speed",
    "inference_geo",
    "iterations",
)
"""The usage fields a `MessageReader` keeps (`output_tokens` apart: a stream's final count is in `message_delta`)."""

USAGE_ATTRIBUTES = (
    (sc.ANTHROPIC_CACHE_5M_INPUT_TOKENS, ("cache_creation", "ephemeral_5m_input_tokens"), as_int),
    (sc.ANTHROPIC_CACHE_1H_INPUT_TOKENS, ("cache_creation", "ephemeral_1h_input_tokens"), as_int),
    (sc.ANTHROPIC_RESPONSE_SERVICE_TIER, ("service_tier",), as_str),
)
"""The usage fields that are attributes as they are, however the reading ended: attribute, path in `usage`,
conversion. (The token counts apart: `gen_ai.usage.input_tokens` adds three of them.)"""

FINAL_USAGE_ATTRIBUTES = ((sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, ("output_tokens_details", "thinking_tokens"), as_int),)
"""The usage fields that are attributes as they are, from a whole Message or a `message_delta` only."""

OTHER_EVENTS = frozenset({"content_block_stop", "ping", "error"})
"""The stream events a `MessageReader` reads nothing from; any other type than these and the ones it reads is new."""

STOP_REASONS = frozenset(
    {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
        "compaction",  # Beta: the turn stopped after compacting its context (`pause_after_compaction`).
    }
)
"""The stop reasons claude_otel knows; another is recorded as it is, and logged at debug level.
`tests/test_sdk_drift.py` checks that the installed SDK declares no other."""

TOOL_BLOCKS = {
    "tool_use": sc.TOOL_TYPE_FUNCTION,
    "server_tool_use": sc.TOOL_TYPE_EXTENSION,
    "mcp_tool_use": sc.TOOL_TYPE_EXTENSION,  # Beta: a tool of a remote MCP server, which the API calls itself.
}
"""The content blocks that are tool calls, and their `gen_ai.tool.type`."""


def _at(usage: Mapping[str, Any], path: tuple[str, ...]) -> object:
    """The field at `path` in `usage` (a dict, or models nested in it); `None` when any step is missing."""
    value = usage.get(path[0])
    for name in path[1:]:
        value = field(value, name)
    return value


def _compaction(usage: Mapping[str, Any]) -> tuple[int, int] | None:
    """The input and output tokens of the compactions of a beta Message, which its usage totals leave out."""
    entries = usage.get("iterations")
    if not isinstance(entries, list):
        return None
    compactions = [entry for entry in entries if field(entry, "type") == "compaction"]
    if not compactions:
        return None

    def tokens(entry: object, name: str) -> int:
        return as_int(field(entry, name)) or 0

    return (
        sum(
            tokens(entry, "input_tokens")
            + tokens(entry, "cache_read_input_tokens")
            + tokens(entry, "cache_creation_input_tokens")
            for entry in compactions
        ),
        sum(tokens(entry, "output_tokens") for entry in compactions),
    )


def decoded_json(http_response: Any) -> object:
    """The decoded body of a read response (`with_raw_response`), or `None` for an unread or non-JSON one."""
    if not http_response.is_closed:
        return None
    media_type = http_response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return None
    return json.loads(http_response.content)
