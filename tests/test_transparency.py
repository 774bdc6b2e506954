"""What the application gets is the same instrumented and not: values, types, exceptions and their messages."""

from __future__ import annotations

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider

import claude_otel
from conftest import MESSAGES, MODEL, scenario

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
