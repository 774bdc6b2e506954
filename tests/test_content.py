"""Content capture: off unless opted in; the four modes; truncation that keeps the JSON whole; the redaction hook."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Iterator

import anthropic
import pytest
from conftest import MODEL, SDK_TRACES_ITSELF, scenario
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs import export as log_export
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel
from claude_otel._content import fit, request_content, to_json

SYSTEM = "You answer in one word."
MESSAGES = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"}]},
]
TOOLS = [{"name": "get_weather", "description": "The weather", "input_schema": {"type": "object"}}]
KW = {"model": MODEL, "max_tokens": 64, "system": SYSTEM, "messages": MESSAGES, "tools": TOOLS}
CONTENT_KEYS = ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions")

INPUT = [
    {"role": "user", "parts": [{"type": "text", "content": "What is the weather in Paris?"}]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
    {"role": "user", "parts": [{"type": "tool_call_response", "id": "toolu_1", "response": [{"type": "text", "text": "Sunny"}]}]},
]


class Captured:
    """claude_otel with the given content options, and the spans and log records it made."""

    def __init__(self, **options) -> None:
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        exporter_type = getattr(log_export, "InMemoryLogRecordExporter", None) or log_export.InMemoryLogExporter
        self.logs = exporter_type()
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        claude_otel.instrument(tracer_provider=provider, logger_provider=logger_provider, request_log=False, **options)

    def call(self) -> dict:
        (span,) = [span for span in self.spans.get_finished_spans() if "claude_otel.attempts" in span.attributes]
        return dict(span.attributes)

    def events(self) -> list:
        return [
            data.log_record
            for data in self.logs.get_finished_logs()
            if data.log_record.event_name == "gen_ai.client.inference.operation.details"
        ]


@pytest.fixture
def capture() -> Iterator[type[Captured]]:
    yield Captured
    claude_otel.uninstrument()


def content(attributes: dict) -> dict:
    return {key: json.loads(attributes[key]) for key in CONTENT_KEYS if key in attributes}


def test_off_by_default(capture, client: anthropic.Anthropic) -> None:
    captured = capture()
    client.messages.create(**KW)
    assert content(captured.call()) == {}
    assert captured.events() == []


@pytest.mark.parametrize("mode", ["span_only", "Span_Only", "SPAN_ONLY"])
def test_span_only_from_the_environment(capture, client: anthropic.Anthropic, monkeypatch, mode: str) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", mode)
    captured = capture()
    message = client.messages.create(**KW)
    assert content(captured.call()) == {
        "gen_ai.system_instructions": [{"type": "text", "content": SYSTEM}],
        "gen_ai.input.messages": INPUT,
        "gen_ai.output.messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": message.content[0].text}], "finish_reason": "stop"}
        ],
        "gen_ai.tool.definitions": [
            {"type": "function", "name": "get_weather", "description": "The weather", "parameters": {"type": "object"}}
        ],
    }
    assert captured.events() == []


def test_event_only(capture, client: anthropic.Anthropic) -> None:
    captured = capture(capture_content="EVENT_ONLY")
    message = client.messages.create(**KW)
    attributes = captured.call()
    assert content(attributes) == {}
    (event,) = captured.events()
    # Structured, not JSON strings, and in the call span's trace.
    assert event.attributes["gen_ai.input.messages"][0]["parts"][0]["content"] == "What is the weather in Paris?"
    assert event.attributes["gen_ai.output.messages"][0]["parts"][0]["content"] == message.content[0].text
    assert event.attributes["gen_ai.response.id"] == message.id
    assert event.attributes["gen_ai.request.model"] == MODEL
    (span,) = [span for span in captured.spans.get_finished_spans() if "claude_otel.attempts" in span.attributes]
    assert (event.trace_id, event.span_id) == (span.context.trace_id, span.context.span_id)


def test_span_and_event(capture, client: anthropic.Anthropic) -> None:
    captured = capture(capture_content="span_and_event")
    client.messages.create(**KW)
    assert set(content(captured.call())) == set(CONTENT_KEYS)
    assert len(captured.events()) == 1


def test_the_option_wins_over_the_environment(capture, client: anthropic.Anthropic, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT")
    captured = capture(capture_content="NO_CONTENT")
    client.messages.create(**KW)
    assert content(captured.call()) == {}
    assert captured.events() == []


def test_invalid_environment_value_warns_once_and_captures_nothing(capture, client: anthropic.Anthropic, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with pytest.warns(claude_otel.ConfigurationWarning) as warned:
        captured = capture()
        client.messages.create(**KW)
        client.messages.create(**KW)
    warnings = [str(warning.message) for warning in warned if "CAPTURE_MESSAGE_CONTENT" in str(warning.message)]
    assert len(warnings) == 1 and "NO_CONTENT" in warnings[0]
    assert all(not content(dict(span.attributes)) for span in captured.spans.get_finished_spans())


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"capture_content": "yes"}, ValueError),
        ({"max_content_bytes": 0}, ValueError),
        ({"capture_content": True}, TypeError),  # A wrong type is a TypeError, a bad value a ValueError.
        ({"max_content_bytes": "1000"}, TypeError),
        ({"content_hook": "x"}, TypeError),
    ],
)
def test_invalid_options_raise(options, error) -> None:
    with pytest.raises(error, match="claude_otel"):
        claude_otel.instrument(tracer_provider=TracerProvider(), **options)
    assert not claude_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry


def test_the_sdks_content_mode_is_honoured(capture, client: anthropic.Anthropic, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", "content")
    sdk_client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=client.base_url)  # Reads it when made.
    captured = capture()
    sdk_client.messages.create(**KW)
    assert set(content(captured.call())) == set(CONTENT_KEYS)


def test_our_setting_wins_over_the_sdks(capture, client: anthropic.Anthropic, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE", "content")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "no_content")
    sdk_client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=client.base_url)
    captured = capture()
    sdk_client.messages.create(**KW)
    assert content(captured.call()) == {}


@pytest.mark.skipif(not SDK_TRACES_ITSELF, reason="the client option exists from SDK 1.14 on")
def test_the_sdk_client_option_is_honoured(capture, sim) -> None:
    sdk_client = anthropic.Anthropic(
        api_key="sk-ant-test-key", base_url=sim.url, open_telemetry={"traces": {"content_mode": "content", "max_content_bytes": 60}}
    )
    captured = capture()
    sdk_client.messages.create(**KW)
    attributes = captured.call()
    assert set(content(attributes)) == set(CONTENT_KEYS)
    assert attributes["claude_otel.content.truncated"] is True  # Within the client's own limit.


@pytest.mark.parametrize("step", ["ok", "tool_use"])
def test_streams_have_the_same_content_as_whole_answers(capture, client: anthropic.Anthropic, step: str) -> None:
    captured = capture(capture_content="SPAN_ONLY")
    client.messages.create(**KW, extra_headers=scenario(step))
    whole = content(captured.call())
    for read in (
        lambda: list(client.messages.create(**KW, stream=True, extra_headers=scenario(step))),
        lambda: client.messages.stream(**KW, extra_headers=scenario(step)).__enter__().get_final_message(),
    ):
        captured.spans.clear()
        read()
        gc.collect()  # The helper left unclosed ends with its body.
        assert content(captured.call()) == whole


def test_async_stream(capture, async_client: anthropic.AsyncAnthropic) -> None:
    captured = capture(capture_content="SPAN_ONLY")

    async def read():
        async with async_client.messages.stream(**KW) as stream:
            return await stream.get_final_message()

    message = asyncio.run(read())
    output = content(captured.call())["gen_ai.output.messages"]
    assert output[0]["parts"][0]["content"] == message.content[0].text


def test_failed_and_truncated_calls(capture, client: anthropic.Anthropic) -> None:
    captured = capture(capture_content="SPAN_ONLY")
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(**KW, extra_headers=scenario("400"))
    failed = content(captured.call())
    assert failed["gen_ai.input.messages"] == INPUT
    assert "gen_ai.output.messages" not in failed  # No answer came.
    captured.spans.clear()
    events = list(client.messages.create(**KW, stream=True, extra_headers=scenario("truncate")))
    (output,) = content(captured.call())["gen_ai.output.messages"]
    received = "".join(event.delta.text for event in events if event.type == "content_block_delta")
    assert output == {"role": "assistant", "parts": [{"type": "text", "content": received}], "finish_reason": "error"}


def test_truncation_keeps_the_json_whole(capture, client: anthropic.Anthropic) -> None:
    captured = capture(capture_content="SPAN_ONLY", max_content_bytes=900)
    long = "ü" * 5000
    client.messages.create(**{**KW, "messages": [*MESSAGES, {"role": "user", "content": long}]})
    attributes = captured.call()
    values = content(attributes)
    assert attributes["claude_otel.content.truncated"] is True
    assert sum(len(attributes[key].encode()) for key in values) <= 900
    inputs = values["gen_ai.input.messages"]
    assert [message["role"] for message in inputs] == ["user", "assistant", "user", "user"]
    assert inputs[:3] == INPUT  # The short ones stay whole; the long one gives up what it must.
    assert 0 < len(inputs[3]["parts"][0]["content"]) < 5000 and long.startswith(inputs[3]["parts"][0]["content"])


@pytest.mark.parametrize("value", ["0", "-5", "lots", "9" * 5000])
def test_an_invalid_limit_in_the_environment_warns(capture, client: anthropic.Anthropic, monkeypatch, value: str) -> None:
    monkeypatch.setenv("CLAUDE_OTEL_MAX_CONTENT_BYTES", value)
    with pytest.warns(claude_otel.ConfigurationWarning, match="CLAUDE_OTEL_MAX_CONTENT_BYTES"):
        captured = capture(capture_content="SPAN_ONLY")
    client.messages.create(**KW)
    assert "claude_otel.content.truncated" not in captured.call()  # The default limit.


def test_the_environment_sets_the_limit(capture, client: anthropic.Anthropic, monkeypatch) -> None:
    monkeypatch.setenv("CLAUDE_OTEL_MAX_CONTENT_BYTES", "300")
    captured = capture(capture_content="SPAN_ONLY")
    client.messages.create(**KW)
    attributes = captured.call()
    assert attributes["claude_otel.content.truncated"] is True
    assert sum(len(attributes[key].encode()) for key in content(attributes)) <= 300


def _shape(value):
    if isinstance(value, str):
        return str
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return value


def _prefixes(cut, original) -> bool:
    if isinstance(cut, str):
        return original.startswith(cut)
    if isinstance(cut, dict):
        return all(_prefixes(cut[key], original[key]) for key in cut)
    if isinstance(cut, list):
        return all(_prefixes(a, b) for a, b in zip(cut, original))
    return cut == original


content_values = st.recursive(
    st.text() | st.integers() | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from(CONTENT_KEYS), st.lists(content_values, max_size=4), min_size=1), limit=st.integers(1, 300))
def test_fit_property(values: dict, limit: int) -> None:
    kept, texts, truncated = fit(values, limit)
    assert texts == {key: to_json(value) for key, value in kept.items()}
    assert [json.loads(text) for text in texts.values()] == list(kept.values())  # Valid JSON, every time.
    size = sum(len(text.encode()) for text in texts.values())
    if all(value == [] for value in kept.values()) and truncated:
        return  # The structure alone was over the limit.
    assert size <= limit
    assert _shape(kept) == _shape(values)  # Nothing but strings changed...
    assert _prefixes(kept, values)  # ...and only by losing their ends.
    assert truncated == (kept != values)


def test_hook_redacts(capture, client: anthropic.Anthropic) -> None:
    def redact(values: dict) -> dict:
        for message in values["gen_ai.input.messages"]:
            for part in message["parts"]:
                if part["type"] == "text":
                    part["content"] = "[redacted]"
        values.pop("gen_ai.system_instructions")
        return values

    captured = capture(capture_content="SPAN_ONLY", content_hook=redact)
    client.messages.create(**KW)
    values = content(captured.call())
    assert values["gen_ai.input.messages"][0]["parts"][0]["content"] == "[redacted]"
    assert "gen_ai.system_instructions" not in values
    assert MESSAGES[0]["content"] == "What is the weather in Paris?"  # The application's own messages are untouched.


def test_hook_returning_none_records_nothing(capture, client: anthropic.Anthropic) -> None:
    captured = capture(capture_content="SPAN_AND_EVENT", content_hook=lambda values: None)
    client.messages.create(**KW)
    assert content(captured.call()) == {}
    assert captured.events() == []


@pytest.mark.parametrize("hook", [lambda values: 1 / 0, lambda values: "not a mapping"])
def test_a_failing_hook_never_breaks_the_call(capture, client: anthropic.Anthropic, caplog, hook) -> None:
    captured = capture(capture_content="SPAN_AND_EVENT", content_hook=hook)
    with caplog.at_level(logging.DEBUG, logger="claude_otel"):
        message = client.messages.create(**KW)
    assert message.stop_reason == "end_turn"
    assert content(captured.call()) == {}
    assert captured.events() == []
    (failure,) = [record for record in caplog.records if "could not capture the content" in record.getMessage()]
    assert failure.levelno == logging.DEBUG


def test_count_tokens_has_no_content(capture, client: anthropic.Anthropic) -> None:
    captured = capture(capture_content="SPAN_ONLY")
    client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert content(captured.call()) == {}


any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "text", "content", "input", "role", "x"]) | st.text(max_size=3), inner, max_size=4),
    max_leaves=15,
)
block_types = st.sampled_from(["text", "thinking", "tool_use", "mcp_tool_use", "tool_result", "web_search_tool_result", "image", "document", 7, None])


@settings(max_examples=150, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "system": any_json,
            "messages": st.lists(st.fixed_dictionaries({}, optional={"role": any_json, "content": any_json | st.lists(st.fixed_dictionaries({"type": block_types}, optional={"text": any_json, "input": any_json, "content": any_json, "source": any_json}))})),
            "tools": any_json,
        },
    )
)
def test_any_request_body_gives_json_within_the_limit(body: dict) -> None:
    # Whatever an application sends, the content is JSON that fits.
    values = {key: value for key, value in request_content(body).items() if value is not None}
    kept, texts, _ = fit(values, 2000)
    for text in texts.values():
        json.loads(text)
    assert sum(len(text.encode()) for text in texts.values()) <= 2000 or all(value == [] for value in kept.values())


def test_images_and_documents_keep_only_their_type(capture, client: anthropic.Anthropic) -> None:
    data = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [image, {"type": "text", "text": "a chart"}]}
    captured = capture(capture_content="SPAN_ONLY")
    client.messages.create(**{**KW, "messages": [{"role": "user", "content": [image, document, result]}]})
    attributes = captured.call()
    assert data not in attributes["gen_ai.input.messages"]
    (message,) = content(attributes)["gen_ai.input.messages"]
    assert message["parts"] == [
        {"type": "anthropic_image"},
        {"type": "anthropic_document"},
        {"type": "tool_call_response", "id": "toolu_1", "response": [{"type": "image"}, {"type": "text", "text": "a chart"}]},
    ]
