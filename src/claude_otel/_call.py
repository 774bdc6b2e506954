"""One API call, observed from its start to the end of its span.

An "API call" is one invocation of an SDK method that claude_otel traces (`messages.create`, `messages.stream`,
`messages.count_tokens`, ... in every variant), with every HTTP attempt the SDK makes for it and the reading of the
body it returns. Each has one CLIENT span, the "call span", which a `Call` owns:

    request → `Call.start` → attempts (`attempt_sent` / `attempt_returned` / `attempt_failed` / `retry_scheduled`)
            → response (`returned`) or stream events (`event`) → `end` → span end → request log

`end` runs once, whoever calls it first: the request wrapper for a call that failed or returned a read body, the
event wrapper of a stream, or the body wrapper of a body that is closed, dropped or read without a stream.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from . import _errors
from . import _semconv as sc
from ._attempts import AttemptRecord, emit_spans, request_url, response_headers, start_span, url_attributes
from ._extract import as_int, as_str, field, fields_of
from ._prices import Cost, round_cost

if TYPE_CHECKING:
    from ._attribution import CardinalityGuard, ResultAttribution
    from ._batches import BatchRegistry
    from ._content import ContentCapture, Recorder
    from ._metrics import Metrics
    from ._prices import PriceTable
    from ._request_log import RequestLog

log = logging.getLogger("claude_otel")


class Outcome:
    """How the reading of a streamed body ended (`claude_otel.stream.outcome`)."""

    COMPLETED = "completed"
    """Read to its end: `message_stop` for a stream of events."""
    ABANDONED = "abandoned"
    """The application stopped reading: it broke out, closed the stream, dropped it, or its task was cancelled."""
    FAILED = "failed"
    """Reading raised: an `error` event, a dropped connection, a read timeout."""
    TRUNCATED = "truncated"
    """The server ended the stream without `message_stop`. The application sees no error; the span says it failed."""


@dataclass(frozen=True)
class Settings:
    """What `instrument()` was told, for every call."""

    rate_limit_headers: bool
    """Record the `anthropic-ratelimit-*` response headers on attempt spans."""
    request_log: RequestLog
    metrics: Metrics | None
    prices: PriceTable
    guard: CardinalityGuard
    """Bounds the attribution values on metrics."""
    batches: BatchRegistry
    """The Message Batches this process created, and what it recorded of each."""
    batch_attribution: ResultAttribution | None
    """The application's attribution of batch results by batch id and `custom_id`."""
    content: ContentCapture | None = None
    """What content to capture, opted in; `None` captures none."""


