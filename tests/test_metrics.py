"""Metrics, read through a real metric reader: names, units, buckets, attributes and values."""

from __future__ import annotations

import json

import anthropic
import pytest
from conftest import MESSAGES, MODEL, Spans, scenario

from claude_otel.testing import RateLimits, Simulator

KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def by(points, **match):
    return [point for point in points if all(point.attributes.get(key.replace("__", ".")) == value for key, value in match.items())]


def test_plain_call(spans: Spans, client: anthropic.Anthropic) -> None:
    message = client.messages.create(**KW)
    span = spans.one()
    duration = spans.metric("gen_ai.client.inference.duration")
    assert duration.unit == "s"
    (point,) = duration.data.data_points
    assert point.count == 1
    assert point.sum == pytest.approx((span.end_time - span.start_time) / 1e9, rel=0.2, abs=0.005)
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert point.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "server.address": "127.0.0.1",
        "server.port": span.attributes["server.port"],
    }
    assert point.exemplars and point.exemplars[0].span_id == span.context.span_id  # Links to the trace.
    (tokens,) = spans.points("gen_ai.client.inference.usage.input_tokens")
    assert tokens.value == message.usage.input_tokens
    assert tokens.attributes["gen_ai.token.modality"] == "unknown"
    (output,) = spans.points("gen_ai.client.inference.usage.output_tokens")
    assert output.value == message.usage.output_tokens
    assert spans.metric("gen_ai.client.inference.usage.output_tokens").unit == "{token}"
    (histogram,) = spans.points("gen_ai.client.inference.operation.output_tokens")
    assert histogram.sum == message.usage.output_tokens and tuple(histogram.explicit_bounds) == TOKEN_BUCKETS
    assert spans.points("gen_ai.client.inference.time_to_first_chunk") == []  # Streams only.
    (calls,) = spans.points("claude_otel.calls")
    assert calls.value == 1 and calls.attributes["anthropic.message.stop_reason"] == "end_turn"
    (cost,) = spans.points("claude_otel.cost")
    assert spans.metric("claude_otel.cost").unit == "USD"
    assert cost.value == pytest.approx(span.attributes["claude_otel.cost.usd"])


def test_stream(spans: Spans, client: anthropic.Anthropic) -> None:
    with client.messages.stream(**KW) as stream:
        stream.until_done()
    span = spans.one()
    (ttft,) = spans.points("gen_ai.client.inference.time_to_first_chunk")
    assert ttft.count == 1 and ttft.sum == pytest.approx(span.attributes["gen_ai.response.time_to_first_chunk"])
    (output,) = spans.points("gen_ai.client.inference.usage.output_tokens")
    assert output.value == 13  # Cumulative message_delta count, not added to message_start's.


def test_failures_and_retries(spans: Spans, client: anthropic.Anthropic) -> None:
    client.messages.create(**KW, extra_headers=scenario("529,ok"))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**KW, extra_headers=scenario("429"))
    with pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(**KW, stream=True, extra_headers=scenario("error_event")):
            pass
    durations = spans.points("gen_ai.client.inference.duration")
    assert sorted(point.attributes.get("error.type", "") for point in durations) == ["", "overloaded_error", "rate_limit_error"]
    attempts = spans.points("claude_otel.attempts")
    counts = {(p.attributes.get("http.response.status_code"), p.attributes.get("error.type")): p.value for p in attempts}
    assert counts == {(529, "529"): 1, (200, None): 2, (429, "429"): 3}
    calls = spans.points("claude_otel.calls")
    (streamed,) = by(calls, claude_otel__stream__outcome="failed")
    assert streamed.attributes["error.type"] == "overloaded_error"
    assert streamed.attributes["claude_otel.error.category"] == "overloaded"
    (limited,) = by(calls, error__type="rate_limit_error")
    assert limited.attributes["claude_otel.error.category"] == "rate_limited"
    # Usage counters count every call: the rate-limited one billed nothing; the stream's input was billed.
    inputs = spans.points("gen_ai.client.inference.usage.input_tokens")
    assert sum(point.value for point in inputs) == sum(
        span.attributes.get("gen_ai.usage.input_tokens", 0) for span in spans.calls()
    )


