"""API tracing: the Claude API's own spans join the application's trace, through the real collector into Jaeger.

The collector runs the shipped config with the shipped overlay `stack/collector-api-tracing.yaml`: an OTLP/HTTP
receiver behind TLS (a certificate the test makes with openssl, signed by a test CA), taking only deliveries with the API's own bearer
token. The simulator is the API: `claude-otel destination` registers the collector with it through the real SDK's
Admin API, and for each request it answers it delivers the server spans Anthropic's span reference describes
(`anthropic.messages.create`, `anthropic.tool_use web_search`, service `claude-platform`), parented by the request's
`traceparent`. An instrumented application makes a streamed call that is retried once: Jaeger then holds one trace,
the call span, its two attempt spans, and the API's spans under the attempt that carried them.

And the double-counting trap: the API's spans carry token usage too, and nothing in the stack sums spans: the
dashboards' token and dollar series are the same before and after the API's spans arrive.
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest
import yaml
from conftest import MESSAGES, MODEL, is_call_span, scenario
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel
import stack as real
from claude_otel._tools import dashboards as dashboards
from claude_otel._tools.report import Prometheus, grafana_values, parse_duration
from claude_otel.testing import Simulator

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not hasattr(anthropic.Anthropic(api_key="x").beta, "organization"), reason="anthropic >= 1.14"),
]

ADMIN = "sk-ant-admin01-test"
APP = "api-tracing-app"
API_SERVICE = "claude-platform"
USAGE_SERIES = ("claude_otel_cost_USD_total", *(f"gen_ai_client_inference_usage_{kind}_total" for kind in (
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens")))  # fmt: skip


@dataclass
class ApiStack:
    collector: real.Collector
    jaeger: real.Jaeger
    prometheus: Prometheus
    sim: Simulator
    endpoint: str
    """The collector's TLS receiver, as one registers it: https://localhost:PORT."""
    token: str
    ca: Path

    def cli(self, *arguments: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ANTHROPIC_ADMIN_KEY": ADMIN, "ANTHROPIC_BASE_URL": self.sim.url,
               "CLAUDE_OTEL_API_TRACING_TOKEN": token or self.token}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "claude_otel", "destination", *arguments], env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    def delivered(self) -> float:
        """Spans the collector accepted through the receiver of the API's deliveries, so far."""
        return self.collector.self_metric("otelcol_receiver_accepted_spans", receiver="otlp/anthropic-api")

    def register(self, token: str | None = None) -> str:
        created = self.cli("create", "--endpoint", self.endpoint, "--name", "test collector", token=token)
        assert created.returncode == 0, created.stderr
        return created.stdout.split()[0]


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA, and a server certificate for localhost that it signed, with its key: what a public CA would issue
    for the collector's host name. Returns the CA's certificate, the server's and its key."""
    ca, ca_key, cert, key, request = (directory / name for name in ("ca.pem", "ca.key", "cert.pem", "key.pem", "cert.csr"))
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                          "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")  # fmt: skip
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=claude-otel test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extensions],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


@pytest.fixture(scope="module")
def api_stack(real_stack: real.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiStack]:
    directory = tmp_path_factory.mktemp("api-tracing")
    ca, cert, key = _certificates(directory)
    token = secrets.token_hex(16)
    env = {"CLAUDE_OTEL_API_TRACING_TOKEN": token, "CLAUDE_OTEL_TLS_CERT_FILE": str(cert), "CLAUDE_OTEL_TLS_KEY_FILE": str(key)}
    with real.own_metrics(directory, real_stack.jaeger, collector_configs=(real.COLLECTOR_CONFIG, real.API_TRACING),
                          collector_env=env) as (collector, url), Simulator(retry_after=0.01, telemetry_ca=str(ca)) as sim:  # fmt: skip
        port = collector.address("0.0.0.0:4443").rpartition(":")[2]
        yield ApiStack(collector, real_stack.jaeger, Prometheus(url), sim, f"https://localhost:{port}", token, ca)


# --- registering and checking a destination ------------------------------------------------------------------------


