"""The stack, really run: claude_otel → OTLP → the real collector → the real Jaeger, and the real Prometheus.

The collector (0.161.0, built from stack/otelcol/builder.yaml) runs `collector-config.yaml` unmodified, and Jaeger
(2.13.0, built from stack/jaeger/go.mod) `stack/jaeger/config.yaml`; only their addresses are moved to loopback, by
an overlay of addresses (tests/stack.py). Applications are separate processes that make the one-line call,
`claude_otel.instrument()`, and export where the standard OTEL_* variables say, bearer token included.

What a user checks, checked through Jaeger's HTTP query API and Prometheus' HTTP API:
- the shipped configs are valid for the real collector and Jaeger, and the collector refuses to start unprotected;
- every failed, retried, truncated and slow call of a mixed workload is found by its `anthropic.request.id`, with
  its attempt spans and their own request ids; the demo's too;
- the share of successful calls kept matches the probabilistic policy within a stated statistical bound;
- prompts are absent from what Jaeger stored, and present with the allow-content overlay;
- an export without the token is refused over gRPC and HTTP, and nothing of it reaches Jaeger or Prometheus;
- the exemplars Prometheus stored point to traces Jaeger has.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

import stack
from claude_otel._tools.report import Prometheus

pytestmark = pytest.mark.stack

HERE = Path(__file__).resolve().parent
COLLECTOR = yaml.safe_load(stack.COLLECTOR_CONFIG.read_text())
POLICIES = {policy["name"]: policy for policy in COLLECTOR["processors"]["tail_sampling"]["policies"]}
DECISION_WAIT = float(COLLECTOR["processors"]["tail_sampling"]["decision_wait"].removesuffix("s"))

MIXED = {"ok": 240, "streamed": 40, "retried": 15, "rate_limited": 5, "rejected": 10, "error_after_200": 10, "truncated": 10, "slow": 1}
"""The mixed workload: kind → calls (tests/stack_workload.py). 331 calls and a sentinel."""
KEPT_BY_POLICY = {"retried", "rate_limited", "rejected", "error_after_200", "truncated", "slow", "sentinel"}
"""Kinds that a policy other than the probabilistic one keeps: errors, retries, the 21 s call."""
SAMPLED = {"ok", "streamed"}


def run_workload(real_stack: stack.Stack, service: str, plan: dict[str, int], **env: str) -> list[dict]:
    """Runs tests/stack_workload.py as an application exporting to the stack; its calls, as it saw them."""
    plan_text = ",".join(f"{kind}={count}" for kind, count in plan.items())
    result = subprocess.run(
        [sys.executable, str(HERE / "stack_workload.py"), plan_text],
        env={**real_stack.app_env(service), **env}, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


def wait_until_decided(jaeger: stack.Jaeger, calls: list[dict]) -> None:
    """Until the sentinel's trace (the last call, failed: always kept) is in Jaeger. The collector decides a trace
    `decision_wait` after its first span and the application exported every span by its exit, so by then every
    trace of the workload has been decided, and a kept one sent."""
    (sentinel,) = [call for call in calls if call["kind"] == "sentinel"]
    stack.wait_for(lambda: jaeger.trace(sentinel["trace_id"]), "the sentinel's trace in Jaeger", timeout=DECISION_WAIT + 60)
    time.sleep(2)  # The batch processor's 200 ms, and Jaeger's own batch, twice over.


@pytest.fixture(scope="module")
def mixed(real_stack: stack.Stack) -> list[dict]:
    calls = run_workload(real_stack, "stack-mixed", MIXED)
    assert len(calls) == sum(MIXED.values()) + 1
    wait_until_decided(real_stack.jaeger, calls)
    return calls


# --- 1. the shipped files are what the real programs accept ----------------------------------------------------------


@pytest.mark.parametrize("configs", [
    [stack.COLLECTOR_CONFIG],
    [stack.COLLECTOR_CONFIG, stack.ALLOW_CONTENT],
], ids=["collector", "collector+allow-content"])  # fmt: skip
def test_the_collector_validates_the_shipped_config(configs: list[Path]) -> None:
    collector, _ = stack.binaries()
    command = [str(collector.path), "validate", *(f"--config={path}" for path in configs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ, stack.TOKEN_VARIABLE: "t"}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_collector_will_not_start_without_a_token() -> None:
    """An unset token stops the collector with a message, rather than run an OTLP endpoint anyone can write to."""
    collector, _ = stack.binaries()
    env = {key: value for key, value in os.environ.items() if key != stack.TOKEN_VARIABLE}
    result = subprocess.run([str(collector.path), "validate", f"--config={stack.COLLECTOR_CONFIG}"],
                            capture_output=True, text=True, timeout=60, env=env, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "bearertokenauth: no bearer token provided" in result.stdout + result.stderr


def test_jaeger_validates_the_shipped_config() -> None:
    _, jaeger = stack.binaries()
    result = subprocess.run([str(jaeger.path), "validate", f"--config={stack.JAEGER_CONFIG}"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_versions_the_tests_build() -> None:
    """docker-compose.yml's collector and Jaeger images are the releases built here, and mount the files run here."""
    collector, jaeger = stack.binaries()
    services = stack.COMPOSE["services"]
    assert services["otel-collector"]["image"].endswith(f"/opentelemetry-collector-contrib:{collector.version}")
    assert services["jaeger"]["image"] == f"quay.io/jaegertracing/jaeger:{jaeger.version}"
    assert "./collector-config.yaml:/etc/otelcol-contrib/config.yaml:ro" in services["otel-collector"]["volumes"]
    assert "./stack/jaeger/config.yaml:/etc/jaeger/config.yaml:ro" in services["jaeger"]["volumes"]
    # The built collector holds every component the shipped configs name, at the manifest's one release.
    listing = subprocess.run([str(collector.path), "components"], capture_output=True, text=True, timeout=60, check=False).stdout
    modules = re.findall(r"module: (\S+) (v[\d.]+)", listing)
    assert {version for _, version in modules if "confmap" not in _} == {f"v{collector.version}"}