def test_refusals_and_stop_reasons(spans: Spans, client: anthropic.Anthropic) -> None:
    for step in ("refusal", "refusal", "max_tokens", "ok"):
        client.messages.create(**KW, extra_headers=scenario(step))
    calls = spans.points("claude_otel.calls")
    (refusals,) = by(calls, anthropic__message__stop_reason="refusal")
    assert refusals.value == 2 and refusals.attributes["anthropic.message.stop_details.category"] == "cyber"
    assert by(calls, anthropic__message__stop_reason="max_tokens")[0].value == 1


def test_count_tokens_is_not_inference(spans: Spans, client: anthropic.Anthropic) -> None:
    client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert spans.points("gen_ai.client.inference.duration") == []
    assert spans.points("gen_ai.client.inference.usage.input_tokens") == []
    (point,) = spans.points("claude_otel.calls")
    assert point.value == 1 and point.attributes["gen_ai.operation.name"] == "count_tokens"


def test_a_call_waiting_for_collection_holds_no_span(spans: Spans, client: anthropic.Anthropic) -> None:
    """Until the next collection a call's metrics wait in a queue, which holds what they need (attributes, the
    attempts' outcomes, the trace's ids), not the span nor the responses: a busy service between two collections
    keeps little per call. The collection then still has every value, and exemplars still point at the span."""
    import gc
    import weakref

    from opentelemetry.sdk.trace import SpanProcessor

    held: list[weakref.ref] = []

    class Watch(SpanProcessor):
        def on_start(self, span, parent_context=None) -> None:
            held.append(weakref.ref(span))

    spans.provider.add_span_processor(Watch())
    client.messages.create(**KW, extra_headers=scenario("529,ok"))
    gc.collect()
    assert len(held) == 3 and all(ref() is None for ref in held)  # The call span and its two attempt spans.
    # The first collection: exemplars are those of the interval since the last one.
    (point,) = spans.metric("gen_ai.client.inference.duration").data.data_points
    assert point.count == 1 and point.exemplars[0].span_id == spans.calls()[0].context.span_id
    attempts = spans.points("claude_otel.attempts")
    assert sorted(point.attributes.get("http.response.status_code") for point in attempts) == [200, 529]