class Call:
    """The state of one traced API call. Every method is safe to call from any thread and never raises."""

    __slots__ = (
        "_end_once",
        "attempt_attributes",
        "attempts",
        "body",
        "carrier",
        "chunks",
        "compaction",
        "content",
        "count_tokens",
        "deltas",
        "events",
        "first_chunk",
        "handed_over",
        "in_next",
        "max_retries",
        "metric_base",
        "model",
        "operation",
        "output_tokens",
        "parsing",
        "propagate",
        "records",
        "response_id",
        "response_model",
        "saw_message_delta",
        "saw_message_stop",
        "settings",
        "span",
        "start",
        "stop_category",
        "stop_reason",
        "stop_type",
        "streams",
        "tool_calls",
        "tracer",
        "usage",
    )

    def __init__(
        self,
        span: Span,
        tracer: Tracer,
        settings: Settings,
        operation: str,
        model: str | None,
        streams: bool,
        propagate: bool,
        max_retries: int | None,
        attempt_attributes: dict[str, AttributeValue],
        metric_base: dict[str, AttributeValue],
    ) -> None:
        self.span = span
        self.tracer = tracer
        self.settings = settings
        self.operation = operation
        self.model = model
        self.streams = streams
        self.propagate = propagate
        self.max_retries = max_retries
        self.attempt_attributes = attempt_attributes  # Method and server, which every attempt span starts with.
        self.metric_base = metric_base
        self.start = time.perf_counter()
        self.attempts = 0
        self.records: list[AttemptRecord] = []
        self.carrier: dict[str, str] | None = None  # The trace context headers sent with every attempt.
        self.events = 0
        self.deltas = 0
        # The body of the call's successful response while the application has yet to read it.
        self.body: object | None = None
        self.chunks: Any = None  # What `body_sink` gave: it receives the body's bytes as they are read.
        # Set while an SDK `Stream` parses the body into events, and while it is inside a read of the body: a close
        # or error of the body seen then is the stream's to report, with what the events say.
        self.parsing = False
        self.in_next = False
        # Set when the SDK hands the call's result to the application: a body closed before then was closed by the
        # SDK or a middleware (one that replaces the response), not abandoned by the application.
        self.handed_over = False
        self.first_chunk: float | None = None
        self.saw_message_stop = False
        self.saw_message_delta = False
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.stop_reason: str | None = None
        self.stop_category: str | None = None
        self.stop_type: str | None = None
        # The usage fields as the API reports them (Anthropic's `input_tokens` excludes cache reads and writes).
        self.usage: dict[str, Any] = {}
        self.output_tokens: int | None = None
        self.compaction: tuple[int, int] | None = None
        self.tool_calls: list[tuple[str, str, str]] | None = None
        """(name, id, `gen_ai.tool.type`) of each tool the model called, when it called any."""
        self.count_tokens: int | None = None
        # The call's content when the application captures it, else `None`: nothing of it is read.
        self.content: Recorder | None = None
        self._end_once = threading.Lock()

    # --- attempts -------------------------------------------------------------------------------------------------

    def attempt_sent(self) -> None:
        """An attempt is about to be sent."""
        self.attempts += 1
        self.records.append(AttemptRecord())

    def start_attempt_span(self) -> Span:
        """Starts the span of the attempt being sent, for its trace context to go with it; `end` ends it."""
        record = self.records[-1]
        record.span = start_span(self.tracer, self.span, record, self.attempts, self.attempt_attributes)
        return record.span

    def attempt_returned(self, response: Any) -> None:
        """An attempt got its HTTP response (its headers), whatever its status."""
        record = self.records[-1] if self.records else None
        if record is not None:
            record.ended = time.time_ns()
            record.response = response

    def attempt_failed(self, error: BaseException) -> None:
        """An attempt got no response: a connection error, a timeout, or the application stopped it."""
        record = self.records[-1] if self.records else None
        if record is not None:
            record.ended = time.time_ns()
            record.error = error

    def retry_scheduled(self, seconds: float) -> None:
        """The SDK computed the wait before its next attempt."""
        if self.records:
            self.records[-1].delay = seconds

    # --- responses ------------------------------------------------------------------------------------------------

    def returned(self, result: object) -> None:
        """Records what the SDK returned to the application, and ends the span unless a body remains to be read."""
        self.handed_over = True
        if self.body is not None or self._end_once.locked():
            # The body's reader ends the span (a stream, or a response the application reads itself), or has
            # already ended it: the SDK read a JSON body before it returned, and the body's end told.
            return
        try:
            # `field`, not `getattr`: on a Message (the usual result), pydantic raises and catches for a missing name.
            http_response = field(result, "http_response")
            if http_response is not None:
                # `with_raw_response`: the SDK read the body, which the application parses when it wants to.
                self.absorb(_decoded_json(http_response))
            else:
                self.absorb(result)
        except Exception:
            log.debug("claude_otel: could not read the response of an API call", exc_info=True)
        self.end(None)

    def absorb(self, data: object) -> None:
        """Records a whole response body: a Message or a token count, as a model or as decoded JSON."""
        if data is None:
            return
        if self.operation == sc.OPERATION_COUNT_TOKENS:
            self.count_tokens = as_int(field(data, "input_tokens"))
            return
        self._absorb_message(data, complete=True)
        if self.content is not None:
            self.content.message(data)

    def _absorb_message(self, message: object, complete: bool) -> None:
        fields = fields_of(message)
        self.response_id = as_str(fields.get("id")) or self.response_id
        self.response_model = as_str(fields.get("model")) or self.response_model
        usage = fields_of(fields.get("usage"))
        self._absorb_usage(usage)
        if not complete:
            # `message_start` has placeholders for the stop reason and the output tokens; `message_delta` has them.
            return
        self.stop_reason = as_str(fields.get("stop_reason"))
        self._absorb_stop_details(fields.get("stop_details"))
        self.output_tokens = as_int(usage.get("output_tokens"))
        self.compaction = _compaction(usage)
        content = fields.get("content")
        if isinstance(content, list):
            for block in content:
                self._absorb_block(block)

    def _absorb_block(self, block: object) -> None:
        """Keeps the name and id of a tool call block (`tool_use`, `server_tool_use`, `mcp_tool_use`): never its
        input."""
        fields = fields_of(block)
        kind = _TOOL_BLOCKS.get(fields.get("type"))  # type: ignore[arg-type]
        if kind is not None:
            calls = self.tool_calls if self.tool_calls is not None else []
            calls.append((as_str(fields.get("name")) or "unknown", as_str(fields.get("id")) or "", kind))
            self.tool_calls = calls

    def _absorb_usage(self, usage: Mapping[str, Any]) -> None:
        """Keeps the fields of `usage` (see `fields_of`) that are present: a `message_delta` whose usage lacks the
        cache counts keeps those of `message_start` rather than zeroing them."""
        for name in _USAGE_FIELDS:
            value = usage.get(name)
            if value is not None:
                self.usage[name] = value

    def _absorb_stop_details(self, details: object) -> None:
        if details is not None:
            self.stop_category = as_str(field(details, "category"))
            self.stop_type = as_str(field(details, "type"))

    def event(self, event: object) -> None:
        """Records one event of a streamed Message. Called for every event, so the common case is first."""
        self.events += 1
        try:
            kind = event.type  # type: ignore[attr-defined]
            if kind == "content_block_delta":
                self.deltas += 1
                if self.first_chunk is None:
                    self.first_chunk = time.perf_counter()
                if self.content is not None:
                    self.content.delta(event)
            elif kind == "message_start":
                self._absorb_message(event.message, complete=False)  # type: ignore[attr-defined]
            elif kind == "message_delta":
                self.saw_message_delta = True
                delta = event.delta  # type: ignore[attr-defined]
                self.stop_reason = as_str(field(delta, "stop_reason")) or self.stop_reason
                self._absorb_stop_details(field(delta, "stop_details"))
                usage = fields_of(event.usage)  # type: ignore[attr-defined]
                # Cumulative: the last `message_delta` has the whole count. Never added to `message_start`'s.
                self.output_tokens = as_int(usage.get("output_tokens"))
                self._absorb_usage(usage)
                self.compaction = _compaction(usage) or self.compaction
            elif kind == "message_stop":
                self.saw_message_stop = True
            elif kind == "content_block_start":
                self._absorb_block(event.content_block)  # type: ignore[attr-defined]
                if self.content is not None:
                    self.content.block_start(event)
            elif kind not in _OTHER_EVENTS:
                log.debug("claude_otel: unknown stream event type %r, passed on as it is", kind)
        except Exception:
            log.debug("claude_otel: could not record a stream event", exc_info=True)

    # --- the end --------------------------------------------------------------------------------------------------

    def stream_ended(self) -> None:
        """The stream of events was read to its end: complete with `message_stop`, truncated without."""
        self.end(None, Outcome.COMPLETED if self.saw_message_stop else Outcome.TRUNCATED)

    def body_sink(self, content_type: str) -> Any:
        """What keeps the bytes of a successful body as they are read, for `body_read`: a list for a whole JSON
        body, `None` for a body that needs none (a stream of events, which `event` reads)."""
        return [] if not self.streams and "json" in content_type else None

    def body_read(self) -> None:
        """The application read the body itself, without a `Stream`: a JSON body is decoded for its usage. A stream's
        body read before the call returned was read by a middleware (one that caches or replays responses): the
        stream the application gets ends the call (`patches._adopt`)."""
        if self.streams and not self.handed_over:
            self.body = None
            return
        if self.chunks is not None:
            try:
                self.absorb(json.loads(b"".join(self.chunks)))
            except Exception:
                log.debug("claude_otel: could not decode a response body", exc_info=True)
            self.chunks = None
        self.end(None, Outcome.COMPLETED)

    def end(self, error: BaseException | None, outcome: str | None = None) -> None:
        """Sets the call's final attributes and status and ends its span, the first time it is called only.

        `error` is what the call or the reading of its body raised. `outcome` is how the reading of a streamed
        body ended; a streamed call that failed before it returned a body is `failed` (or `abandoned` when the
        application cancelled it). Then the request log has its record.
        """
        if not self._end_once.acquire(blocking=False):
            return
        try:
            duration = time.perf_counter() - self.start
            span = self.span
            if self.streams and outcome is None:
                outcome = Outcome.FAILED if isinstance(error, Exception) else Outcome.ABANDONED
            attributes = self._final_attributes(outcome)
            failure = error if isinstance(error, Exception) else None
            if failure is not None:
                attributes.update(self._failure_attributes(failure, outcome))
                span.set_status(Status(StatusCode.ERROR, f"{type(failure).__name__}: {failure}"))
                span.record_exception(failure)
            elif outcome == Outcome.TRUNCATED:
                attributes[sc.ERROR_TYPE] = sc.ERROR_TYPE_TRUNCATED_STREAM
                attributes[sc.CLAUDE_OTEL_ERROR_CATEGORY] = _errors.PLATFORM_ERROR
                attributes[sc.CLAUDE_OTEL_ERROR_RETRYABLE] = True
                attributes[sc.CLAUDE_OTEL_RETRIES_EXHAUSTED] = False  # The SDK never retries after HTTP 200.
                span.set_status(Status(StatusCode.ERROR, "The stream ended before its message_stop event."))
            # Anything but an `Exception`, such as a `CancelledError`, is the application stopping the call:
            # the status stays unset, as the SDK's own spans leave it.
            cost = self._cost(attributes)
            span.set_attributes(attributes)
            if self.content is not None:
                self.content.record(span, attributes, self.metric_base)
            if outcome in (Outcome.FAILED, Outcome.TRUNCATED) and self.body is not None:
                span.add_event(sc.EVENT_STREAM_FAILURE, self._stream_failure(attributes, failure, duration))
            if self.stop_reason == "refusal" and attributes.get(sc.ANTHROPIC_STOP_REASON) == "refusal":
                span.add_event(sc.EVENT_REFUSAL, _refusal(attributes))
            if self.attempts > 1 or sc.ERROR_TYPE in attributes:
                # A call that was retried or failed: one span per attempt (see `claude_otel._attempts`).
                emit_spans(self.tracer, span, self.records, self.attempt_attributes, self.settings.rate_limit_headers)
            span.end()
        except Exception:
            log.debug("claude_otel: could not end the span of an API call", exc_info=True)
            return
        finally:
            self.body = None
            self.chunks = None
        try:
            self._record_metrics(attributes, outcome, duration, cost)
        except Exception:
            log.debug("claude_otel: could not record the metrics of an API call", exc_info=True)
        # Apart, so that a failure above never costs the call its log record. `record` never raises.
        self.settings.request_log.record(self, attributes, outcome, failure, duration)

    def _record_metrics(
        self, attributes: dict[str, AttributeValue], outcome: str | None, duration: float, cost: Cost | None
    ) -> None:
        if self.settings.metrics is not None:
            self.settings.metrics.record(self, self.metric_base, attributes, duration, cost)

    def _cost(self, attributes: dict[str, AttributeValue]) -> Cost | None:
        """Adds the call's cost and its parts to `attributes` (rounded: see `round_cost`) and returns it; `None` when
        unpriced or no usage is known."""
        if self.operation != sc.OPERATION_CHAT or sc.GEN_AI_USAGE_INPUT_TOKENS not in attributes:
            return None
        prices = self.settings.prices
        price = prices.price(self.response_model or self.model or "")
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

    def _failure_attributes(self, failure: Exception, outcome: str | None) -> dict[str, AttributeValue]:
        category = _errors.category(failure)
        last = self.records[-1].response if self.records else None
        retryable = category in _errors.TRANSIENT and (last is None or _errors.should_retry_header(last) is not False)
        # Failed before a body: the SDK's retries, if any, are spent. After HTTP 200 the SDK never retries.
        in_body = outcome is not None and self.body is not None
        exhausted = (
            retryable
            and not in_body
            and self.max_retries is not None
            and self.attempts > self.max_retries
        )
        return {
            sc.ERROR_TYPE: _errors.error_type(failure),
            sc.CLAUDE_OTEL_ERROR_CATEGORY: category,
            sc.CLAUDE_OTEL_ERROR_RETRYABLE: retryable,
            sc.CLAUDE_OTEL_RETRIES_EXHAUSTED: exhausted,
        }

    def _stream_failure(
        self, attributes: dict[str, AttributeValue], failure: Exception | None, duration: float
    ) -> dict[str, AttributeValue]:
        """What had arrived when a stream failed or was cut short: the span event's attributes."""
        event: dict[str, AttributeValue] = {
            sc.ERROR_TYPE: attributes[sc.ERROR_TYPE],
            sc.CLAUDE_OTEL_STREAM_EVENTS: self.events,
            sc.CLAUDE_OTEL_STREAM_CONTENT_DELTAS: self.deltas,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: self.output_tokens or 0,
            sc.CLAUDE_OTEL_ELAPSED: duration,
        }
        event["exception.message"] = str(failure) if failure is not None else "The stream ended before message_stop."
        return event

    def _final_attributes(self, outcome: str | None) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {sc.CLAUDE_OTEL_ATTEMPTS: self.attempts}
        if self.attempts > 1:
            attributes[sc.HTTP_REQUEST_RESEND_COUNT] = self.attempts - 1
        records = self.records
        if records:
            url = request_url(records[0])
            if url is not None:
                attributes.update(url_attributes(url))
        request_ids = []
        headers: dict[str, str] = {}
        for record in records:
            if record.response is not None:
                # The last response's headers win: the response the application got, or the last failure.
                headers = response_headers(record.response)
                request_id = headers.get(sc.ANTHROPIC_REQUEST_ID)
                if request_id:
                    request_ids.append(request_id)
                attributes[sc.HTTP_RESPONSE_STATUS_CODE] = record.response.status_code
        if request_ids and self.attempts > 1:
            # Of a call with one attempt, the id is `anthropic.request.id` alone.
            attributes[sc.CLAUDE_OTEL_REQUEST_IDS] = request_ids
        attributes.update(headers)
        if outcome is not None:
            attributes[sc.CLAUDE_OTEL_STREAM_OUTCOME] = outcome
        self._response_attributes(attributes)
        return attributes

    def _response_attributes(self, attributes: dict[str, AttributeValue]) -> None:
        """Adds what the response said: a Message's id, model, stop reason and usage, or a token count."""
        if self.operation == sc.OPERATION_COUNT_TOKENS:
            _put(attributes, sc.ANTHROPIC_COUNT_TOKENS_INPUT_TOKENS, self.count_tokens)
            return
        _put(attributes, sc.GEN_AI_RESPONSE_ID, self.response_id)
        _put(attributes, sc.GEN_AI_RESPONSE_MODEL, self.response_model)
        if self.first_chunk is not None:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk - self.start
        # Stop reason and output tokens are final only from a whole Message or a `message_delta`.
        final = not self.streams or self.saw_message_delta
        stop_reason = self.stop_reason if final else None
        if stop_reason is not None and stop_reason not in _STOP_REASONS:
            log.debug("claude_otel: unknown stop_reason %r, recorded as it is", stop_reason)
        if final and not self.usage:
            log.debug("claude_otel: the response of %s has no usage", attributes.get(sc.ANTHROPIC_REQUEST_ID, "a call"))
        _put(attributes, sc.ANTHROPIC_STOP_REASON, stop_reason)
        _put(attributes, sc.ANTHROPIC_STOP_DETAILS_CATEGORY, self.stop_category if final else None)
        _put(attributes, sc.ANTHROPIC_STOP_DETAILS_TYPE, self.stop_type if final else None)
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
        _put(attributes, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read)
        _put(attributes, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, cache_write)
        cache_creation = usage.get("cache_creation")
        _put(attributes, sc.ANTHROPIC_CACHE_5M_INPUT_TOKENS, as_int(field(cache_creation, "ephemeral_5m_input_tokens")))
        _put(attributes, sc.ANTHROPIC_CACHE_1H_INPUT_TOKENS, as_int(field(cache_creation, "ephemeral_1h_input_tokens")))
        _put(attributes, sc.ANTHROPIC_RESPONSE_SERVICE_TIER, as_str(usage.get("service_tier")))
        if not final:
            return
        _put(attributes, sc.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens)
        thinking = as_int(field(usage.get("output_tokens_details"), "thinking_tokens"))
        _put(attributes, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, thinking)
        if self.compaction is not None:
            attributes[sc.ANTHROPIC_COMPACTION_INPUT_TOKENS] = self.compaction[0]
            attributes[sc.ANTHROPIC_COMPACTION_OUTPUT_TOKENS] = self.compaction[1]
        if self.tool_calls:
            names, ids, types = zip(*self.tool_calls)
            attributes[sc.CLAUDE_OTEL_TOOL_CALLS_NAMES] = names
            attributes[sc.CLAUDE_OTEL_TOOL_CALLS_IDS] = ids
            attributes[sc.CLAUDE_OTEL_TOOL_CALLS_TYPES] = types


