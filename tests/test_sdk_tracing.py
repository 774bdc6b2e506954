"""Next to the SDK's own tracing (anthropic >= 1.14): one span per call, a superset of the SDK's attributes, and the
trace context still sent to the API."""

from __future__ import annotations

import gc
import json

import anthropic
import pytest
from conftest import MESSAGES, MODEL, SDK_TRACES_ITSELF, Spans, is_call_span, scenario
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel

needs_sdk_tracing = pytest.mark.skipif(not SDK_TRACES_ITSELF, reason="the SDK traces itself from 1.14 on")

RICH = {
    "model": MODEL,
    "max_tokens": 2048,
    "messages": MESSAGES,
    "stop_sequences": ["END"],
    "output_config": {"effort": "high"},
    # Sampling parameters, which SDK 2.x no longer has as arguments, as applications still send them.
    "extra_body": {"temperature": 0.5, "top_k": 40, "top_p": 0.9},
    "service_tier": "auto",
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "extra_headers": {"anthropic-beta": "context-management-2025-06-27, files-api-2025-04-14"},
}

# Values that differ between two runs of the same call, whatever records them.
PER_RUN = {"anthropic.request.id", "gen_ai.response.time_to_first_chunk"}

# Content attributes (JSON strings): ours holds all of the SDK's and may add to it, such as the `finish_reason` that
# the conventions' schema requires of an output message.
CONTENT = {"gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages"}


def holds(ours: object, theirs: object) -> bool:
    """Whether `ours` has all of `theirs`: the same lists, and objects with at least the same fields."""
    if isinstance(theirs, dict):
        return isinstance(ours, dict) and all(key in ours and holds(ours[key], value) for key, value in theirs.items())
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(map(holds, ours, theirs))
    return ours == theirs


def run_calls(client: anthropic.Anthropic) -> None:
    """A spread of calls whose spans are compared: plain, streamed, with the helper, beta, counted, failed."""
    client.messages.create(**RICH)
    for _ in client.messages.create(**RICH, stream=True):
        pass
    with client.messages.stream(**RICH) as stream:
        stream.until_done()
    client.beta.messages.create(**RICH, betas=["files-api-2025-04-14"])
    client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    client.messages.create(**{**RICH, "extra_headers": {**RICH["extra_headers"], **scenario("cache")}})
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(**{**RICH, "extra_headers": scenario("429")})
    for _ in client.messages.create(**{**RICH, "extra_headers": scenario("truncate")}, stream=True):
        pass
    with pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(**{**RICH, "extra_headers": scenario("error_event")}, stream=True):
            pass
    stream = client.messages.create(**RICH, stream=True)
    next(iter(stream))
    stream.close()


def run_batch_calls(client: anthropic.Anthropic) -> None:
    """Every Message Batches call: create, retrieve until ended, results, list, cancel, delete, a failed retrieve."""
    params = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}
    batch = client.messages.batches.create(
        requests=[{"custom_id": "ok-1", "params": params}, {"custom_id": "errored-2", "params": params}]
    )
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        pass
    for _ in client.messages.batches.results(batch.id):
        pass
    client.messages.batches.list()
    other = client.beta.messages.batches.create(requests=[{"custom_id": "ok-1", "params": params}])
    client.messages.batches.cancel(other.id)
    client.messages.batches.delete(batch.id)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_missing")


def sdk_client(sim, provider: TracerProvider, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test-key", base_url=sim.url, open_telemetry={"tracer_provider": provider, **options}
    )