def test_destination_create_test_list_disable(api_stack: ApiStack) -> None:
    created = api_stack.cli("create", "--endpoint", api_stack.endpoint, "--name", "test collector")
    assert created.returncode == 0, created.stderr
    destination = created.stdout.split()[0]
    assert destination.startswith("tdst_") and "headers: authorization" in created.stdout
    assert f"claude-otel destination test {destination}" in created.stdout

    before = api_stack.delivered()
    tested = api_stack.cli("test", destination)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert api_stack.delivered() == before + 1  # The collector took the test span through the API's receiver.

    listed = api_stack.cli("list")
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(destination)]
    assert "enabled" in line and api_stack.endpoint in line and "last delivery" in line

    disabled = api_stack.cli("disable", destination)
    assert disabled.returncode == 0 and "disabled (caller)" in disabled.stdout
    for result in (created, tested, listed, disabled):
        assert api_stack.token not in result.stdout + result.stderr  # The token is never printed.


def test_a_delivery_without_the_token_is_refused(api_stack: ApiStack) -> None:
    wrong = api_stack.register(token=secrets.token_hex(16))
    refused = api_stack.cli("test", wrong)
    assert refused.returncode == 1 and "the test delivery failed: HTTP error (status 401)" in refused.stdout
    assert api_stack.cli("disable", wrong).returncode == 0
    # And with no authorization at all, straight to the receiver.
    request = urllib.request.Request(f"{api_stack.endpoint}/v1/traces", b"", method="POST",
                                     headers={"content-type": "application/x-protobuf"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refusal:
        urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context(cafile=str(api_stack.ca)))
    assert refusal.value.code == 401


def test_the_destination_cli_needs_an_admin_key() -> None:
    env = {key: value for key, value in os.environ.items() if key != "ANTHROPIC_ADMIN_KEY"}
    result = subprocess.run([sys.executable, "-m", "claude_otel", "destination", "list"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "ANTHROPIC_ADMIN_KEY is not set" in result.stderr


# --- one trace across the API boundary -----------------------------------------------------------------------------


@dataclass
class Traced:
    trace_id: str
    """The retried call's trace."""


def _calls_seen(prometheus: Prometheus) -> float:
    result = prometheus.instant(f'sum(claude_otel_calls_total{{job="{APP}"}})', time.time())
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def traced(api_stack: ApiStack) -> Iterator[Traced]:
    """A streamed call retried once (a 529, then an answer that searched the web), by an application exporting
    its spans and metrics to the collector, with a destination registered."""
    destination = api_stack.register()
    mine = InMemorySpanExporter()
    auth = {"authorization": f"Bearer {api_stack.collector.token}"}
    provider = TracerProvider(resource=Resource.create({"service.name": APP}))
    provider.add_span_processor(SimpleSpanProcessor(mine))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=api_stack.collector.grpc, insecure=True, headers=auth)))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=api_stack.collector.grpc, insecure=True, headers=auth),
                                           export_interval_millis=1000)  # fmt: skip
    meters = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": APP}))
    claude_otel.instrument(tracer_provider=provider, meter_provider=meters)
    try:
        with anthropic.Anthropic(api_key="sk-ant-test", base_url=api_stack.sim.url) as client:
            with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario("529,web_search")) as stream:
                stream.until_done()
            [retried] = [span for span in mine.get_finished_spans() if is_call_span(span)]
            # A second call a scrape later, so that the dashboards' increase() and rate() see the counters grow.
            real.wait_for(lambda: _calls_seen(api_stack.prometheus) == 1, "the first call's metrics in Prometheus")
            client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
            meters.force_flush()
            real.wait_for(lambda: _calls_seen(api_stack.prometheus) == 2, "the second call's metrics in Prometheus")
        claude_otel.uninstrument()
        provider.force_flush()
        api_stack.sim.telemetry.flush()
        yield Traced(f"{retried.context.trace_id:032x}")
        assert api_stack.cli("disable", destination).returncode == 0
    finally:
        claude_otel.uninstrument()
        meters.shutdown()
        provider.shutdown()