_USAGE_FIELDS = (
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
"""The usage fields a Call keeps (`output_tokens` apart: a stream's final count is in `message_delta`)."""

_OTHER_EVENTS = frozenset({"content_block_stop", "ping", "error"})
"""The stream events a Call reads nothing from; any other type than these and the ones it reads is new."""

_STOP_REASONS = frozenset(
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
"""The stop reasons claude_otel knows; `tests/test_sdk_drift.py` checks that the installed SDK declares no other."""


_TOOL_BLOCKS = {
    "tool_use": sc.TOOL_TYPE_FUNCTION,
    "server_tool_use": sc.TOOL_TYPE_EXTENSION,
    "mcp_tool_use": sc.TOOL_TYPE_EXTENSION,  # Beta: a tool of a remote MCP server, which the API calls itself.
}
"""The content blocks that are tool calls, and their `gen_ai.tool.type`."""


def _refusal(attributes: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    keys = (sc.ANTHROPIC_STOP_DETAILS_TYPE, sc.ANTHROPIC_STOP_DETAILS_CATEGORY, sc.ANTHROPIC_REQUEST_ID)
    return {key: attributes[key] for key in keys if key in attributes}


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


def _decoded_json(http_response: Any) -> object:
    """The decoded body of a read response, or `None` for an unread or non-JSON one."""
    if not http_response.is_closed:
        return None
    media_type = http_response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return None
    return json.loads(http_response.content)


def _put(attributes: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    if value is not None:
        attributes[key] = value
