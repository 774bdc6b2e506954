"""What the application gets is the same instrumented and not: values, types, exceptions and their messages."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import anthropic
import pytest
from conftest import MESSAGES, MODEL, scenario
from opentelemetry.sdk.trace import TracerProvider
from side_by_side import Watched, outcome

import claude_otel

KW = {"model": MODEL, "max_tokens": 16, "messages": MESSAGES}


def outcomes(client: anthropic.Anthropic) -> list[object]:
    """What a spread of calls gives the application, in comparable form (request ids aside)."""
    results: list[object] = []
    message = client.messages.create(**KW)
    results.append((type(message), message.model_dump(exclude={"id"}), bool(message._request_id)))
    stream = client.messages.create(**KW, stream=True)
    results.append((type(stream), [event.model_dump() for event in stream]))
    with client.messages.stream(**KW) as helper:
        final = helper.get_final_message()
    results.append((type(helper), final.model_dump(exclude={"id"})))
    raw = client.messages.with_raw_response.create(**KW)
    results.append((type(raw), raw.status_code, type(raw.parse())))
    for steps in ("400", "429", "529+noretry", "error_event", "drop"):
        try:
            for _ in client.messages.create(**KW, stream=True, extra_headers=scenario(steps)):
                pass
            results.append(("no error", steps))
        except Exception as err:
            status = getattr(err, "status_code", None)
            results.append((type(err), str(err).replace(getattr(err, "request_id", None) or "-", "<id>"), status))
    results.append([event.type for event in client.messages.create(**KW, stream=True, extra_headers=scenario("truncate"))])
    return results


def test_same_outcomes_instrumented_and_not(sim) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=1)
    plain = outcomes(client)
    claude_otel.instrument(tracer_provider=TracerProvider())
    try:
        instrumented = outcomes(client)
    finally:
        claude_otel.uninstrument()
    assert instrumented == plain


def test_streams_keep_their_exact_type(spans, client: anthropic.Anthropic) -> None:
    stream = client.messages.create(**KW, stream=True)
    assert type(stream) is anthropic.Stream and isinstance(stream, anthropic.Stream)
    assert type(stream.response.stream).__name__ in ("SyncBody", "DualBody")  # Observed from inside, the body only.
    with client.messages.stream(**KW) as helper:
        assert type(helper) is anthropic.lib.streaming.MessageStream
    stream.close()


def test_a_broken_tracer_never_reaches_the_application(sim, client: anthropic.Anthropic) -> None:
    class BrokenTracerProvider(TracerProvider):
        def get_tracer(self, *args, **kwargs):
            tracer = super().get_tracer(*args, **kwargs)

            def start_span(*args, **kwargs):
                raise RuntimeError("tracer exploded")

            tracer.start_span = start_span
            return tracer

    claude_otel.instrument(tracer_provider=BrokenTracerProvider())
    try:
        message = client.messages.create(**KW)
        assert message.usage.output_tokens > 0
        assert [event.type for event in client.messages.create(**KW, stream=True)][-1] == "message_stop"
    finally:
        claude_otel.uninstrument()


def test_malformed_but_parseable_response(spans, client: anthropic.Anthropic) -> None:
    # No usage, an unknown stop reason, content block and event type: the span has what is known, nothing made up.
    message = client.messages.create(**KW, extra_headers=scenario("malformed"))
    assert message.stop_reason == "quantum_leap"
    events = [event.type for event in client.messages.create(**KW, stream=True, extra_headers=scenario("malformed"))]
    assert events[-1] == "message_stop"
    plain, streamed = spans.calls()
    for span in (plain, streamed):
        assert span.status.status_code.name == "UNSET"
        assert span.attributes["anthropic.message.stop_reason"] == "quantum_leap"
        assert span.attributes["gen_ai.response.finish_reasons"] == ("quantum_leap",)
        assert "gen_ai.usage.input_tokens" not in span.attributes
        assert "gen_ai.usage.output_tokens" not in span.attributes
    assert streamed.attributes["claude_otel.stream.outcome"] == "completed"


@pytest.mark.parametrize(
    ("step", "stop_reason", "finish_reason"),
    [
        ("end_turn", "end_turn", "stop"),
        ("stop_sequence", "stop_sequence", "stop"),
        ("max_tokens", "max_tokens", "length"),
        ("tool_use", "tool_use", "tool_call"),
        ("refusal", "refusal", "content_filter"),
        ("pause_turn", "pause_turn", "pause_turn"),
        ("context_window", "model_context_window_exceeded", "model_context_window_exceeded"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_stop_reasons(spans, client: anthropic.Anthropic, step: str, stop_reason: str, finish_reason: str, streamed: bool) -> None:
    if streamed:
        with client.messages.stream(**KW, extra_headers=scenario(step)) as stream:
            assert stream.get_final_message().stop_reason == stop_reason
    else:
        assert client.messages.create(**KW, extra_headers=scenario(step)).stop_reason == stop_reason
    span = spans.one()
    assert span.attributes["anthropic.message.stop_reason"] == stop_reason
    assert span.attributes["gen_ai.response.finish_reasons"] == (finish_reason,)
    if step == "refusal":
        assert span.attributes["anthropic.message.stop_details.category"] == "cyber"


# --- side by side: each behaviour of the SDK that applications rely on, once without claude_otel and once with it ---


class Probe:
    """Tags the requests of one scenario, to tell what the server saw of them: attempts, request ids, headers."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.tag = ""

    def headers(self, steps: str = "ok") -> dict[str, str]:
        self.tag = uuid.uuid4().hex
        return {**scenario(steps), "x-probe": self.tag}

    def requests(self) -> list:
        return [request for request in self.sim.requests if request.headers.get("x-probe") == self.tag]

    def attempts(self) -> list[str | None]:
        """The SDK's retry count of each attempt the server got, and the headers each had (trace context aside)."""
        requests = self.requests()
        names = [sorted(set(request.headers) - PROPAGATION_HEADERS - {"x-probe"}) for request in requests]
        return [request.headers.get("x-stainless-retry-count") for request in requests] + names

    def last_id(self) -> str | None:
        requests = self.requests()
        return requests[-1].request_id if requests else None