@needs_sdk_tracing
@pytest.mark.parametrize(
    ("workload", "count", "per_run", "traces"),
    [
        (run_calls, 10, PER_RUN, {}),
        # Batch ids, and the URLs that hold them, differ between the two runs against one simulator.
        (run_batch_calls, 10, PER_RUN | {"anthropic.message.batch.id", "url.full", "url.path"}, {}),
        # In the SDK's content mode, claude_otel captures content as well (on spans), unless told otherwise.
        (run_calls, 10, PER_RUN, {"content_mode": "content"}),
    ],
    ids=["calls", "batches", "content"],
)
def test_superset_of_the_sdk_span(sim, workload, count, per_run, traces: dict) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    workload(sdk_client(sim, provider, traces=traces))  # The SDK's own spans, claude_otel not instrumented.
    gc.collect()
    sdk_spans = exporter.get_finished_spans()
    exporter.clear()
    assert {span.instrumentation_scope.name for span in sdk_spans} == {"com.anthropic.sdk.python"}

    claude_otel.instrument(tracer_provider=TracerProvider())  # Exports nowhere: the client's own provider wins.
    try:
        workload(sdk_client(sim, provider, traces=traces))
        gc.collect()
        ours = [span for span in exporter.get_finished_spans() if is_call_span(span)]
    finally:
        claude_otel.uninstrument()

    # Never two call spans for a call: no SDK span at all, and ours (their attempt spans aside) one for one.
    assert {span.instrumentation_scope.name for span in exporter.get_finished_spans()} == {"claude_otel"}
    assert len(ours) == len(sdk_spans) == count
    assert any(CONTENT & set(span.attributes) for span in sdk_spans) == bool(traces)
    for sdk_span, our_span in zip(sdk_spans, ours):
        missing = {key: value for key, value in sdk_span.attributes.items() if key not in our_span.attributes}
        assert not missing, (sdk_span.name, missing)
        differing = {
            key: (value, our_span.attributes[key])
            for key, value in sdk_span.attributes.items()
            if key not in per_run | CONTENT and our_span.attributes[key] != value
        }
        differing.update(
            {
                key: (value, our_span.attributes[key])
                for key, value in sdk_span.attributes.items()
                if key in CONTENT and not holds(json.loads(our_span.attributes[key]), json.loads(value))
            }
        )
        assert not differing, (sdk_span.name, differing)
        assert (our_span.status.status_code.name == "ERROR") == (sdk_span.status.status_code.name == "ERROR")


@needs_sdk_tracing
def test_sdk_spans_of_other_calls_are_kept(spans: Spans, sim) -> None:
    client = sdk_client(sim, spans.provider)
    client.models.retrieve(MODEL)
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    names = sorted(span.name for span in spans.all())
    assert names == ["anthropic.models.retrieve", f"chat {MODEL}"]


def test_trace_context_is_sent_to_the_api(spans: Spans, client: anthropic.Anthropic, sim) -> None:
    message = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers=scenario("529,ok"))
    call = spans.one()
    sent = sim.requests[-2:]
    assert sent[-1].request_id == message._request_id
    # The first attempt carries the call span's context; the retry its own attempt span's, so that what the API
    # traces of it nests under the attempt it served (see _attempts.py).
    first, retry = spans.attempts(call)
    assert [request.headers.get("traceparent", "")[:-3] for request in sent] == [
        f"00-{call.context.trace_id:032x}-{call.context.span_id:016x}",
        f"00-{retry.context.trace_id:032x}-{retry.context.span_id:016x}",
    ]
    assert retry.parent.span_id == call.context.span_id and retry.attributes["http.request.resend_count"] == 1
    assert retry.start_time < retry.end_time <= call.end_time
    assert first.end_time <= retry.start_time


@needs_sdk_tracing
def test_sdk_propagation_option_is_honoured(spans: Spans, sim) -> None:
    client = sdk_client(sim, spans.provider, propagation=False)
    message = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    (request,) = [request for request in sim.requests if request.request_id == message._request_id]
    assert "traceparent" not in request.headers
    assert spans.one().name == f"chat {MODEL}"


@needs_sdk_tracing
@pytest.mark.parametrize("switch", ["open_telemetry=False", "traces disabled", "ANTHROPIC_OPEN_TELEMETRY=false"])
def test_a_client_with_sdk_telemetry_off_is_traced_but_sends_no_trace_context(spans: Spans, sim, monkeypatch, switch: str) -> None:
    """The SDK sends no trace context for a client whose tracing is off (a health-check client, an opted-out
    tenant's); claude_otel still traces the call (turning the SDK's spans off is how many avoid duplicates) but sends
    the API nothing the SDK would not."""
    if switch == "open_telemetry=False":
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, open_telemetry=False)
    elif switch == "traces disabled":
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, open_telemetry={"traces": {"enabled": False}})
    else:
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url)
    with trace.get_tracer("app").start_as_current_span("handler"), claude_otel.attributes(feature="health"):
        message = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers=scenario("529,ok"))
    sent = [request for request in sim.requests if request.headers.get("x-stainless-retry-count") in ("0", "1")][-2:]
    assert sent[-1].request_id == message._request_id
    assert [("traceparent" in request.headers, "baggage" in request.headers) for request in sent] == [(False, False)] * 2
    call = spans.one()
    assert call.attributes["claude_otel.feature"] == "health" and len(spans.attempts(call)) == 2


