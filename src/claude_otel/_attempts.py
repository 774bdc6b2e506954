"""One span per HTTP attempt, under the call span, per the HTTP client span conventions.

The SDK retries inside the call (408, 409, 429, 5xx, connection errors; 2 retries by default), and waits between
attempts. An attempt span covers one request, from sending it to the response headers (or the failure), and says
what the attempt got: its status, its own `request-id`, the `retry-after` / `retry-after-ms` / `x-should-retry` the
API sent, the rate-limit headers (unless turned off), and `claude_otel.retry.delay`, the seconds the SDK then
waited before the next attempt. That delay is known only once the SDK has computed it, after the attempt: so the
span is ended then, at the time the attempt itself ended.
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


class Attempt:
    """One HTTP attempt of a call, with its span. Never raises."""

    __slots__ = ("span", "ended_at")

    def __init__(self, tracer: Tracer, call_span: Span, number: int, attributes: dict[str, AttributeValue]) -> None:
        if number > 1:
            # The conventions' ordinal of the resend: absent on the first attempt, 1 on the first retry, ...
            attributes = {**attributes, sc.HTTP_REQUEST_RESEND_COUNT: number - 1}
        self.span = tracer.start_span(
            str(attributes[sc.HTTP_REQUEST_METHOD]), context=set_span_in_context(call_span), kind=SpanKind.CLIENT, attributes=attributes
        )
        self.ended_at: int | None = None

    def responded(self, response: Any, url: AttributeValue | None, rate_limits: bool) -> None:
        """Records the response's status and headers. The span stays open for `retry_delay`; see `finish`."""
        status = response.status_code
        headers = response.headers
        attributes: dict[str, AttributeValue] = {sc.HTTP_RESPONSE_STATUS_CODE: status}
        if url is not None:
            attributes[sc.URL_FULL] = url
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
            self.span.set_status(Status(StatusCode.ERROR))
        self.span.set_attributes(attributes)
        self.ended_at = time.time_ns()

    def failed(self, error: BaseException, url: AttributeValue | None) -> None:
        """Records an attempt that got no response (or was stopped). The span stays open for `retry_delay`."""
        if url is not None:
            self.span.set_attribute(sc.URL_FULL, url)
        if isinstance(error, Exception):
            self.span.set_attribute(sc.ERROR_TYPE, error_type(error))
            self.span.set_status(Status(StatusCode.ERROR))
            self.span.record_exception(error)
        self.ended_at = time.time_ns()

    def retry_delay(self, seconds: float) -> None:
        """The SDK will wait `seconds` before the next attempt: recorded, and the span ends."""
        self.span.set_attribute(sc.CLAUDE_OTEL_RETRY_DELAY, seconds)
        self.finish()

    def finish(self) -> None:
        """Ends the span at the time the attempt ended (now, for an attempt that is still under way)."""
        self.span.end(end_time=self.ended_at)