# --- 2. traces: from a request id to the trace ------------------------------------------------------------------------


def test_every_failed_retried_truncated_and_slow_call_is_found_by_its_request_id(real_stack: stack.Stack, mixed: list[dict]) -> None:
    jaeger = real_stack.jaeger
    for call in (call for call in mixed if call["kind"] in KEPT_BY_POLICY):
        found = jaeger.find("stack-mixed", {"anthropic.request.id": call["request_id"]})
        assert [trace["traceID"] for trace in found] == [call["trace_id"]], call
        (trace,) = found
        (call_span,) = [span for span in trace["spans"] if "claude_otel.attempts" in stack.tags(span)]
        attempts = sorted((span for span in trace["spans"] if span["operationName"] == "POST"), key=lambda span: span["startTime"])
        assert stack.tags(call_span)["claude_otel.attempts"] == {"retried": 2, "rate_limited": 3}.get(call["kind"], 1)
        if call["kind"] == "slow":  # One attempt that succeeded: the call span says it all, no attempt span.
            assert attempts == []
            continue
        # A retried or failed call has one span per attempt, children of the call, each with its own request id.
        ids = [stack.tags(span)["anthropic.request.id"] for span in attempts]
        assert len(ids) == stack.tags(call_span)["claude_otel.attempts"] == len(set(ids)) and ids[-1] == call["request_id"]
        for span in attempts:
            assert span["references"][0]["spanID"] == call_span["spanID"]
        # The attempts the application never saw (they were retried) find the same trace.
        for earlier in ids[:-1]:
            assert [t["traceID"] for t in jaeger.find("stack-mixed", {"anthropic.request.id": earlier})] == [call["trace_id"]]


def test_the_slow_call_is_kept_by_the_latency_policy(real_stack: stack.Stack, mixed: list[dict]) -> None:
    (slow,) = [call for call in mixed if call["kind"] == "slow"]
    trace = real_stack.jaeger.trace(slow["trace_id"])
    assert trace is not None
    threshold_us = POLICIES["keep-slow"]["latency"]["threshold_ms"] * 1000
    assert max(span["duration"] for span in trace["spans"]) > threshold_us
    assert not any(stack.tags(span).get("otel.status_code") == "ERROR" for span in trace["spans"])  # Kept for latency alone.


