"""Attribution: `claude_otel.attributes(feature=..., tenant=...)` on spans and metric points, everywhere it should go."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest
from conftest import MESSAGES, MODEL, Spans
from opentelemetry import context, propagate
from opentelemetry.sdk.trace import TracerProvider

import claude_otel

KW = {"model": MODEL, "max_tokens": 16, "messages": MESSAGES}


def features(spans: Spans) -> list[tuple[str | None, str | None]]:
    return sorted((s.attributes.get("claude_otel.feature", ""), s.attributes.get("claude_otel.tenant", "")) for s in spans.calls())


def test_block_reaches_spans_and_every_metric(spans: Spans, client: anthropic.Anthropic) -> None:
    with claude_otel.attributes(feature="search", tenant="acme"):
        client.messages.create(**KW)
    client.messages.create(**KW)  # Outside: no attribution.
    assert features(spans) == [("", ""), ("search", "acme")]
    for name in (
        "gen_ai.client.inference.duration",
        "gen_ai.client.inference.usage.input_tokens",
        "claude_otel.cost",
        "claude_otel.calls",
        "claude_otel.attempts",
    ):
        attributed = [p for p in spans.points(name) if p.attributes.get("claude_otel.feature") == "search"]
        assert len(attributed) == 1, name
        assert attributed[0].attributes["claude_otel.tenant"] == "acme"


def test_nesting_and_decorators(spans: Spans, client: anthropic.Anthropic, async_client) -> None:
    @claude_otel.attributes(feature="summarize")
    def summarize() -> None:
        client.messages.create(**KW)

    @claude_otel.attributes(feature="chat")
    async def chat() -> None:
        await async_client.messages.create(**KW)

    with claude_otel.attributes(feature="outer", tenant="t1"):
        summarize()
        asyncio.run(chat())
        client.messages.create(**KW)
    assert features(spans) == [("chat", "t1"), ("outer", "t1"), ("summarize", "t1")]


def test_threads_that_copy_the_context_and_tasks(spans: Spans, client: anthropic.Anthropic, async_client) -> None:
    def in_thread(tenant: str) -> None:
        with claude_otel.attributes(feature="batch-job", tenant=tenant):
            snapshot = contextvars.copy_context()
        with ThreadPoolExecutor(1) as pool:
            pool.submit(snapshot.run, client.messages.create, **KW).result()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(in_thread, [f"tenant-{n}" for n in range(8)]))

    async def task(tenant: str) -> None:
        with claude_otel.attributes(feature="async-job", tenant=tenant):
            await asyncio.sleep(0)
            await async_client.messages.create(**KW)

    async def main() -> None:
        await asyncio.gather(*(task(f"tenant-{n}") for n in range(8)))

    asyncio.run(main())
    assert features(spans) == sorted(
        [("batch-job", f"tenant-{n}") for n in range(8)] + [("async-job", f"tenant-{n}") for n in range(8)]
    )


def test_baggage_hop_to_a_downstream_service(spans: Spans, client: anthropic.Anthropic) -> None:
    carrier: dict[str, str] = {}
    with claude_otel.attributes(feature="checkout", tenant="acme"):
        propagate.inject(carrier)  # What an instrumented HTTP client sends downstream.
    assert "claude_otel.feature=checkout" in carrier["baggage"]
    token = context.attach(propagate.extract(carrier))  # The downstream service, in another request.
    try:
        client.messages.create(**KW)
    finally:
        context.detach(token)
    assert features(spans) == [("checkout", "acme")]


def test_baggage_from_upstream_cannot_pose_as_claude_otel_attributes(spans: Spans, client: anthropic.Anthropic) -> None:
    # Baggage arrives from other services: only `claude_otel.<identifier>` entries are attribution. Any other
    # `claude_otel.` entry would collide with the attributes claude_otel sets (a string where it puts a boolean).
    carrier = {"baggage": "claude_otel.feature=checkout,claude_otel.cost.unpriced=forged,claude_otel.Bad=x"}
    token = context.attach(propagate.extract(carrier))
    try:
        client.messages.create(**{**KW, "model": "claude-opus-4-9"})  # Unpriced: its cost point says so.
    finally:
        context.detach(token)
    (span,) = spans.calls()
    assert span.attributes["claude_otel.feature"] == "checkout"
    assert span.attributes["claude_otel.cost.unpriced"] is True and "claude_otel.Bad" not in span.attributes
    (point,) = spans.points("claude_otel.cost")
    assert point.attributes["claude_otel.cost.unpriced"] is True
    assert point.attributes["claude_otel.feature"] == "checkout" and "claude_otel.Bad" not in point.attributes


def test_attribution_never_reaches_the_api_but_reaches_the_applications_own_services(spans: Spans, client: anthropic.Anthropic, sim) -> None:
    """Feature and tenant names are often customer identifiers: the API gets `traceparent` and the application's
    other baggage, never claude_otel's entries; the application's own propagation still carries them downstream."""
    from opentelemetry import baggage, context
    from opentelemetry.propagate import inject

    token = context.attach(baggage.set_baggage("region", "eu"))
    try:
        with claude_otel.attributes(feature="search", tenant="acme-corp"):
            message = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
            downstream: dict[str, str] = {}
            inject(downstream)  # What the application sends its own services.
    finally:
        context.detach(token)
    (request,) = [request for request in sim.requests if request.request_id == message._request_id]
    assert request.headers["traceparent"].startswith("00-")
    assert request.headers.get("baggage") == "region=eu"
    assert "acme-corp" not in json.dumps(request.headers) and "claude_otel" not in json.dumps(request.headers)
    assert "claude_otel.tenant=acme-corp" in downstream["baggage"] and "claude_otel.feature=search" in downstream["baggage"]
    assert spans.one().attributes["claude_otel.tenant"] == "acme-corp"


def test_cardinality_guard(sim, caplog) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]), max_attribute_values=3)
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url)
    try:
        with caplog.at_level(logging.WARNING, logger="claude_otel"):
            for user in range(6):  # A mistake: a user id as the feature.
                with claude_otel.attributes(feature=f"user-{user}"):
                    client.messages.create(**KW)
    finally:
        claude_otel.uninstrument()
    points = [
        p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name == "claude_otel.calls" for p in m.data.data_points
    ]
    values = {p.attributes["claude_otel.feature"]: p.value for p in points}
    assert values == {"user-0": 1, "user-1": 1, "user-2": 1, "_other": 3}
    assert len([r for r in caplog.records if "distinct values" in r.getMessage()]) == 1
    spans = [s for s in exporter.get_finished_spans() if "claude_otel.attempts" in s.attributes]
    assert sorted(s.attributes["claude_otel.feature"] for s in spans) == [f"user-{n}" for n in range(6)]  # Spans keep them.


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="lowercase identifier"):
        claude_otel.attributes(**{"Feature Name": "x"})
    with pytest.raises(TypeError, match="must be a string"):
        claude_otel.attributes(feature=["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_attribute_values"):
        claude_otel.instrument(tracer_provider=TracerProvider(), max_attribute_values=0)