def test_one_trace_holds_the_call_its_attempts_and_the_api_spans(api_stack: ApiStack, traced: Traced) -> None:
    def complete() -> dict | None:
        found = api_stack.jaeger.trace(traced.trace_id)
        names = {span["operationName"] for span in found["spans"]} if found else set()
        return found if {"anthropic.messages.create", "anthropic.tool_use web_search"} <= names else None

    found = real.wait_for(complete, "the API's spans in the application's trace", timeout=60)
    spans = {span["spanID"]: span for span in found["spans"]}
    service = {span["spanID"]: found["processes"][span["processID"]]["serviceName"] for span in found["spans"]}

    def parent(span: dict) -> str | None:
        return next((ref["spanID"] for ref in span["references"] if ref["refType"] == "CHILD_OF"), None)

    [call] = [span for span in spans.values() if span["operationName"] == f"chat {MODEL}"]
    attempts = sorted((span for span in spans.values() if span["operationName"] == "POST"), key=lambda span: span["startTime"])
    [server] = [span for span in spans.values() if span["operationName"] == "anthropic.messages.create"]
    [tool] = [span for span in spans.values() if span["operationName"] == "anthropic.tool_use web_search"]
    assert len(attempts) == 2 and all(parent(attempt) == call["spanID"] for attempt in attempts)
    # The API's span nests under the attempt it served, the retry, and says which request it was.
    assert parent(server) == attempts[1]["spanID"] and parent(tool) == server["spanID"]
    assert service[server["spanID"]] == service[tool["spanID"]] == API_SERVICE
    assert service[call["spanID"]] == APP
    assert real.tags(server)["anthropic.request.id"] == real.tags(attempts[1])["anthropic.request.id"]
    assert real.tags(attempts[0])["http.response.status_code"] == 529


def test_nothing_in_the_stack_counts_the_api_spans_tokens(api_stack: ApiStack, traced: Traced) -> None:
    """The double-counting trap: the API's spans carry `gen_ai.usage.*` too. The dashboards' token and dollar series
    come from claude_otel's metrics alone: unchanged when more API spans arrive, and no span-derived metric exists."""
    for config in (real.COLLECTOR_CONFIG, real.API_TRACING, real.ALLOW_CONTENT):
        assert "connectors" not in yaml.safe_load(config.read_text()), config  # No spanmetrics, nor any span-to-metric.

    def totals() -> dict[str, float]:
        found = {}
        for name in USAGE_SERIES:
            result = api_stack.prometheus.instant(f'sum({name}{{job="{APP}"}})', time.time())
            found[name] = float(result[0]["value"][1]) if result else 0.0
        return found

    scrape = parse_duration(yaml.safe_load(real.PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"])
    # Every token and dollar panel of the dashboards, as Grafana would show the last 10 minutes of the application.
    values = {**grafana_values(600, 15, scrape, {v.name: dashboards.ALL for v in dashboards.VARIABLES}), "service": APP}
    panels = {f"{panel.title}: {query.expr}": dashboards.expand(query.expr, values) for _, panel, query in dashboards.queries()
              if ("usage" in query.expr or "cost" in query.expr) and "$" not in dashboards.expand(query.expr, values)}  # fmt: skip

    def shown() -> dict[str, float]:
        found = {}
        for name, expr in panels.items():
            result = api_stack.prometheus.instant(expr, time.time())
            found[name] = sum(float(series["value"][1]) for series in result if series["value"][1] != "NaN")
        return found

    before = totals()
    assert before["claude_otel_cost_USD_total"] > 0
    panels_before = shown()
    assert any(panels_before.values())
    # The API's spans of five more calls (each a request span and a web search span), from a client that claude_otel
    # does not instrument: usage on spans, and nowhere else.
    delivered = api_stack.delivered()
    with anthropic.Anthropic(api_key="sk-ant-test", base_url=api_stack.sim.url) as client:
        for _ in range(5):
            client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers=scenario("web_search"))
    api_stack.sim.telemetry.flush()
    real.wait_for(lambda: api_stack.delivered() >= delivered + 10, "the API's spans in the collector")
    time.sleep(2 * scrape)  # Two scrapes: anything the stack derived from those spans would show by now.
    assert totals() == before
    # The panels: nothing rose (rates and extrapolated totals of data that stopped can only fall as time goes on).
    risen = {name: (panels_before[name], now) for name, now in shown().items() if now > panels_before[name] * 1.05 + 1e-12}
    assert not risen, risen