def binomial_bounds(n: int, p: float, alpha: float) -> tuple[int, int]:
    """The narrowest [low, high] such that a Binomial(n, p) count falls outside with probability < alpha (alpha/2 a
    side), by the exact distribution."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, below = 0, 0.0
    while below + pmf[low] < alpha / 2:
        below += pmf[low]
        low += 1
    high, above = n, 0.0
    while above + pmf[high] < alpha / 2:
        above += pmf[high]
        high -= 1
    return low, high


def test_successful_calls_are_sampled_at_the_configured_rate(real_stack: stack.Stack, mixed: list[dict]) -> None:
    """The probabilistic policy keeps each other trace with the configured probability, by trace id: random here,
    so the count kept is Binomial(n, p). The bounds leave a false failure a chance of one in a million."""
    sampled = [call for call in mixed if call["kind"] in SAMPLED]
    kept = [call for call in sampled if real_stack.jaeger.trace(call["trace_id"]) is not None]
    p = POLICIES["sample-the-rest"]["probabilistic"]["sampling_percentage"] / 100
    low, high = binomial_bounds(len(sampled), p, 1e-6)
    print(f"kept {len(kept)} of {len(sampled)} successful calls; expected {p * len(sampled):.0f}, bounds [{low}, {high}]")
    assert low <= len(kept) <= high
    # A kept trace is whole: the application's span, the call span.
    for call in kept:
        names = {span["operationName"] for span in real_stack.jaeger.trace(call["trace_id"])["spans"]}
        assert names == {call["kind"], "chat claude-sonnet-5-5"}


def test_the_demo_calls_are_found_by_request_id(real_stack: stack.Stack) -> None:
    """`claude-otel demo`, exporting to the stack as its README says: every call whose row says it failed, was
    retried or was truncated is found by the request id its row shows."""
    result = subprocess.run([sys.executable, "-m", "claude_otel", "demo"], env=real_stack.app_env("claude-otel-demo"),
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    header, _, *lines = [line for line in result.stdout.splitlines() if line.strip()][:-1]
    columns = re.split(r"\s{2,}", header)
    rows = [dict(zip(columns, re.split(r"\s{2,}", line), strict=True)) for line in lines]
    wanted = [row for row in rows if row["outcome"].startswith(("failed", "truncated")) or row["tries"] not in ("1", "-")]
    assert {"chat: overloaded, retried", "chat: rate limited", "chat: error after 200", "chat: truncated stream"} <= {row["call"] for row in wanted}
    (first,) = stack.wait_for(
        lambda: real_stack.jaeger.find("claude-otel-demo", {"anthropic.request.id": wanted[0]["request_id"]}),
        "the demo's trace", timeout=DECISION_WAIT + 60,
    )  # fmt: skip
    for row in wanted:  # The demo runs under one application span: one trace holds every call.
        found = real_stack.jaeger.find("claude-otel-demo", {"anthropic.request.id": row["request_id"]})
        assert [trace["traceID"] for trace in found] == [first["traceID"]], row


# --- content ----------------------------------------------------------------------------------------------------------


CONTENT_KEYS = {"gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"}


def stored_text(jaeger: stack.Jaeger, calls: list[dict]) -> tuple[str, set[str]]:
    """Everything Jaeger stored of these calls' traces, as JSON text, and the tag keys of their spans."""
    traces = [stack.wait_for(lambda c=call: jaeger.trace(c["trace_id"]), "a trace in Jaeger") for call in calls]
    keys = {key for trace in traces for span in trace["spans"] for key in stack.tags(span)}
    return json.dumps(traces), keys


def test_content_is_absent_from_jaeger_unless_allowed(real_stack: stack.Stack, tmp_path: Path) -> None:
    """An application that captures content (spans and events) exports prompts, system prompts and tool
    definitions. Through the shipped collector Jaeger stores none of it; through the collector with the
    allow-content overlay it stores them as recorded."""
    canary = f"canary-{os.urandom(8).hex()}"
    capture = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT", "STACK_WORKLOAD_CANARY": canary}
    plan = {"rejected": 2, "retried": 2}  # Always kept: what sampling would drop cannot show stripping.
    stripped = run_workload(real_stack, "stack-content-default", plan, **capture)

    allowing = stack.start_collector(tmp_path, {"jaeger:4317": real_stack.jaeger.otlp_grpc},
                                     configs=[stack.COLLECTOR_CONFIG, stack.ALLOW_CONTENT], name="allow-content")  # fmt: skip
    try:
        env = {**capture, **allowing.exporter_env}
        allowed = run_workload(real_stack, "stack-content-allowed", plan, **env)
        wait_until_decided(real_stack.jaeger, stripped)
        wait_until_decided(real_stack.jaeger, allowed)
        text, keys = stored_text(real_stack.jaeger, stripped)
        assert canary not in text and not CONTENT_KEYS & keys
        assert "anthropic.request.id" in keys  # The rest of the span is there.
        text, keys = stored_text(real_stack.jaeger, allowed)
        assert canary in text and {"gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.tool.definitions"} <= keys
        # The content events go to the logs pipeline, whose `debug` exporter prints counts, never content.
        assert canary not in real_stack.collector.process.output() + allowing.process.output()
    finally:
        allowing.process.stop()


