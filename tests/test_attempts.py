"""Failures as first-class telemetry: a span per HTTP attempt, the error map, mid-stream deaths, the request log."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import anthropic
import pytest
from conftest import MESSAGES, MODEL, Spans, scenario

KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}


def attempt_attributes(spans: Spans, call) -> list[dict]:
    return [dict(span.attributes) for span in spans.attempts(call)]


def test_overloaded_then_ok(spans: Spans, client: anthropic.Anthropic, sim) -> None:
    message = client.messages.create(**KW, extra_headers=scenario("529,ok"))
    call = spans.one()
    first, second = spans.attempts(call)
    assert first.name == second.name == "POST"
    assert first.kind.name == second.kind.name == "CLIENT"
    assert first.attributes["http.response.status_code"] == 529
    assert first.attributes["error.type"] == "529"
    assert first.status.status_code.name == "ERROR"
    assert "http.request.resend_count" not in first.attributes
    assert first.attributes["http.response.header.retry-after"] == ("0.01",)
    assert first.attributes["http.response.header.retry-after-ms"] == ("10",)
    # The SDK waited what the API asked for (retry-after-ms, 10 ms) before the second attempt.
    assert first.attributes["claude_otel.retry.delay"] == pytest.approx(0.01)
    assert first.end_time <= second.start_time
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert second.status.status_code.name == "UNSET"
    assert "claude_otel.retry.delay" not in second.attributes
    ids = [first.attributes["anthropic.request.id"], second.attributes["anthropic.request.id"]]
    assert ids[1] == message._request_id and ids[0] != ids[1]
    assert call.attributes["claude_otel.request_ids"] == tuple(ids)
    assert call.attributes["anthropic.request.id"] == ids[1]
    for attempt in (first, second):
        assert attempt.attributes["http.request.method"] == "POST"
        assert attempt.attributes["url.full"] == f"{sim.url}/v1/messages"
        assert attempt.attributes["server.address"] == "127.0.0.1"
        assert attempt.attributes["http.response.header.anthropic-ratelimit-requests-limit"] == ("1000",)
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            for field in ("limit", "remaining", "reset"):
                assert f"http.response.header.anthropic-ratelimit-{kind}-{field}" in attempt.attributes
        assert "x-api-key" not in json.dumps(dict(attempt.attributes))


def test_rate_limited_three_times(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**KW, extra_headers=scenario("429"))
    call = spans.one()
    attempts = spans.attempts(call)
    assert [span.attributes["http.response.status_code"] for span in attempts] == [429, 429, 429]
    assert [span.attributes.get("http.request.resend_count") for span in attempts] == [None, 1, 2]
    # Two waits, then the SDK gave up: the last attempt has no delay after it.
    assert [("claude_otel.retry.delay" in span.attributes) for span in attempts] == [True, True, False]
    assert call.attributes["claude_otel.error.category"] == "rate_limited"
    assert call.attributes["claude_otel.error.retryable"] is True
    assert call.attributes["claude_otel.retries_exhausted"] is True
    assert call.attributes["anthropic.request.id"] == caught.value.request_id
    assert len(call.attributes["claude_otel.request_ids"]) == 3


def test_spend_limit_is_not_a_rate_limit(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**KW, extra_headers=scenario("429:spend_limit"))
    call = spans.one()
    assert call.attributes["error.type"] == "rate_limit_error"
    assert call.attributes["claude_otel.error.category"] == "spend_limit"
    assert call.attributes["claude_otel.error.retryable"] is False


def test_bad_request(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**KW, extra_headers=scenario("400"))
    call = spans.one()
    (attempt,) = spans.attempts(call)
    assert attempt.attributes["error.type"] == "400"
    assert call.attributes["claude_otel.error.category"] == "caller_error"
    assert call.attributes["claude_otel.error.retryable"] is False
    assert call.attributes["claude_otel.retries_exhausted"] is False


def test_should_retry_false(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**KW, extra_headers=scenario("529+noretry"))
    call = spans.one()
    (attempt,) = spans.attempts(call)
    assert attempt.attributes["http.response.header.x-should-retry"] == ("false",)
    assert call.attributes["claude_otel.error.category"] == "overloaded"
    assert call.attributes["claude_otel.error.retryable"] is False  # The API said so.
    assert call.attributes["claude_otel.retries_exhausted"] is False


@pytest.mark.parametrize(("status", "category"), [(402, "billing"), (500, "platform_error"), (503, "platform_error"), (504, "gateway_timeout"), (413, "caller_error")])
def test_error_map(spans: Spans, sim, status: int, category: str) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(**KW, extra_headers=scenario(str(status)))
    assert spans.one().attributes["claude_otel.error.category"] == category


def test_connection_refused(spans: Spans) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(**KW)
    call = spans.one()
    first, second = spans.attempts(call)
    for attempt in (first, second):
        assert attempt.attributes["error.type"] == "connection_error"
        assert attempt.attributes["url.full"] == f"http://127.0.0.1:{port}/v1/messages"
        assert [event.name for event in attempt.events] == ["exception"]
        assert "http.response.status_code" not in attempt.attributes
    assert first.attributes["claude_otel.retry.delay"] > 0
    assert call.attributes["claude_otel.error.category"] == "connection"
    assert call.attributes["claude_otel.retries_exhausted"] is True
    assert "claude_otel.request_ids" not in call.attributes


def test_read_timeout(spans: Spans, sim) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=1, timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(**KW, extra_headers=scenario("stall:1"))
    call = spans.one()
    assert [span.attributes["error.type"] for span in spans.attempts(call)] == ["client_timeout_error"] * 2
    assert call.attributes["claude_otel.error.category"] == "timeout"
    assert call.attributes["claude_otel.retries_exhausted"] is True


def test_attempts_with_the_applications_own_http_client(spans: Spans, sim) -> None:
    from anthropic import _base_client

    httpx = getattr(_base_client, "httpx2", None) or _base_client.httpx
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, http_client=httpx.Client())
    client.messages.create(**KW, extra_headers=scenario("500,ok"))
    call = spans.one()
    assert [span.attributes["http.response.status_code"] for span in spans.attempts(call)] == [500, 200]


def test_rate_limit_headers_can_be_turned_off(sim) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import claude_otel

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=provider, rate_limit_headers=False)
    try:
        anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url).messages.create(**KW, extra_headers=scenario("429,ok"))
    finally:
        claude_otel.uninstrument()
    (first, _second) = [span for span in exporter.get_finished_spans() if span.name == "POST"]
    assert not [key for key in first.attributes if "ratelimit" in key]
    assert first.attributes["http.response.header.retry-after"] == ("0.01",)  # Retry headers are not rate limits.


# --- mid-stream -------------------------------------------------------------------------------------------------------


def failure_event(span) -> dict:
    (event,) = [event for event in span.events if event.name == "claude_otel.stream.failure"]
    return dict(event.attributes)


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(
    ("steps", "error_type", "category", "deltas"),
    [("error_event", "overloaded_error", "overloaded", 2), ("drop", "connection_error", "connection", 1), ("truncate", "api_error", "platform_error", 2)],
)
def test_mid_stream_failures(spans: Spans, client, async_client, steps, error_type, category, deltas, asynchronous) -> None:
    async def read_async() -> None:
        stream = await async_client.messages.create(**KW, stream=True, extra_headers=scenario(steps))
        async for _ in stream:
            pass

    def read() -> None:
        for _ in client.messages.create(**KW, stream=True, extra_headers=scenario(steps)):
            pass

    if steps == "truncate":  # The application sees no error at all.
        asyncio.run(read_async()) if asynchronous else read()
    else:
        with pytest.raises(Exception):
            asyncio.run(read_async()) if asynchronous else read()
    call = spans.one()
    assert call.status.status_code.name == "ERROR"
    assert call.attributes["error.type"] == error_type
    assert call.attributes["claude_otel.error.category"] == category
    assert call.attributes["claude_otel.retries_exhausted"] is False  # The SDK never retries after HTTP 200.
    assert call.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert call.attributes["gen_ai.usage.input_tokens"] > 0  # Billed, and known from message_start.
    event = failure_event(call)
    assert event["error.type"] == error_type
    assert event["claude_otel.stream.content_deltas"] == deltas
    assert event["claude_otel.stream.events"] == 2 + deltas  # message_start, content_block_start, the deltas
    assert event["gen_ai.usage.output_tokens"] == 0  # No message_delta came.
    assert 0 < event["claude_otel.elapsed"] < 5
    assert event["exception.message"]


def test_refusal_event(spans: Spans, client: anthropic.Anthropic) -> None:
    with client.messages.stream(**KW, extra_headers=scenario("refusal")) as stream:
        stream.until_done()
    call = spans.one()
    assert call.attributes["anthropic.message.stop_details.category"] == "cyber"
    assert call.attributes["anthropic.message.stop_details.type"] == "refusal"
    (event,) = [event for event in call.events if event.name == "claude_otel.refusal"]
    assert event.attributes["anthropic.message.stop_details.category"] == "cyber"
    assert event.attributes["anthropic.request.id"] == call.attributes["anthropic.request.id"]
    assert call.status.status_code.name == "UNSET"  # A refusal is an answer, not an error.


# --- the request log ------------------------------------------------------------------------------------------------


def records(caplog) -> list[tuple[str, dict]]:
    return [(record.levelname, json.loads(record.getMessage())) for record in caplog.records if record.name == "claude_otel" and record.levelno >= logging.INFO]


def test_request_log(spans: Spans, client: anthropic.Anthropic, caplog) -> None:
    caplog.set_level(logging.INFO, logger="claude_otel")
    message = client.messages.create(**KW, extra_headers=scenario("529,ok"))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**KW, extra_headers=scenario("429"))
    for _ in client.messages.create(**KW, stream=True, extra_headers=scenario("truncate")):
        pass
    (ok_level, ok), (failed_level, failed), (truncated_level, truncated) = records(caplog)
    call, _, once = spans.calls()
    assert ok_level == "INFO"
    assert ok["request_id"] == message._request_id
    assert len(ok["request_ids"]) == 2 and ok["request_ids"][-1] == message._request_id
    assert ok["model"] == MODEL
    assert ok["stop_reason"] == "end_turn"
    assert ok["input_tokens"] == message.usage.input_tokens
    assert ok["output_tokens"] == message.usage.output_tokens
    assert ok["attempts"] == 2
    assert ok["cost_usd"] == call.attributes["claude_otel.cost.usd"] > 0
    assert "cost_usd" not in failed  # Nothing was billed: no usage came back.
    assert ok["outcome"] == "ok"
    assert 0 < ok["latency_s"] < 5
    assert ok["trace_id"] == f"{call.context.trace_id:032x}"
    assert ok["span_id"] == f"{call.context.span_id:016x}"
    assert ok["timestamp"].endswith("+00:00")
    assert failed_level == "WARNING"
    assert failed["error_type"] == "rate_limit_error" and failed["error_category"] == "rate_limited"
    assert failed["attempts"] == 3 and failed["outcome"] == "failed"
    assert truncated_level == "WARNING"
    assert truncated["stream_outcome"] == "truncated" and "time_to_first_token_s" in truncated
    # One attempt: its id is the request id alone, on the span as in the record.
    assert truncated["attempts"] == 1 and truncated["request_id"].startswith("req_") and "request_ids" not in truncated
    assert once.attributes["anthropic.request.id"] == truncated["request_id"]
    assert "claude_otel.request_ids" not in once.attributes
    assert "Say hello" not in caplog.text  # No prompt content, ever.
    assert "sk-ant-test-key" not in caplog.text
    # The fields for structured handlers too, and a source that says who wrote the record.
    first = next(record for record in caplog.records if record.name == "claude_otel" and record.levelno >= logging.INFO)
    assert first.claude_otel == ok
    assert (first.module, first.funcName) == ("_request_log", "record")


def test_request_log_can_be_switched_off(sim, caplog) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    import claude_otel

    caplog.set_level(logging.INFO, logger="claude_otel")
    claude_otel.instrument(tracer_provider=TracerProvider(), request_log=False)
    try:
        anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url).messages.create(**KW)
    finally:
        claude_otel.uninstrument()
    assert records(caplog) == []


def test_request_log_as_opentelemetry_logs(sim) -> None:
    from opentelemetry.sdk._logs import LoggerProvider, export
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    import claude_otel

    # Renamed in newer SDKs; the old name warns there.
    exporter = getattr(export, "InMemoryLogRecordExporter", None) or export.InMemoryLogExporter
    exporter = exporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    claude_otel.instrument(tracer_provider=TracerProvider(), logger_provider=logger_provider)
    try:
        message = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url).messages.create(**KW)
    finally:
        claude_otel.uninstrument()
    (data,) = exporter.get_finished_logs()
    record = data.log_record
    assert record.attributes["anthropic.request.id"] == message._request_id
    assert record.attributes["gen_ai.request.model"] == MODEL
    assert record.attributes["event.name"] == "claude_otel.request"
    assert record.severity_text == "INFO"
    assert record.trace_id != 0
    assert json.loads(record.body)["request_id"] == message._request_id
