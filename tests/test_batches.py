"""Message Batches, end to end over real sockets: a span per batch call, the results' outcomes, tokens and cost at
the batch rate, the attribution of the batch's creation, the turnaround, and the 413 of a batch too large."""

from __future__ import annotations

import asyncio
import gc

import anthropic
import pytest
from conftest import Spans, scenario
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel
from claude_otel.testing import Simulator

# claude-sonnet-5-5, USD per million tokens: input 2, 5m cache write 2.50, 1h cache write 4, cache read 0.10, output 10.
SONNET = "claude-sonnet-5-5"
HAIKU = "claude-haiku-5-5"  # prompts up to 100K tokens: input 0.10, 5m write 0.125, 1h write 0.20, read 0.01, output 0.50
TURNAROUND = 1830.0  # The simulator's: each batch ends that many seconds after its `created_at`.


def request(custom_id: str, model: str = SONNET) -> dict:
    return {
        "custom_id": custom_id,
        "params": {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": f"Summarize {custom_id}."}]},
    }


# Two plain answers, one with cache reads and writes, one on another model, one errored, one expired.
REQUESTS = [
    request("ok-1"),
    request("ok-2"),
    request("cache-3"),
    request("ok-4", HAIKU),
    request("errored-5"),
    request("expired-6"),
]


def batch_cost(results: list) -> float:
    """The cost of the succeeded results, by hand: the published rates, halved for the Batch API."""
    rates = {
        SONNET: {"input": 2, "write_5m": 2.50, "write_1h": 4, "read": 0.10, "output": 10},
        HAIKU: {"input": 0.10, "write_5m": 0.125, "write_1h": 0.20, "read": 0.01, "output": 0.50},
    }
    total = 0.0
    for result in results:
        if result.result.type != "succeeded":
            continue
        message = result.result.message
        rate, usage = rates[message.model], message.usage
        creation = usage.cache_creation
        total += (
            usage.input_tokens * rate["input"]
            + creation.ephemeral_5m_input_tokens * rate["write_5m"]
            + creation.ephemeral_1h_input_tokens * rate["write_1h"]
            + usage.cache_read_input_tokens * rate["read"]
            + usage.output_tokens * rate["output"]
        ) / 1e6
    return total * 0.5


def ended_batch(client: anthropic.Anthropic, requests: list = REQUESTS) -> str:
    batch = client.messages.batches.create(requests=requests)
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        pass
    return batch.id


def named(spans: Spans, name: str) -> list[ReadableSpan]:
    gc.collect()
    return [span for span in spans.calls() if span.name == f"anthropic.messages.batches.{name}"]


def points_by(spans: Spans, metric: str, *keys: str) -> dict:
    """The sum of the metric's points by the values of `keys` (one key: by its value; more: by a tuple)."""
    found: dict = {}
    for point in spans.points(metric):
        labels = tuple(point.attributes.get(key) for key in keys)
        label = labels[0] if len(keys) == 1 else labels
        found[label] = found.get(label, 0) + point.value
    return found


def test_create_span(spans: Spans, client: anthropic.Anthropic, sim: Simulator) -> None:
    batch = client.messages.batches.create(requests=REQUESTS)
    (span,) = named(spans, "create")
    sent = [entry for entry in sim.requests if entry.path == "/v1/messages/batches"][-1]
    attributes = span.attributes
    assert attributes["anthropic.message.batch.id"] == batch.id
    assert attributes["anthropic.message.batch.request_count"] == 6
    assert attributes["claude_otel.batch.custom_id_count"] == 6
    assert attributes["claude_otel.batch.models"] == (HAIKU, SONNET)
    assert attributes["http.request.body.size"] == int(sent.headers["content-length"])
    assert attributes["anthropic.message.batch.processing_status"] == "in_progress"
    assert attributes["anthropic.message.batch.request_counts.processing"] == 6
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/v1/messages/batches"
    assert attributes["anthropic.request.id"] == batch._request_id
    assert "gen_ai.operation.name" not in attributes  # Not an inference: no GenAI operation on the span.
    assert spans.attempts(span) == []  # A first-time success: the call span says it all.


def test_lifecycle(spans: Spans, client: anthropic.Anthropic) -> None:
    with claude_otel.attributes(feature="nightly-summaries"):
        batch_id = ended_batch(client)
    results = list(client.messages.batches.results(batch_id))
    page = client.messages.batches.list(extra_headers=scenario("529,ok"))
    client.messages.batches.delete(batch_id, extra_headers=scenario("500,ok"))

    (create,) = named(spans, "create")
    retrieves = named(spans, "retrieve")
    assert [span.attributes["anthropic.message.batch.processing_status"] for span in retrieves] == [
        "in_progress",
        "ended",
        "ended",  # `results()` retrieves the batch for its results URL.
    ]
    ended = retrieves[1].attributes
    assert ended["anthropic.message.batch.request_counts.succeeded"] == 4
    assert ended["anthropic.message.batch.request_counts.errored"] == 1
    assert ended["anthropic.message.batch.request_counts.expired"] == 1
    assert ended["claude_otel.batch.turnaround"] == TURNAROUND
    assert ended["http.route"] == "/v1/messages/batches/{message_batch_id}"

    (read,) = named(spans, "results")
    attributes = read.attributes
    assert attributes["anthropic.message.batch.id"] == batch_id
    assert attributes["http.route"] == "/v1/messages/batches/{message_batch_id}/results"
    assert attributes["claude_otel.stream.outcome"] == "completed"
    assert {kind: attributes[f"claude_otel.batch.results.{kind}"] for kind in ("succeeded", "errored", "canceled", "expired")} == {
        "succeeded": 4,
        "errored": 1,
        "canceled": 0,
        "expired": 1,
    }
    succeeded = [result.result.message.usage for result in results if result.result.type == "succeeded"]
    assert attributes["gen_ai.usage.output_tokens"] == sum(usage.output_tokens for usage in succeeded)
    assert attributes["gen_ai.usage.input_tokens"] == sum(
        usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens for usage in succeeded
    )
    assert attributes["claude_otel.cost.usd"] == pytest.approx(batch_cost(results))
    # The results link to the batch's creation, in another trace.
    assert [link.context.span_id for link in read.links] == [create.context.span_id]
    assert read.context.trace_id != create.context.trace_id

    (listed,) = named(spans, "list")
    assert listed.attributes["claude_otel.batch.listed"] == len(page.data)
    assert [attempt.name for attempt in spans.attempts(listed)] == ["GET", "GET"]  # Retried: a span per attempt.
    (deleted,) = named(spans, "delete")
    assert deleted.attributes["anthropic.message.batch.id"] == batch_id
    assert [attempt.name for attempt in spans.attempts(deleted)] == ["DELETE", "DELETE"]
    # Every batch call counts, by its operation.
    operations = points_by(spans, "claude_otel.calls", "gen_ai.operation.name")
    assert operations == {
        "batches.create": 1,
        "batches.retrieve": 3,
        "batches.results": 1,
        "batches.list": 1,
        "batches.delete": 1,
    }


def test_results_metrics_at_the_batch_rate(spans: Spans, client: anthropic.Anthropic) -> None:
    with claude_otel.attributes(feature="nightly-summaries"):
        batch_id = ended_batch(client)
    with claude_otel.attributes(feature="reader"):  # Results count for the feature that created the batch.
        results = list(client.messages.batches.results(batch_id))

    counts = points_by(spans, "claude_otel.batch.results", "claude_otel.batch.result.type", "error.type")
    assert counts == {("succeeded", None): 4, ("errored", "invalid_request_error"): 1, ("expired", None): 1}
    for point in spans.points("claude_otel.batch.results"):
        assert point.attributes["claude_otel.feature"] == "nightly-summaries"

    cost = spans.points("claude_otel.cost")
    assert {point.attributes["anthropic.response.service_tier"] for point in cost} == {"batch"}
    assert {point.attributes["claude_otel.feature"] for point in cost} == {"nightly-summaries"}
    assert sum(point.value for point in cost) == pytest.approx(batch_cost(results))
    by_model = points_by(spans, "gen_ai.client.inference.usage.output_tokens", "gen_ai.request.model")
    assert by_model == {
        SONNET: sum(r.result.message.usage.output_tokens for r in results[:3]),
        HAIKU: results[3].result.message.usage.output_tokens,
    }
    assert sum(point.value for point in spans.points("gen_ai.client.inference.usage.cache_read.input_tokens")) == 2000

    (turnaround,) = spans.points("claude_otel.batch.turnaround")
    assert turnaround.count == 1 and turnaround.sum == TURNAROUND
    assert turnaround.attributes["claude_otel.feature"] == "nightly-summaries"
    assert spans.metric("claude_otel.batch.turnaround").unit == "s"


def test_results_count_once_per_batch(spans: Spans, client: anthropic.Anthropic) -> None:
    batch_id = ended_batch(client)
    # Stopped after one result: the span says so, the metrics wait for a whole read.
    results = client.messages.batches.results(batch_id)
    next(iter(results))
    results.close()
    assert spans.points("claude_otel.batch.results") == []
    for _ in range(2):  # Read to the end twice: counted once.
        list(client.messages.batches.results(batch_id))
    assert sum(point.value for point in spans.points("claude_otel.batch.results")) == 6

    outcomes = [span.attributes["claude_otel.stream.outcome"] for span in named(spans, "results")]
    assert outcomes == ["abandoned", "completed", "completed"]
    (point,) = spans.points("claude_otel.batch.turnaround")
    assert point.count == 1  # Seen ended four times; recorded once.


def test_results_read_that_fails(spans: Spans, client: anthropic.Anthropic) -> None:
    batch_id = ended_batch(client)
    with pytest.raises(Exception) as raised:  # The HTTP library's error: the SDK does not wrap a body's read.
        list(client.messages.batches.results(batch_id, extra_headers=scenario("drop")))
    assert type(raised.value).__module__.split(".")[0] in ("httpx", "httpx2")
    (span,) = named(spans, "results")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["claude_otel.stream.outcome"] == "failed"
    assert span.attributes["claude_otel.batch.results.succeeded"] == 1
    (event,) = [event for event in span.events if event.name == "claude_otel.stream.failure"]
    assert event.attributes["claude_otel.batch.results_read"] == 1
    assert spans.points("claude_otel.batch.results") == []


def test_cancel(spans: Spans, client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(requests=REQUESTS[:3])
    canceled = client.messages.batches.cancel(batch.id)
    ended = client.messages.batches.retrieve(batch.id)
    list(client.messages.batches.results(batch.id))
    (span,) = named(spans, "cancel")
    assert span.attributes["anthropic.message.batch.processing_status"] == canceled.processing_status == "canceling"
    assert span.attributes["http.route"] == "/v1/messages/batches/{message_batch_id}/cancel"
    assert ended.request_counts.canceled == 3
    (read,) = named(spans, "results")
    assert read.attributes["claude_otel.batch.results.canceled"] == 3
    assert "claude_otel.cost.usd" not in read.attributes  # Nothing succeeded: nothing billed.
    assert points_by(spans, "claude_otel.batch.results", "claude_otel.batch.result.type") == {"canceled": 3}


def test_streaming_and_raw_responses(spans: Spans, client: anthropic.Anthropic) -> None:
    if not hasattr(client.messages.batches.with_streaming_response, "results"):
        pytest.skip("this SDK has no streaming response for batch results")
    batch_id = ended_batch(client)
    with client.messages.batches.with_streaming_response.results(batch_id) as response:
        lines = [line for line in response.iter_lines() if line]
    raw = client.messages.batches.with_raw_response.retrieve(batch_id)
    assert len(lines) == 6 and raw.parse().id == batch_id
    (read,) = named(spans, "results")
    assert read.attributes["claude_otel.batch.results.succeeded"] == 4
    assert read.attributes["claude_otel.stream.outcome"] == "completed"
    assert named(spans, "retrieve")[-1].attributes["anthropic.message.batch.processing_status"] == "ended"


def test_beta_batches(spans: Spans, client: anthropic.Anthropic) -> None:
    batch = client.beta.messages.batches.create(requests=REQUESTS[:2])
    (span,) = named(spans, "create")
    assert span.attributes["anthropic.message.batch.id"] == batch.id
    assert span.attributes["http.route"] == "/v1/messages/batches"


def test_async_lifecycle(spans: Spans, async_client: anthropic.AsyncAnthropic) -> None:
    async def run() -> list:
        with claude_otel.attributes(feature="async-nightly"):
            batch = await async_client.messages.batches.create(requests=REQUESTS)
        while (await async_client.messages.batches.retrieve(batch.id)).processing_status != "ended":
            pass
        results = [result async for result in await async_client.messages.batches.results(batch.id)]
        await async_client.messages.batches.cancel(batch.id)
        await async_client.messages.batches.delete(batch.id)
        await async_client.close()
        return results

    results = asyncio.run(run())
    (create,) = named(spans, "create")
    (read,) = named(spans, "results")
    assert [link.context.span_id for link in read.links] == [create.context.span_id]
    assert read.attributes["claude_otel.cost.usd"] == pytest.approx(batch_cost(results))
    assert read.attributes["claude_otel.batch.results.errored"] == 1
    assert {point.attributes["claude_otel.feature"] for point in spans.points("claude_otel.cost")} == {"async-nightly"}
    assert len(named(spans, "cancel")) == len(named(spans, "delete")) == 1


def test_too_large(spans: Spans) -> None:
    with Simulator(max_batch_bytes=1000) as small:
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=small.url)
        with pytest.raises(anthropic.APIStatusError) as raised:
            client.messages.batches.create(requests=REQUESTS * 3)
    assert raised.value.status_code == 413
    (span,) = named(spans, "create")
    attributes = span.attributes
    assert attributes["error.type"] == "request_too_large"
    assert attributes["claude_otel.error.category"] == "caller_error"
    assert attributes["claude_otel.error.retryable"] is False
    assert attributes["http.request.body.size"] == int(small.requests[-1].headers["content-length"]) > 1000
    assert attributes["claude_otel.attempts"] == 1  # The SDK does not retry a 413.


def test_attribution_from_a_callback(sim: Simulator) -> None:
    # Created while claude_otel is not instrumented, as in another process: nothing of the batch is known here.
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url)
    batch_id = ended_batch(client)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = Spans(exporter, provider, InMemoryMetricReader())
    claude_otel.instrument(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[spans.reader]),
        batch_attribution=lambda batch_id, custom_id: {"tenant": "acme" if custom_id.endswith(("1", "3")) else "globex"},
    )
    try:
        with claude_otel.attributes(feature="nightly"):
            list(client.messages.batches.results(batch_id))
    finally:
        claude_otel.uninstrument()
    (read,) = named(spans, "results")
    assert list(read.links) == []
    by_tenant = points_by(spans, "claude_otel.batch.results", "claude_otel.tenant", "claude_otel.batch.result.type")
    # ok-1 and cache-3 are acme's; ok-2, ok-4, errored-5, expired-6 globex's.
    assert by_tenant == {("acme", "succeeded"): 2, ("globex", "succeeded"): 2, ("globex", "errored"): 1, ("globex", "expired"): 1}
    assert {point.attributes["claude_otel.feature"] for point in spans.points("claude_otel.batch.results")} == {"nightly"}


def test_bad_attribution_callback_never_breaks_reading(sim: Simulator, caplog) -> None:
    def broken(batch_id: str, custom_id: str) -> dict:
        raise KeyError(custom_id)

    claude_otel.instrument(tracer_provider=TracerProvider(), batch_attribution=broken)
    try:
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url)
        results = list(client.messages.batches.results(ended_batch(client)))
    finally:
        claude_otel.uninstrument()
    assert len(results) == 6
    warnings = [record for record in caplog.records if "batch_attribution" in record.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


def test_batch_attribution_must_be_a_function() -> None:
    with pytest.raises(TypeError, match="batch_attribution"):
        # A provider of its own: `instrument()` sets up the global one (OTLP to localhost) before it checks options.
        claude_otel.instrument(tracer_provider=TracerProvider(), batch_attribution="tenant")