# --- authentication -----------------------------------------------------------------------------------------------------


def export_one_span(exporter: typing.Any, service: str) -> bool:
    """Exports one span (status ERROR: kept by tail sampling) of `service`; whether the exporter reported success."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    results = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span: typing.Any) -> None:
            results.append(exporter.export([span]).name)

    provider.add_span_processor(Recording(exporter))
    with provider.get_tracer("auth-test").start_as_current_span("write") as span:
        span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return results == ["SUCCESS"]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_an_export_without_the_token_is_refused(real_stack: stack.Stack, protocol: str) -> None:
    collector = real_stack.collector

    def exporter(token: str | None) -> typing.Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if protocol == "grpc":
            return GrpcSpanExporter(endpoint=collector.grpc, insecure=True, headers=headers, timeout=5)
        return HttpSpanExporter(endpoint=f"{collector.http}/v1/traces", headers=headers, timeout=5)

    suffix = os.urandom(4).hex()
    assert not export_one_span(exporter(None), f"intruder-none-{suffix}")
    assert not export_one_span(exporter("not-the-token"), f"intruder-wrong-{suffix}")
    assert export_one_span(exporter(collector.token), f"authorized-{suffix}")
    stack.wait_for(lambda: f"authorized-{suffix}" in real_stack.jaeger.services(), "the authorized span in Jaeger",
                   timeout=DECISION_WAIT + 60)  # fmt: skip
    time.sleep(2)  # The refused ones would have been decided at the same time.
    assert not {f"intruder-none-{suffix}", f"intruder-wrong-{suffix}"} & set(real_stack.jaeger.services())


def test_metrics_without_the_token_never_reach_prometheus(real_stack: stack.Stack) -> None:
    """A forged counter (fake dollars) sent without the token is refused; the same with it arrives: proof that the
    refused one would have been visible."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    collector = real_stack.collector
    sent = {}
    for who, token in (("intruder", "not-the-token"), ("authorized", collector.token)):
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": f"forger-{who}"}))
        provider.get_meter("forger").create_counter("claude_otel.cost", unit="USD").add(1e6)
        exporter = OTLPMetricExporter(endpoint=collector.grpc, insecure=True, headers={"authorization": f"Bearer {token}"}, timeout=5)
        sent[who] = exporter.export(reader.get_metrics_data()).name
        provider.shutdown()
    assert sent == {"intruder": "FAILURE", "authorized": "SUCCESS"}
    prometheus = Prometheus(real_stack.prometheus_url)
    stack.wait_for(lambda: prometheus.instant('claude_otel_cost_USD_total{job="forger-authorized"}', time.time()),
                   "the authorized counter in Prometheus", timeout=60)  # fmt: skip
    assert prometheus.instant('claude_otel_cost_USD_total{job="forger-intruder"}', time.time()) == []


# --- exemplars: from a Prometheus point to its trace ----------------------------------------------------------------


def test_stored_exemplars_point_to_traces_jaeger_has(real_stack: stack.Stack, mixed: list[dict]) -> None:
    """The duration histogram's exemplars, as Prometheus stored them from the collector's exporter, carry trace ids
    of the workload's calls; those of failed calls (always kept) open in Jaeger."""
    prometheus = Prometheus(real_stack.prometheus_url)
    query = 'gen_ai_client_inference_duration_seconds_bucket{job="stack-mixed"}'

    def exemplars() -> list[dict]:
        stored = prometheus.get("/api/v1/query_exemplars", query=query, start=str(time.time() - 3600), end=str(time.time() + 60))
        return [(series["seriesLabels"], exemplar) for series in stored for exemplar in series["exemplars"]]

    found = stack.wait_for(exemplars, "exemplars scraped from the collector", timeout=60)
    traces = {call["trace_id"]: call for call in mixed}
    assert {exemplar["labels"]["trace_id"] for _, exemplar in found} <= set(traces)
    failed = [exemplar for labels, exemplar in found if labels.get("error_type")]
    assert failed, "no exemplar on a failed call's series"
    for exemplar in failed:
        assert real_stack.jaeger.trace(exemplar["labels"]["trace_id"]) is not None, exemplar
