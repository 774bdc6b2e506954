"""Every entry point of the SDK is exactly one call span, and returns what it returns uninstrumented."""

from __future__ import annotations

import asyncio
import inspect

import anthropic
import pytest
from conftest import MESSAGES, MODEL, Spans

import claude_otel

KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}


def assert_chat_span(span, *, streamed: bool) -> None:
    attributes = span.attributes
    assert span.name == f"chat {MODEL}"
    assert span.kind.name == "CLIENT"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.response.model"] == MODEL
    assert attributes["gen_ai.response.id"].startswith("msg_sim_")
    assert attributes["anthropic.request.id"].startswith("req_sim_")
    assert attributes["anthropic.message.stop_reason"] == "end_turn"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.output_tokens"] == 13  # 12 words and the end, counted once
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["http.response.status_code"] == 200
    assert attributes["server.address"] == "127.0.0.1"
    assert span.status.status_code.name == "UNSET"
    if streamed:
        assert attributes["gen_ai.request.stream"] is True
        assert attributes["claude_otel.stream.outcome"] == "completed"
        assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < span.end_time - span.start_time
    else:
        assert "gen_ai.request.stream" not in attributes
        assert "gen_ai.response.time_to_first_chunk" not in attributes


def test_create(spans: Spans, client: anthropic.Anthropic) -> None:
    message = client.messages.create(**KW)
    assert type(message) is anthropic.types.Message
    assert message.usage.output_tokens == 13
    assert_chat_span(spans.one(), streamed=False)
    assert spans.one().attributes["anthropic.request.id"] == message._request_id