def test_propagate_option_off(sim) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=provider, propagate=False)
    try:
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url)
        message = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    finally:
        claude_otel.uninstrument()
    (request,) = [request for request in sim.requests if request.request_id == message._request_id]
    assert "traceparent" not in request.headers
    assert [span.name for span in exporter.get_finished_spans()] == [f"chat {MODEL}"]


def test_application_headers_are_not_mutated(spans: Spans, client: anthropic.Anthropic) -> None:
    headers = {"x-app": "1"}
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers=headers)
    assert headers == {"x-app": "1"}


def test_request_attributes(spans: Spans, client: anthropic.Anthropic) -> None:
    client.messages.create(**RICH)
    attributes = spans.one().attributes
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.top_k"] == 40
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["gen_ai.request.reasoning.level"] == "high"
    assert attributes["anthropic.request.service_tier"] == "auto"
    assert attributes["anthropic.thinking.type"] == "enabled"
    assert attributes["anthropic.thinking.budget_tokens"] == 1024
    assert attributes["anthropic.beta"] == ("context-management-2025-06-27", "files-api-2025-04-14")
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == attributes["gen_ai.usage.output_tokens"] // 2


def test_structured_output_type(spans: Spans, client: anthropic.Anthropic) -> None:
    """`output_config.format` and its deprecated form `output_format` with a JSON schema: the output type is JSON."""
    schema = {"type": "json_schema", "schema": {"type": "object", "properties": {}}}
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, extra_body={"output_config": {"format": schema}})
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, extra_body={"output_format": schema})
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert [span.attributes.get("gen_ai.output.type") for span in spans.calls()] == ["json", "json", None]


def test_compaction_usage(spans: Spans, client: anthropic.Anthropic, sim) -> None:
    """A beta Message whose usage lists its iterations: the compactions' tokens, which the totals leave out, plain
    and streamed (from the last `message_delta`)."""
    iterations = [
        {"type": "compaction", "input_tokens": 1000, "cache_read_input_tokens": 200, "output_tokens": 300},
        {"type": "message", "input_tokens": 50, "output_tokens": 7},
        {"type": "compaction", "input_tokens": 10, "cache_creation_input_tokens": 5, "output_tokens": 3},
    ]
    usage = {"input_tokens": 50, "output_tokens": 7, "iterations": iterations}
    message = {"id": "msg_c", "type": "message", "role": "assistant", "model": MODEL, "content": [],
               "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
    plain = sim.raw(json.dumps(message).encode(), content_type="application/json")
    start = {**message, "stop_reason": None, "usage": {"input_tokens": 50, "output_tokens": 1}}
    events = [("message_start", {"type": "message_start", "message": start}),
              ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}),
              ("message_stop", {"type": "message_stop"})]
    streamed = sim.raw([f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events])
    client.beta.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, extra_headers=scenario(f"raw:{plain}"))
    for _ in client.beta.messages.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, stream=True, extra_headers=scenario(f"raw:{streamed}")
    ):
        pass
    for span in spans.calls():
        assert span.attributes["anthropic.usage.compaction.input_tokens"] == 1215
        assert span.attributes["anthropic.usage.compaction.output_tokens"] == 303
        assert span.attributes["gen_ai.usage.output_tokens"] == 7
    assert len(spans.calls()) == 2


def test_cache_usage(spans: Spans, client: anthropic.Anthropic) -> None:
    message = client.messages.create(**{**RICH, "extra_headers": scenario("cache")}, stream=True)
    for _ in message:
        pass
    attributes = spans.one().attributes
    # The conventions' rule for Anthropic: input tokens include the cache reads and writes.
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 300
    assert attributes["anthropic.usage.cache_creation.ephemeral_5m_input_tokens"] == 200
    assert attributes["anthropic.usage.cache_creation.ephemeral_1h_input_tokens"] == 100
    assert attributes["gen_ai.usage.input_tokens"] > 2300
    assert attributes["anthropic.response.service_tier"] == "standard"


def test_call_span_is_a_child_of_the_application_span(spans: Spans, client: anthropic.Anthropic) -> None:
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as parent:
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    (call,) = spans.calls()
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # Nothing of ours left in the context.