REQUEST_ID = re.compile(r"req_sim_[0-9]+")

PROPAGATION_HEADERS = {"traceparent", "tracestate", "baggage"}
"""What claude_otel adds to a request (unless `propagate=False`): the trace context, as every instrumentation does."""


def api_error(probe: Probe, call) -> tuple:
    """What an application reads off an API error: its type and every attribute it has."""
    try:
        call()
    except anthropic.APIError as err:
        response = getattr(err, "response", None)
        return (
            type(err),
            err.message,
            str(err),
            getattr(err, "status_code", None),
            getattr(err, "request_id", None) == probe.last_id(),
            err.body,
            response.status_code if response is not None else None,
            response.headers.get("request-id") == probe.last_id() if response is not None else None,
            probe.attempts(),
        )
    raise AssertionError("expected an API error")


def scenarios() -> dict:
    def retried_until_success(client, probe):
        message = client.messages.create(**KW, extra_headers=probe.headers("529,429,ok"))
        return message, message._request_id == probe.last_id(), probe.attempts()

    def retries_exhausted(client, probe):
        return api_error(probe, lambda: client.with_options(max_retries=1).messages.create(**KW, extra_headers=probe.headers("529")))

    def server_says_no_retry(client, probe):
        return api_error(probe, lambda: client.messages.create(**KW, extra_headers=probe.headers("503+noretry")))

    def copy_without_retries(client, probe):
        copied = client.copy(max_retries=0)
        return type(copied), api_error(probe, lambda: copied.messages.create(**KW, extra_headers=probe.headers("529,ok")))

    def with_options_timeout(client, probe):
        slow = client.with_options(timeout=0.1, max_retries=0)
        return api_error(probe, lambda: slow.messages.create(**KW, extra_headers=probe.headers("stall:0.6")))

    def request_timeout(client, probe):
        once = client.with_options(max_retries=1)
        return api_error(probe, lambda: once.messages.create(**KW, timeout=0.1, extra_headers=probe.headers("stall:0.6,stall:0.6")))

    def status_errors(client, probe):
        once = client.with_options(max_retries=1)
        return [
            api_error(probe, lambda: once.messages.create(**KW, extra_headers=probe.headers(steps)))
            for steps in ("400", "401", "403", "404", "413", "429:spend_limit", "500+noretry")
        ]

    def stream_errors(client, probe):
        def read(steps):
            return lambda: [event.type for event in client.messages.create(**KW, stream=True, extra_headers=probe.headers(steps))]

        return [api_error(probe, read(steps)) for steps in ("error_event", "529+noretry")]

    def raw_response(client, probe):
        raw = client.messages.with_raw_response.create(**KW, extra_headers=probe.headers("529,ok"))
        return (
            type(raw),
            type(raw.http_response),
            raw.status_code,
            raw.headers.get("request-id") == probe.last_id(),
            raw.retries_taken,
            raw.parse(),
            raw.parse()._request_id == probe.last_id(),
            json.loads(raw.http_response.text)["content"] == [block.model_dump(exclude_none=True) for block in raw.parse().content],
            probe.attempts(),
        )

    def streaming_response(client, probe):
        with client.messages.with_streaming_response.create(**KW, stream=True, extra_headers=probe.headers()) as response:
            lines = list(response.iter_lines())
        with client.messages.with_streaming_response.create(**KW, extra_headers=probe.headers()) as response:
            parsed = response.parse()
        return type(response), response.status_code, lines, parsed, response.is_closed

    def stream_helper(client, probe):
        with client.messages.stream(**KW, extra_headers=probe.headers()) as stream:
            texts = list(stream.text_stream)
            final = stream.get_final_message()
            return type(stream), texts, final, stream.get_final_text(), stream.current_message_snapshot

    def raw_stream(client, probe):
        stream = client.messages.create(**KW, stream=True, extra_headers=probe.headers())
        events = list(stream)
        return type(stream), events, stream.response.headers.get("request-id") == probe.last_id(), stream.response.is_closed

    def count_tokens(client, probe):
        result = client.messages.count_tokens(model=MODEL, messages=MESSAGES, extra_headers=probe.headers())
        return result, result._request_id == probe.last_id()

    def asynchronous(client, probe):
        async def main():
            async with anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=str(client.base_url), max_retries=2) as aclient:
                message = await aclient.messages.create(**KW, extra_headers=probe.headers("529,ok"))
                result = [message, message._request_id == probe.last_id(), probe.attempts()]
                async with aclient.messages.stream(**KW) as stream:
                    result.append(await stream.get_final_message())
                result.append([event async for event in await aclient.messages.create(**KW, stream=True)])
                try:
                    await aclient.with_options(max_retries=0).messages.create(**KW, extra_headers=probe.headers("429"))
                except anthropic.RateLimitError as err:
                    result.append((err.status_code, err.body, err.request_id == probe.last_id(), str(err)))
                return result

        return asyncio.run(main())

    return {fn.__name__: fn for fn in locals().values() if callable(fn)}


@pytest.mark.parametrize("name", sorted(scenarios()))
def test_side_by_side(sim, name: str) -> None:
    run = scenarios()[name]
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2)
    probe = Probe(sim)
    plain = outcome(lambda: run(client, probe))
    with Watched():
        instrumented = outcome(lambda: run(client, probe))
    # Request ids differ from run to run; each scenario checks that they are the server's.
    assert REQUEST_ID.sub("req_sim_?", repr(instrumented)) == REQUEST_ID.sub("req_sim_?", repr(plain))
    assert plain[0] == "returned", plain  # Each scenario checks what it expects itself: no surprise exception.
