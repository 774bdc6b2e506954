"""Failed calls: ERROR status, the SDK's `error.type`, the request id, and every retry counted."""

from __future__ import annotations

import socket

import anthropic
import pytest
from conftest import MESSAGES, MODEL, Spans, scenario

KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}


def test_retried_then_succeeded(spans: Spans, client: anthropic.Anthropic, sim) -> None:
    message = client.messages.create(**KW, extra_headers=scenario("529,ok"))
    span = spans.one()
    assert span.status.status_code.name == "UNSET"
    assert span.attributes["claude_otel.attempts"] == 2
    assert span.attributes["http.request.resend_count"] == 1
    assert span.attributes["anthropic.request.id"] == message._request_id  # The last attempt's.


def test_rate_limited_until_retries_ran_out(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**KW, extra_headers=scenario("429"))
    span = spans.one()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "rate_limit_error"
    assert span.attributes["http.response.status_code"] == 429
    assert span.attributes["claude_otel.attempts"] == 3  # The first and the SDK's 2 retries.
    assert span.attributes["anthropic.request.id"] == caught.value.request_id
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"].endswith("RateLimitError")


def test_bad_request_is_not_retried(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**KW, extra_headers=scenario("400"))
    span = spans.one()
    assert span.attributes["error.type"] == "invalid_request_error"
    assert span.attributes["claude_otel.attempts"] == 1
    assert "http.request.resend_count" not in span.attributes


def test_should_retry_false_is_obeyed(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**KW, extra_headers=scenario("529+noretry"))
    assert caught.value.status_code == 529
    span = spans.one()
    assert span.attributes["error.type"] == "overloaded_error"
    assert span.attributes["claude_otel.attempts"] == 1


def test_connection_refused(spans: Spans) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(**KW)
    span = spans.one()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "connection_error"
    assert span.attributes["claude_otel.attempts"] == 2
    assert span.attributes["url.full"] == f"http://127.0.0.1:{port}/v1/messages"
    assert "anthropic.request.id" not in span.attributes  # No response, no id: none is made up.


def test_read_timeout(spans: Spans, sim) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=0, timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**KW, extra_headers=scenario("stall:1"))
    span = spans.one()
    assert span.attributes["error.type"] == "client_timeout_error"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, "authentication_error"), (403, "permission_error"), (404, "not_found_error"), (413, "request_too_large"), (500, "api_error"), (504, "timeout_error")],
)
def test_error_types(spans: Spans, sim, status: int, error_type: str) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(**KW, extra_headers=scenario(str(status)))
    assert caught.value.status_code == status
    span = spans.one()
    assert span.attributes["error.type"] == error_type
    assert span.attributes["http.response.status_code"] == status
