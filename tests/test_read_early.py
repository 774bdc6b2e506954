"""Streams whose body was read before the call returned: the span ends with what the application reads.

A transport that reads every response whole before handing it on (a recorder, a proxy), or on SDK >= 2 a middleware
that caches streamed responses (it reads the one it got and returns its own, made from the bytes), leaves no body
to watch: the `Stream` the application iterates is all there is. The call's span must still end when the reading
does, with what the events said, for each way a stream ends: read to the end, an error event, the end before
`message_stop`, the end before the first event; closed early, or dropped unread. Real SDK, real sockets, the
simulator; sync and async.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from typing import Any

import anthropic
import pytest
from anthropic import _base_client
from conftest import MESSAGES, MODEL, Spans, scenario

httpx = getattr(_base_client, "httpx2", None) or _base_client.httpx
KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES, "stream": True}
HAS_MIDDLEWARE = "middleware" in inspect.signature(anthropic.Anthropic).parameters


def _made_from_bytes(response: Any, content: bytes, request: Any) -> Any:
    """A response of the same status and headers whose body is `content`: closed (read) from the start."""
    headers = [(name, value) for name, value in response.headers.raw if name.lower() not in (b"content-length", b"transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=content, request=request)


class Reading(httpx.HTTPTransport):
    """Reads every response whole before the SDK gets it."""

    def handle_request(self, request: Any) -> Any:
        response = super().handle_request(request)
        content = response.read()
        response.close()
        return _made_from_bytes(response, content, request)


class AsyncReading(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: Any) -> Any:
        response = await super().handle_async_request(request)
        content = await response.aread()
        await response.aclose()
        return _made_from_bytes(response, content, request)


def _caching(client_of: Any) -> Any:
    """A middleware that reads the response it got and returns its own, made from the same bytes."""

    def caching(request: Any, call_next: Any) -> Any:
        sent = call_next(request)
        raw = sent.http_response
        replay = _made_from_bytes(raw, raw.read(), raw.request)
        return anthropic.APIResponse(raw=replay, cast_to=request.cast_to, client=client_of(), stream=True,
                                     stream_cls=request.stream_cls, options=request.options)  # fmt: skip

    return caching


def _async_caching(client_of: Any) -> Any:
    async def caching(request: Any, call_next: Any) -> Any:
        sent = await call_next(request)
        raw = sent.http_response
        replay = _made_from_bytes(raw, await raw.aread(), raw.request)
        return anthropic.AsyncAPIResponse(raw=replay, cast_to=request.cast_to, client=client_of(), stream=True,
                                          stream_cls=request.stream_cls, options=request.options)  # fmt: skip

    return caching


def _client(sim: Any, how: str) -> anthropic.Anthropic:
    if how == "transport":
        return anthropic.Anthropic(api_key="sk-ant-test", base_url=sim.url, http_client=httpx.Client(transport=Reading()))
    holder: list[anthropic.Anthropic] = []
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=sim.url, middleware=[_caching(lambda: holder[0])])
    holder.append(client)
    return client


def _async_client(sim: Any, how: str) -> anthropic.AsyncAnthropic:
    if how == "transport":
        return anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=sim.url, http_client=httpx.AsyncClient(transport=AsyncReading()))
    holder: list[anthropic.AsyncAnthropic] = []
    client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=sim.url, middleware=[_async_caching(lambda: holder[0])])
    holder.append(client)
    return client


HOW = [
    "transport",
    pytest.param("middleware", marks=pytest.mark.skipif(not HAS_MIDDLEWARE, reason="the SDK's middleware (anthropic >= 2)")),
]
ENDINGS = [
    # step, outcome, error.type, whether the application sees an error
    pytest.param("ok", "completed", None, False, id="read to the end"),
    pytest.param("error_event", "failed", "overloaded_error", True, id="error event"),
    # A stream cut short is the API's failure (`api_error`), though the application sees none.
    pytest.param("truncate", "truncated", "api_error", False, id="ends before message_stop"),
    pytest.param("empty", "truncated", "api_error", False, id="ends before the first event"),
]


def _step(sim: Any, step: str) -> str:
    return f"raw:{sim.raw(b'')}" if step == "empty" else step


def _assert_ended(span: Any, outcome: str, error: str | None, events: bool) -> None:
    attributes = span.attributes
    assert attributes["claude_otel.stream.outcome"] == outcome
    assert attributes.get("error.type") == error
    assert (span.status.status_code.name == "ERROR") == (error is not None)
    if events:
        assert attributes["gen_ai.response.id"].startswith("msg_")
    else:
        assert "gen_ai.response.id" not in attributes


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("step", "outcome", "error", "raises"), ENDINGS)
def test_every_ending_of_a_stream_read_early(spans: Spans, sim: Any, how: str, step: str, outcome: str, error: str | None, raises: bool) -> None:
    with _client(sim, how) as client:
        stream = client.messages.create(**KW, extra_headers=scenario(_step(sim, step)))
        assert stream.response.is_closed  # Read before the call returned: no body left to watch.
        assert spans.calls() == []  # The span waits for the application's reading.
        try:
            for _ in stream:
                pass
        except anthropic.APIStatusError:
            assert raises
        span = spans.one()
    _assert_ended(span, outcome, error, events=step != "empty")
    if step == "ok":
        assert span.attributes["gen_ai.usage.output_tokens"] > 0 and span.attributes["anthropic.message.stop_reason"] == "end_turn"


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("step", "outcome", "error", "raises"), ENDINGS)
def test_every_ending_of_an_async_stream_read_early(spans: Spans, sim: Any, how: str, step: str, outcome: str, error: str | None, raises: bool) -> None:
    async def read() -> None:
        async with _async_client(sim, how) as client:
            stream = await client.messages.create(**KW, extra_headers=scenario(_step(sim, step)))
            assert spans.calls() == []
            try:
                async for _ in stream:
                    pass
            except anthropic.APIStatusError:
                assert raises

    asyncio.run(read())
    _assert_ended(spans.one(), outcome, error, events=step != "empty")


@pytest.mark.parametrize("how", HOW)
def test_a_stream_read_early_closed_or_dropped_is_abandoned(spans: Spans, sim: Any, how: str) -> None:
    with _client(sim, how) as client:
        stream = client.messages.create(**KW)
        next(iter(stream))
        stream.close()
        [closed] = spans.calls()
        assert closed.attributes["claude_otel.stream.outcome"] == "abandoned"
        assert closed.attributes["gen_ai.response.id"].startswith("msg_")  # What was read is there.
        assert closed.status.status_code.name == "UNSET"  # The application's choice, not a failure.

        dropped = client.messages.create(**KW)
        del dropped
        gc.collect()
        assert [span.attributes["claude_otel.stream.outcome"] for span in spans.calls()] == ["abandoned", "abandoned"]

        with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as helper:
            text = helper.get_final_text()
        assert text
        assert spans.calls()[-1].attributes["claude_otel.stream.outcome"] == "completed"