def test_create_stream(spans: Spans, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**KW, stream=True)
    # The SDK's own object, not a proxy: on 0.x `isinstance` accepts only the exact type.
    assert type(stream) is anthropic.Stream
    assert isinstance(stream, anthropic.Stream)
    events = [event.type for event in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert_chat_span(spans.one(), streamed=True)


@pytest.mark.parametrize("read", ["text_stream", "get_final_message", "get_final_text", "until_done", "iterate"])
def test_stream_helper(spans: Spans, client: anthropic.Anthropic, read: str) -> None:
    with client.messages.stream(**KW) as stream:
        assert type(stream).__name__ == "MessageStream"
        if read == "text_stream":
            assert "".join(stream.text_stream).startswith("Telemetry")
        elif read == "iterate":
            assert [event.type for event in stream][-1] == "message_stop"
        elif read == "until_done":
            stream.until_done()
        else:
            getattr(stream, read)()
        final = stream.get_final_message()
    assert final.usage.output_tokens == 13
    assert_chat_span(spans.one(), streamed=True)


def test_stream_helper_span_starts_when_entered(spans: Spans, client: anthropic.Anthropic) -> None:
    manager = client.messages.stream(**KW)
    assert spans.calls() == []  # No request yet, so no span.
    with manager as stream:
        stream.until_done()
    assert_chat_span(spans.one(), streamed=True)


def test_parse(spans: Spans, client: anthropic.Anthropic) -> None:
    message = client.messages.parse(**KW)
    assert type(message).__name__.startswith("ParsedMessage")
    assert_chat_span(spans.one(), streamed=False)


def test_count_tokens(spans: Spans, client: anthropic.Anthropic) -> None:
    count = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    span = spans.one()
    assert span.name == f"count_tokens {MODEL}"
    assert span.attributes["anthropic.message.count_tokens.input_tokens"] == count.input_tokens
    assert span.attributes["gen_ai.request.model"] == MODEL
    assert "gen_ai.operation.name" not in span.attributes  # Not an inference: kept out of GenAI inference queries.


def test_with_raw_response(spans: Spans, client: anthropic.Anthropic) -> None:
    response = client.messages.with_raw_response.create(**KW)
    assert response.headers["request-id"].startswith("req_sim_")
    # The span ended with the usage already, whether or not the application parses the response.
    assert_chat_span(spans.one(), streamed=False)
    assert response.parse().usage.output_tokens == 13


def test_with_raw_response_stream(spans: Spans, client: anthropic.Anthropic) -> None:
    response = client.messages.with_raw_response.create(**KW, stream=True)
    stream = response.parse()
    assert type(stream) is anthropic.Stream
    assert [event.type for event in stream][-1] == "message_stop"
    assert_chat_span(spans.one(), streamed=True)


def test_with_streaming_response(spans: Spans, client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(**KW) as response:
        assert spans.calls() == []  # The body is unread: the call is not over.
        assert response.parse().usage.output_tokens == 13
    span = spans.one()
    assert_chat_span(span, streamed=False)
    assert span.attributes["claude_otel.stream.outcome"] == "completed"


def test_with_streaming_response_stream(spans: Spans, client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(**KW, stream=True) as response:
        stream = response.parse()
        assert [event.type for event in stream][-1] == "message_stop"
    assert_chat_span(spans.one(), streamed=True)


def test_with_streaming_response_read_as_lines(spans: Spans, client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(**KW, stream=True) as response:
        lines = list(response.iter_lines())
    assert "event: message_stop" in lines
    span = spans.one()
    assert span.attributes["claude_otel.stream.outcome"] == "completed"
    assert span.status.status_code.name == "UNSET"


def test_beta_create_and_stream(spans: Spans, client: anthropic.Anthropic) -> None:
    message = client.beta.messages.create(**KW, betas=["context-management-2025-06-27"])
    assert type(message).__name__ == "BetaMessage"
    with client.beta.messages.stream(**KW, betas=["context-management-2025-06-27"]) as stream:
        assert type(stream).__name__ == "BetaMessageStream"
        stream.until_done()
    client.beta.messages.count_tokens(model=MODEL, messages=MESSAGES)
    plain, streamed, counted = spans.calls()
    assert_chat_span(plain, streamed=False)
    assert_chat_span(streamed, streamed=True)
    assert counted.name == f"count_tokens {MODEL}"
    for span in (plain, streamed):
        assert span.attributes["anthropic.beta"] == ("context-management-2025-06-27",)
        assert span.attributes["url.path"] == "/v1/messages"
    assert len(spans.calls()) == 3


def test_non_messages_calls_are_not_ours(spans: Spans, client: anthropic.Anthropic) -> None:
    assert client.models.retrieve(MODEL).id == MODEL  # The simulator serves the models of the price table.
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-no-such-model")
    assert spans.calls() == []


# --- async twins ---------------------------------------------------------------------------------------------------


def test_async_entry_points(spans: Spans, async_client: anthropic.AsyncAnthropic) -> None:
    async def main() -> None:
        message = await async_client.messages.create(**KW)
        assert type(message) is anthropic.types.Message
        stream = await async_client.messages.create(**KW, stream=True)
        assert type(stream) is anthropic.AsyncStream
        assert [event.type async for event in stream][-1] == "message_stop"
        async with async_client.messages.stream(**KW) as helper:
            assert "".join([text async for text in helper.text_stream]).startswith("Telemetry")
        async with async_client.beta.messages.stream(**KW) as beta:
            await beta.get_final_message()
        raw = await async_client.messages.with_raw_response.create(**KW)
        parsed = raw.parse()  # A coroutine from 1.0 on; 0.x's legacy raw response parses at once.
        parsed = await parsed if inspect.isawaitable(parsed) else parsed
        assert parsed.usage.output_tokens == 13
        async with async_client.messages.with_streaming_response.create(**KW) as streaming:
            assert (await streaming.parse()).usage.output_tokens == 13
        await async_client.messages.count_tokens(model=MODEL, messages=MESSAGES)
        await async_client.close()

    asyncio.run(main())
    created, streamed, helper, beta, raw, streaming, counted = spans.calls()
    assert_chat_span(created, streamed=False)
    for span in (streamed, helper, beta):
        assert_chat_span(span, streamed=True)
    assert_chat_span(raw, streamed=False)
    assert_chat_span(streaming, streamed=False)
    assert counted.name == f"count_tokens {MODEL}"
    assert len(spans.calls()) == 7


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_tool_calls_are_named_without_their_arguments(spans: Spans, client: anthropic.Anthropic, stream: bool) -> None:
    """Which tools the model called, with content capture off: names, ids and types on the span and the counter;
    never the arguments, which are the user's data."""
    with claude_otel.attributes(feature="agent"):
        for step in ("tool_use", "web_search"):
            kwargs = {**KW, "extra_headers": {"x-claude-sim": step}}
            if stream:
                with client.messages.stream(**kwargs) as events:
                    events.until_done()
            else:
                client.messages.create(**kwargs)
    tools, searched = spans.calls()
    assert tools.attributes["claude_otel.tool_calls.names"] == ("get_weather",)
    assert tools.attributes["claude_otel.tool_calls.ids"] == ("toolu_sim_1",)
    assert tools.attributes["claude_otel.tool_calls.types"] == ("function",)
    assert searched.attributes["claude_otel.tool_calls.names"] == ("web_search",)
    assert searched.attributes["claude_otel.tool_calls.types"] == ("extension",)
    assert "Paris" not in str(dict(tools.attributes)) and "claude-otel" not in str(dict(searched.attributes))
    counted = {(p.attributes["gen_ai.tool.name"], p.attributes["gen_ai.tool.type"], p.attributes["claude_otel.feature"]): p.value
               for p in spans.points("claude_otel.tool_calls")}  # fmt: skip
    assert counted == {("get_weather", "function", "agent"): 1, ("web_search", "extension", "agent"): 1}


def test_a_call_without_tools_has_no_tool_attributes(spans: Spans, client: anthropic.Anthropic) -> None:
    client.messages.create(**KW)
    assert not any(key.startswith("claude_otel.tool_calls") for key in spans.one().attributes)
    assert spans.points("claude_otel.tool_calls") == []
