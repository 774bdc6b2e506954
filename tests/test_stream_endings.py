"""A streamed call's span ends exactly once, however the stream ends, and says how it ended."""

from __future__ import annotations

import asyncio
import gc

import anthropic
import pytest
from conftest import MESSAGES, MODEL, Spans, scenario

KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}


def ended(spans: Spans, outcome: str, *, read: bool = True):
    gc.collect()
    span = spans.one()
    assert span.attributes["claude_otel.stream.outcome"] == outcome
    if read:
        # The usage of `message_start` is known however the stream ended: those input tokens are billed.
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
    else:
        # Nothing of the body was read, so nothing of it is known (and nothing made up).
        assert "gen_ai.usage.input_tokens" not in span.attributes
    return span


def test_read_to_the_end(spans: Spans, client: anthropic.Anthropic) -> None:
    for _ in client.messages.create(**KW, stream=True):
        pass
    span = ended(spans, "completed")
    assert span.attributes["gen_ai.usage.output_tokens"] == 13


def test_break_then_close(spans: Spans, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**KW, stream=True)
    for event in stream:
        if event.type == "content_block_delta":
            break
    assert spans.calls() == []  # Still the application's to read.
    stream.close()
    span = ended(spans, "abandoned")
    assert span.status.status_code.name == "UNSET"  # The application's choice, not a failure.
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)  # A finish reason never came.
    assert "gen_ai.usage.output_tokens" not in span.attributes  # Not final before `message_delta`.


def test_break_then_drop(spans: Spans, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**KW, stream=True)
    for _ in stream:
        break
    del stream
    ended(spans, "abandoned")


def test_context_manager_exit_unread(spans: Spans, client: anthropic.Anthropic) -> None:
    with client.messages.stream(**KW):
        pass
    ended(spans, "abandoned", read=False)


def test_close_without_iterating(spans: Spans, client: anthropic.Anthropic) -> None:
    client.messages.create(**KW, stream=True).close()
    ended(spans, "abandoned", read=False)


def test_never_iterated_and_dropped(spans: Spans, client: anthropic.Anthropic) -> None:
    client.messages.create(**KW, stream=True)
    ended(spans, "abandoned", read=False)


def test_error_event_after_200(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        for _ in client.messages.create(**KW, stream=True, extra_headers=scenario("error_event")):
            pass
    span = ended(spans, "failed")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "overloaded_error"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["anthropic.request.id"] == caught.value.request_id
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert [event.name for event in span.events] == ["exception", "claude_otel.stream.failure"]  # Recorded once.


def test_dropped_connection(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(Exception) as caught:
        for _ in client.messages.create(**KW, stream=True, extra_headers=scenario("drop")):
            pass
    span = ended(spans, "failed")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "connection_error", type(caught.value)


def test_truncated_stream(spans: Spans, client: anthropic.Anthropic) -> None:
    # The application sees no error at all: only the span can tell that the answer is cut short.
    events = [event.type for event in client.messages.create(**KW, stream=True, extra_headers=scenario("truncate"))]
    assert "message_stop" not in events
    span = ended(spans, "truncated")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "api_error"  # The SDK's own span's value for it.


def test_stream_helper_error_event(spans: Spans, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(**KW, extra_headers=scenario("error_event")) as stream:
            stream.get_final_message()
    ended(spans, "failed")


# --- async twins ---------------------------------------------------------------------------------------------------


def run(coroutine) -> None:
    asyncio.run(coroutine)


def test_async_read_break_close(spans: Spans, async_client: anthropic.AsyncAnthropic) -> None:
    async def main() -> None:
        stream = await async_client.messages.create(**KW, stream=True)
        async for event in stream:
            if event.type == "content_block_delta":
                break
        await stream.close()

    run(main())
    ended(spans, "abandoned")


def test_async_context_exit_unread(spans: Spans, async_client: anthropic.AsyncAnthropic) -> None:
    async def main() -> None:
        async with async_client.messages.stream(**KW):
            pass

    run(main())
    ended(spans, "abandoned", read=False)


def test_async_task_cancelled(spans: Spans, sim, async_client: anthropic.AsyncAnthropic) -> None:
    sim.event_delay = 0.05
    started = asyncio.Event

    async def consume(reading: asyncio.Event) -> None:
        async with async_client.messages.stream(**KW) as stream:
            async for _ in stream.text_stream:
                reading.set()

    async def main() -> None:
        reading = started()
        task = asyncio.create_task(consume(reading))
        await reading.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(main())
    finally:
        sim.event_delay = 0.0
    span = ended(spans, "abandoned")
    assert span.status.status_code.name == "UNSET"


@pytest.mark.parametrize(
    ("steps", "outcome", "error_type"),
    [("error_event", "failed", "overloaded_error"), ("drop", "failed", "connection_error"), ("truncate", "truncated", "api_error")],
)
def test_async_failures(spans: Spans, async_client: anthropic.AsyncAnthropic, steps: str, outcome: str, error_type: str) -> None:
    async def main() -> None:
        stream = await async_client.messages.create(**KW, stream=True, extra_headers=scenario(steps))
        try:
            async for _ in stream:
                pass
        except Exception:
            if outcome == "truncated":
                raise

    run(main())
    span = ended(spans, outcome)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == error_type
