"""The HTTP attempts of a call, and a span per attempt for the calls that were retried or failed.

The SDK retries inside the call (408, 409, 429, 5xx, connection errors; 2 retries by default), and waits between
attempts. Each attempt is recorded as it happens, for nothing more than a timestamp and a reference: its start, its
end (response headers or failure), the response or the error, and the wait the SDK chose after it.

Spans are made from those records when the call ends, and only for a call that made more than one attempt or
failed: there, one CLIENT span per attempt, per the HTTP client span conventions, with the times the attempt
really had, its status, its own `request-id`, the `retry-after` / `retry-after-ms` / `x-should-retry` the API
sent, the rate-limit headers (unless turned off), and `claude_otel.retry.delay`, the seconds the SDK then waited.
A call that succeeded at its first attempt, nearly every call, gets no attempt span: its call span has all of it,
and a span costs the application thread more than everything else claude_otel does for the call.

The trace context sent with the first attempt is the call span's (as the SDK's own tracing sends it). A retry's
span is started when the retry is sent (`start_span`), and the retry carries its context: what the API traces on
its side (API tracing, docs/api-tracing.md) nests under the attempt it served. Only a retried call pays for that.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from ._errors import error_type

RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
RATE_LIMIT_PREFIX = "anthropic-ratelimit-"


class AttemptRecord:
    """One HTTP attempt: when it started and ended, and what it got."""

    __slots__ = ("delay", "ended", "error", "response", "span", "started")

    def __init__(self) -> None:
        self.span: Span | None = None
        """The attempt's span when it was started with the attempt (a retry whose context was sent), else `None`."""
        self.started = time.time_ns()
        self.ended: int | None = None
        self.response: Any = None
        """The HTTP response, whatever its status; `None` for an attempt that got none."""
        self.error: BaseException | None = None
        self.delay: float | None = None
        """The seconds the SDK waited after this attempt, before the next."""

    def outcome(self) -> tuple[int | None, str | None]:
        """The attempt's HTTP status (None without a response) and its `error.type` (None for a success)."""
        response = self.response
        if response is not None:
            status = response.status_code
            return status, None if status < 400 else str(status)
        error = self.error
        return None, error_type(error) if isinstance(error, Exception) else None


def url_attributes(url: Any) -> dict[str, AttributeValue]:
    """`url.scheme`, `url.path` and `url.full` of a request URL, without its query (the Messages API's only query is
    `?beta=true`). For a platform client it is the platform's URL, which the SDK builds inside the attempt."""
    scheme = url.scheme
    path = url.raw_path.partition(b"?")[0].decode("ascii")
    return {sc.URL_SCHEME: scheme, sc.URL_PATH: path, sc.URL_FULL: f"{scheme}://{url.netloc.decode('ascii')}{path}"}


_HEADER_ATTRIBUTES = {header.encode(): attribute for attribute, header in sc.RESPONSE_HEADER_ATTRIBUTES}


def response_headers(response: Any) -> dict[str, AttributeValue]:
    """The attributes of `RESPONSE_HEADER_ATTRIBUTES` a response has (its request id, ...), in one pass over its
    headers (httpx's `get` scans them all for each name)."""
    found: dict[str, AttributeValue] = {}
    for name, value in response.headers.raw:
        attribute = _HEADER_ATTRIBUTES.get(name.lower())
        if attribute is not None and value:
            found[attribute] = value.decode("latin-1")
    return found


def request_url(record: AttemptRecord) -> Any:
    """The URL the attempt requested, if it is known."""
    try:
        # httpx's `.request` raises (not AttributeError) on an error or response that has none.
        return (record.response if record.response is not None else record.error).request.url  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001  An attempt without a request is no failure: the span goes without its URL.
        return None


def emit_spans(
    tracer: Tracer,
    call_span: Span,
    records: list[AttemptRecord],
    attributes: dict[str, AttributeValue],
    rate_limits: bool,
) -> None:
    """Makes the span of each attempt, a child of the call span, from its record, or ends the one `start_span` began.
    `attributes` are those every attempt span has (method, server)."""
    for number, record in enumerate(records, 1):
        span = record.span or start_span(tracer, call_span, record, number, attributes)
        url = request_url(record)
        if url is not None:
            span.set_attribute(sc.URL_FULL, url_attributes(url)[sc.URL_FULL])
        if record.response is not None:
            _responded(span, record.response, rate_limits)
        elif isinstance(record.error, Exception):
            span.set_attribute(sc.ERROR_TYPE, error_type(record.error))
            span.set_status(Status(StatusCode.ERROR))
            span.record_exception(record.error, timestamp=record.ended)
        if record.delay is not None:
            span.set_attribute(sc.CLAUDE_OTEL_RETRY_DELAY, record.delay)
        span.end(end_time=record.ended)


def start_span(tracer: Tracer, call_span: Span, record: AttemptRecord, number: int, attributes: dict[str, AttributeValue]) -> Span:
    """Starts the span of the `number`th attempt (from 1), a child of the call span, at the attempt's start."""
    started: dict[str, AttributeValue] = dict(attributes)
    if number > 1:
        # The conventions' ordinal of the resend: absent on the first attempt, 1 on the first retry, ...
        started[sc.HTTP_REQUEST_RESEND_COUNT] = number - 1
    return tracer.start_span(
        str(attributes[sc.HTTP_REQUEST_METHOD]),
        context=set_span_in_context(call_span),
        kind=SpanKind.CLIENT,
        attributes=started,
        start_time=record.started,
    )


def _responded(span: Span, response: Any, rate_limits: bool) -> None:
    status = response.status_code
    headers = response.headers
    attributes: dict[str, AttributeValue] = {sc.HTTP_RESPONSE_STATUS_CODE: status}
    request_id = headers.get("request-id")
    if request_id:
        attributes[sc.ANTHROPIC_REQUEST_ID] = request_id
    for name in RETRY_HEADERS:
        value = headers.get(name)
        if value is not None:
            attributes[f"{sc.HTTP_RESPONSE_HEADER}.{name}"] = [value]
    if rate_limits:
        for name, value in headers.items():
            if name.startswith(RATE_LIMIT_PREFIX):
                attributes[f"{sc.HTTP_RESPONSE_HEADER}.{name}"] = [value]
    if status >= 400:
        attributes[sc.ERROR_TYPE] = str(status)
        span.set_status(Status(StatusCode.ERROR))
    span.set_attributes(attributes)