def test_metric_work_waits_for_collection_within_a_bound() -> None:
    """A call's metrics are worked out at collection time; with no reader to collect, the queue stays bounded, each
    call beyond the bound works off one queued entry (never a pause for all of them), and every value is recorded."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.trace import INVALID_SPAN

    from claude_otel._metrics import _MAX_PENDING, _Later, _record_histograms

    reader = InMemoryMetricReader()
    histogram = MeterProvider(metric_readers=[reader]).get_meter("test").create_histogram("h")
    later = _Later()

    def recorded() -> int:
        data = reader.get_metrics_data()
        return sum(point.count for point in data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points) if data else 0

    for value in range(_MAX_PENDING * 3):
        later.add(_record_histograms, (INVALID_SPAN.get_span_context(), [(histogram, value, {"k": "v"})]))
        assert len(later._pending) <= _MAX_PENDING
    assert recorded() == _MAX_PENDING * 2  # One entry worked off by each addition beyond the bound.
    later.flush()
    (point,) = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert point.count == _MAX_PENDING * 3 and point.sum == sum(range(_MAX_PENDING * 3))


def test_legacy_names_are_opt_in(sim) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    import claude_otel

    reader = InMemoryMetricReader()
    claude_otel.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader]), legacy_metrics=True)
    try:
        message = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url).messages.create(**KW)
    finally:
        claude_otel.uninstrument()
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert metrics["gen_ai.client.operation.duration"].data.data_points[0].count == 1
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"].data.data_points}
    assert usage == {"input": message.usage.input_tokens, "output": message.usage.output_tokens}
    assert "gen_ai.client.inference.duration" in metrics  # The current names stay.


def test_one_attribute_set_in_any_order_is_one_point() -> None:
    """Sums are keyed by pairs in the order they were added; the same set in another order is the same point."""
    import threading

    from claude_otel._metrics import _Sums

    sums = _Sums(threading.Lock())
    sums.values[(("a", "1"), ("b", "2"))] = 3
    sums.values[(("b", "2"), ("a", "1"))] = 4
    sums.values[(("a", "1"),)] = 5
    observed = sorted((sorted(o.attributes.items()), o.value) for o in sums.observe(None))
    assert observed == [([("a", "1")], 5), ([("a", "1"), ("b", "2")], 7)]


def _headroom(spans: Spans) -> dict[tuple[str, str, str], float]:
    """The rate-limit gauges now: {(metric, model, kind): value}."""
    return {
        (name.rpartition(".")[2], point.attributes["gen_ai.request.model"], point.attributes["claude_otel.rate_limit.kind"]): point.value
        for name in ("claude_otel.rate_limit.remaining", "claude_otel.rate_limit.limit")
        for point in spans.points(name)
    }


def test_rate_limit_gauges_follow_the_last_response(spans: Spans) -> None:
    """The headroom an on-call engineer alerts on: what the API's `anthropic-ratelimit-*` headers said last, per
    model and kind, as the simulator counts them down (requests, input tokens, max_tokens) within its minute."""
    limits = RateLimits(requests=10, input_tokens=1000, output_tokens=500)
    with Simulator(rate_limits=limits) as sim, anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url) as client:
        assert spans.points("claude_otel.rate_limit.remaining") == []  # Nothing seen, nothing reported.
        raw = [client.messages.with_raw_response.create(**KW) for _ in range(3)]
    headers = raw[-1].headers
    gauges = _headroom(spans)
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        key = kind.replace("-", "_")
        assert gauges[("remaining", MODEL, key)] == float(headers[f"anthropic-ratelimit-{kind}-remaining"])
        assert gauges[("limit", MODEL, key)] == float(headers[f"anthropic-ratelimit-{kind}-limit"])
    assert gauges[("remaining", MODEL, "requests")] == 7 and gauges[("limit", MODEL, "requests")] == 10
    assert gauges[("remaining", MODEL, "output_tokens")] == 500 - 3 * KW["max_tokens"]
    assert gauges[("remaining", MODEL, "tokens")] == min(gauges[("remaining", MODEL, "input_tokens")], 500 - 3 * 64)
    assert spans.metric("claude_otel.rate_limit.remaining").unit == "{count}"


def test_rate_limit_gauges_after_reset_and_on_bad_headers(spans: Spans, client: anthropic.Anthropic, sim) -> None:
    """Past its reset time a limit is whole again (a quiet service does not alert forever on its last busy
    minute); a header that is not a number or a time is left out, never guessed, and breaks nothing."""
    body = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-raw-1", "content": [],
                       "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}})
    headers = {
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "2",
        "anthropic-ratelimit-requests-reset": "2020-01-01T00:00:00Z",
        "anthropic-ratelimit-tokens-limit": "9000", "anthropic-ratelimit-tokens-remaining": "12",
        "anthropic-ratelimit-tokens-reset": "2999-01-01T00:00:00Z",
        "anthropic-ratelimit-input-tokens-limit": "lots", "anthropic-ratelimit-input-tokens-remaining": "3",
        "anthropic-ratelimit-output-tokens-limit": "100", "anthropic-ratelimit-output-tokens-remaining": "1",
        "anthropic-ratelimit-output-tokens-reset": "soon",
    }  # fmt: skip
    key = sim.raw(body.encode(), content_type="application/json", headers=headers)
    message = client.messages.create(**{**KW, "model": "claude-raw-1"}, extra_headers=scenario(f"raw:{key}"))
    assert message.stop_reason == "end_turn"
    gauges = {(field, kind): value for (field, model, kind), value in _headroom(spans).items() if model == "claude-raw-1"}
    assert gauges == {
        ("remaining", "requests"): 50, ("limit", "requests"): 50,   # reset in the past: replenished
        ("remaining", "tokens"): 12, ("limit", "tokens"): 9000,     # reset ahead: as sent
        ("remaining", "input_tokens"): 3,                           # its limit is not a number: left out
        ("remaining", "output_tokens"): 1, ("limit", "output_tokens"): 100,  # no reset time known: as sent
    }  # fmt: skip
