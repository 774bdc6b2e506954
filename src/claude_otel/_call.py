"""One API call, observed from its start to the end of its span.

An "API call" is one invocation of an SDK method that claude_otel traces (`messages.create`, `messages.stream`,
`messages.count_tokens`, ... in every variant), with every HTTP attempt the SDK makes for it and the reading of the
body it returns. Each has one CLIENT span, the "call span", which a `Call` owns:

    request (`Request`) → attempts (`attempt_sent` / `attempt_returned` / `attempt_failed` / `retry_scheduled`)
            → response (`returned`, `body_read`) or stream events (the reader's `event`) → `end` → span end
            → metrics → request log

What the response said is its reader's to read (`claude_otel._response.ResponseReader`): a `MessageReader` for the
Messages API, a `claude_otel._batches.BatchReader` for Message Batches.

`end` runs once, whoever calls it first: the request wrapper for a call that failed or returned a read body, the
event wrapper of a stream, or the body wrapper of a body that is closed, dropped or read without a stream.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from . import _errors
from . import _semconv as sc
from ._attempts import AttemptRecord, emit_spans, request_url, response_headers, start_span, url_attributes
from ._boundary import never_raises
from ._extract import field
from ._observe import Observer, Outcome
from ._response import ResponseReader, decoded_json

if TYPE_CHECKING:
    from ._attribution import CardinalityGuard, ResultAttribution
    from ._batches import BatchRegistry
    from ._content import ContentCapture
    from ._metrics import Metrics
    from ._prices import PriceTable
    from ._request_log import RequestLog

log = logging.getLogger("claude_otel")


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


@dataclass(slots=True)
class Request:
    """What a call's request said, set when its span starts (`claude_otel._patches.Hooks._start`) and never changed.

    Not `frozen`: a frozen dataclass sets each field through `object.__setattr__`, which made it cost a call four
    times what a plain one does (1.6 µs against 0.5), for a guarantee that one writer does not need.
    """

    operation: str
    """`gen_ai.operation.name`: `chat`, `count_tokens`, or a Message Batches operation."""
    model: str | None
    """The model the request named."""
    streams: bool
    """Whether the response is a stream of events."""
    propagate: bool
    """Whether each attempt carries the trace context."""
    max_retries: int | None
    """The retries the SDK allows the call, when known."""
    attempt_attributes: dict[str, AttributeValue]
    """Method and server, which every attempt span starts with."""
    metric_base: dict[str, AttributeValue]
    """The attributes every metric point of the call has (`claude_otel._metrics.metric_attributes`)."""


class Call:
    """The state of one traced API call. Every method is safe to call from any thread and never raises.

    Four records hold what it knows: `request` (what the request said), `records` (one `AttemptRecord` per HTTP
    attempt), `reader` (what the response said, `claude_otel._response`) and `observer` (the body the application has
    yet to read, and how its reading goes, `claude_otel._observe`).
    """

    __slots__ = (
        "_end_once",
        "carrier",
        "handed_over",
        "observer",
        "reader",
        "records",
        "request",
        "settings",
        "span",
        "start",
        "tracer",
    )

    def __init__(self, span: Span, tracer: Tracer, settings: Settings, request: Request, reader: ResponseReader) -> None:
        self.span = span
        self.tracer = tracer
        self.settings = settings
        self.request = request
        self.reader = reader
        self.start = time.perf_counter()
        self.records: list[AttemptRecord] = []
        self.carrier: dict[str, str] | None = None  # The trace context headers sent with every attempt.
        self.observer = Observer()
        """The body the application has yet to read, and how it reads it."""
        # Set when the SDK hands the call's result to the application: a body closed before then was closed by the
        # SDK or a middleware (one that replaces the response), not abandoned by the application.
        self.handed_over = False
        self._end_once = threading.Lock()

    @property
    def attempts(self) -> int:
        """The HTTP attempts sent so far."""
        return len(self.records)

    # --- attempts -------------------------------------------------------------------------------------------------

    def attempt_sent(self) -> None:
        """An attempt is about to be sent."""
        self.records.append(AttemptRecord())

    def start_attempt_span(self) -> Span:
        """Starts the span of the attempt being sent, for its trace context to go with it; `end` ends it."""
        record = self.records[-1]
        record.span = start_span(self.tracer, self.span, record, self.attempts, self.request.attempt_attributes)
        return record.span

    def attempt_returned(self, response: Any) -> None:
        """An attempt got its HTTP response (its headers), whatever its status."""
        record = self.records[-1] if self.records else None
        if record is not None:
            record.ended = time.time_ns()
            record.response = response
        if self.reader.sees_attempts:
            self._attempt_seen(response)

    def attempt_failed(self, error: BaseException) -> None:
        """An attempt got no response: a connection error, a timeout, or the application stopped it."""
        record = self.records[-1] if self.records else None
        if record is not None:
            record.ended = time.time_ns()
            record.error = error
        if self.reader.sees_attempts:
            self._attempt_seen(error)

    @never_raises("read an attempt's response", None)
    def _attempt_seen(self, response_or_error: object) -> None:
        self.reader.attempt_seen(response_or_error)

    def retry_scheduled(self, seconds: float) -> None:
        """The SDK computed the wait before its next attempt."""
        if self.records:
            self.records[-1].delay = seconds

    # --- responses ------------------------------------------------------------------------------------------------

    def returned(self, result: object) -> None:
        """Records what the SDK returned to the application, and ends the span unless a body remains to be read."""
        self.handed_over = True
        if self.observer.body is not None or self._end_once.locked():
            # The body's reader ends the span (a stream, or a response the application reads itself), or has
            # already ended it: the SDK read a JSON body before it returned, and the body's end told.
            return
        try:
            # `field`, not `getattr`: on a Message (the usual result), pydantic raises and catches for a missing name.
            http_response = field(result, "http_response")
            # `with_raw_response`: the SDK read the body, which the application parses when it wants to.
            self.reader.absorb(decoded_json(http_response) if http_response is not None else result)
        except Exception:
            log.debug("claude_otel: could not read the response of an API call", exc_info=True)
        self.end(None)

    @never_raises("prepare to read a response body", None)
    def body_sink(self, content_type: str) -> Any:
        """What keeps the bytes of a successful body as they are read, for `body_read` (`ResponseReader.body_sink`)."""
        return self.reader.body_sink(content_type)

    def body_read(self) -> None:
        """The application read the body itself, without a `Stream`: the reader reads what was kept of it. A stream's
        body read before the call returned was read by a middleware (one that caches or replays responses): the
        stream the application gets ends the call (`patches._adopt`)."""
        observer = self.observer
        if self.request.streams and not self.handed_over:
            observer.body = None
            return
        if observer.sink is not None:
            try:
                self.reader.body_done(observer.sink)
            except Exception:
                log.debug("claude_otel: could not decode a response body", exc_info=True)
            observer.sink = None
        self.end(None, Outcome.COMPLETED)

    # --- the end --------------------------------------------------------------------------------------------------

    def stream_ended(self) -> None:
        """The stream of events was read to its end: complete with `message_stop`, truncated without."""
        self.end(None, Outcome.COMPLETED if self.reader.stream_complete() else Outcome.TRUNCATED)

    def end(self, error: BaseException | None, outcome: str | None = None) -> None:
        """Sets the call's final attributes and status and ends its span, the first time it is called only.

        `error` is what the call or the reading of its body raised. `outcome` is how the reading of a streamed
        body ended; a streamed call that failed before it returned a body is `failed` (or `abandoned` when the
        application cancelled it). Then the metrics and the request log have their records.
        """
        if not self._end_once.acquire(blocking=False):
            return
        try:
            duration = time.perf_counter() - self.start
            span = self.span
            reader = self.reader
            if self.request.streams and outcome is None:
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
            cost = reader.cost(attributes, self.settings.prices)
            span.set_attributes(attributes)
            if outcome in (Outcome.FAILED, Outcome.TRUNCATED) and self.observer.body is not None:
                span.add_event(sc.EVENT_STREAM_FAILURE, reader.failure_event(attributes, failure, duration))
            reader.record(span, attributes, self.request.metric_base)
            if len(self.records) > 1 or sc.ERROR_TYPE in attributes:
                # A call that was retried or failed: one span per attempt (see `claude_otel._attempts`).
                emit_spans(self.tracer, span, self.records, self.request.attempt_attributes, self.settings.rate_limit_headers)
            span.end()
        except Exception:
            log.debug("claude_otel: could not end the span of an API call", exc_info=True)
            return
        finally:
            self.observer.body = None
            self.observer.sink = None
        try:
            metrics = self.settings.metrics
            if metrics is not None:
                metrics.record(self, self.request.metric_base, attributes, duration, cost)
                reader.record_metrics(self, attributes, outcome)
        except Exception:
            log.debug("claude_otel: could not record the metrics of an API call", exc_info=True)
        # Apart, so that a failure above never costs the call its log record. `record` never raises.
        self.settings.request_log.record(self, attributes, outcome, failure, duration)

    def _failure_attributes(self, failure: Exception, outcome: str | None) -> dict[str, AttributeValue]:
        category = _errors.category(failure)
        last = self.records[-1].response if self.records else None
        retryable = category in _errors.TRANSIENT and (last is None or _errors.should_retry_header(last) is not False)
        # Failed before a body: the SDK's retries, if any, are spent. After HTTP 200 the SDK never retries.
        in_body = outcome is not None and self.observer.body is not None
        max_retries = self.request.max_retries
        exhausted = retryable and not in_body and max_retries is not None and self.attempts > max_retries
        return {
            sc.ERROR_TYPE: _errors.error_type(failure),
            sc.CLAUDE_OTEL_ERROR_CATEGORY: category,
            sc.CLAUDE_OTEL_ERROR_RETRYABLE: retryable,
            sc.CLAUDE_OTEL_RETRIES_EXHAUSTED: exhausted,
        }

    def _final_attributes(self, outcome: str | None) -> dict[str, AttributeValue]:
        attempts = len(self.records)
        attributes: dict[str, AttributeValue] = {sc.CLAUDE_OTEL_ATTEMPTS: attempts}
        if attempts > 1:
            attributes[sc.HTTP_REQUEST_RESEND_COUNT] = attempts - 1
        records = self.records
        if records:
            url = request_url(records[0])
            if url is not None:
                attributes.update(url_attributes(url))
        request_ids = []
        headers: dict[str, AttributeValue] = {}
        for record in records:
            if record.response is not None:
                # The last response's headers win: the response the application got, or the last failure.
                headers = response_headers(record.response)
                request_id = headers.get(sc.ANTHROPIC_REQUEST_ID)
                if request_id:
                    request_ids.append(request_id)
                attributes[sc.HTTP_RESPONSE_STATUS_CODE] = record.response.status_code
        if request_ids and attempts > 1:
            # Of a call with one attempt, the id is `anthropic.request.id` alone.
            attributes[sc.CLAUDE_OTEL_REQUEST_IDS] = request_ids
        attributes.update(headers)
        if outcome is not None:
            attributes[sc.CLAUDE_OTEL_STREAM_OUTCOME] = outcome
        self.reader.attributes(attributes, self.start)
        return attributes
