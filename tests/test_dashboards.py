"""The Grafana dashboards and `claude-otel report`, proven against a real Prometheus fed by the real collector.

One module-scoped workload: the demo's (`run_workload`, every kind of call, two tenants, seven features) runs through
the real SDK against the simulator, instrumented, its metrics exported over OTLP/gRPC (with the bearer token) to the
real collector of the session's stack (tests/stack.py), whose `prometheus` exporter the real `prometheus` binary
scrapes with the shipped scrape config (15 s). Then every PromQL expression of every panel of the committed
dashboard JSON, and every template-variable query, is evaluated through Prometheus' HTTP API with Grafana's
variables filled in, and must return data.

Without Go (the collector is built from source) or a `prometheus` binary these tests fail, unless
CLAUDE_OTEL_NO_STACK=1 or CLAUDE_OTEL_NO_PROMETHEUS=1 says to skip them.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest
import yaml
from conftest import is_call_span
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel
import stack as real
from claude_otel._tools import dashboards as source
from claude_otel._tools.demo import TENANTS, run_workload
from claude_otel._tools.report import Prometheus, ReportError, grafana_values, legend, parse_duration
from claude_otel.testing import Simulator

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = {name: json.loads((ROOT / "dashboards" / f"{name}.json").read_text()) for name in ("cost", "reliability", "latency")}
JOB = "dashboards-workload"
"""The workload's service.name: the `job` label of its series, as the collector's exporter sets it."""
ROUNDS = 3
"""Rounds of the workload, a scrape apart: counters must increase inside a rate window."""
SCRAPE_INTERVAL = parse_duration(yaml.safe_load(real.PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"])

# Grafana's variables as a dashboard of the last 10 minutes, a point every 15 s, would set them for the shipped
# scrape interval ($__rate_interval 60 s); every query is evaluated at the end of the workload (`Stack.at`).
VALUES = {**grafana_values(600, 15, SCRAPE_INTERVAL, {v.name: source.ALL for v in source.VARIABLES}), "service": JOB}

# The names docs/metrics-and-cost.md documents, as they must arrive in Prometheus.
EXPECTED_SERIES = {
    *(f"{family}_{suffix}" for family in (
        "gen_ai_client_inference_duration_seconds",
        "gen_ai_client_inference_time_to_first_chunk_seconds",
        "gen_ai_client_inference_operation_input_tokens",
        "gen_ai_client_inference_operation_output_tokens",
        "claude_otel_batch_turnaround_seconds",
    ) for suffix in ("bucket", "sum", "count")),
    *(f"gen_ai_client_inference_usage_{kind}_total" for kind in (
        "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens"
    )),
    "claude_otel_cost_USD_total",
    "claude_otel_tool_calls_total",
    "claude_otel_rate_limit_remaining",
    "claude_otel_rate_limit_limit",
    "claude_otel_cost_cache_savings_USD_total",
    "claude_otel_calls_total",
    "claude_otel_attempts_total",
    "claude_otel_batch_results_total",
}


FIRING_ALERTS = "Firing alerts"
"""The panel with data only while alerts fire: tests/test_alerts.py proves its query, where they do."""


def _promql_panels() -> list[tuple[str, dict, dict]]:
    return [
        (name, panel, target)
        for name, dashboard in DASHBOARDS.items()
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target and panel["title"] != FIRING_ALERTS
    ]


@dataclass
class Stack:
    prometheus: Prometheus
    spans: list[ReadableSpan]
    at: float
    """A time just after the workload's last round was scraped."""


def _scraped_sum(exporter: str, metric: str) -> float:
    """The sum of a metric's series of the workload, as the collector's exporter serves them now."""
    with urllib.request.urlopen(exporter, timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.split(" # ", 1)[0].rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(metric + "{") and f'job="{JOB}"' in line
    )


def _stored_sum(prometheus: Prometheus, metric: str) -> float:
    result = prometheus.instant(f'sum({metric}{{job="{JOB}"}})', time.time())
    return float(result[0]["value"][1]) if result else -1.0


@pytest.fixture(scope="module")
def stack(real_stack: real.Stack) -> Iterator[Stack]:
    collector = real_stack.collector
    span_exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    otlp = OTLPMetricExporter(endpoint=collector.grpc, insecure=True, headers={"authorization": f"Bearer {collector.token}"})
    reader = PeriodicExportingMetricReader(otlp, export_interval_millis=3_600_000)  # Exported by force_flush below.
    meter_provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": JOB}))
    exporter = f"http://{collector.address('0.0.0.0:8889')}/metrics"
    prometheus = Prometheus(real_stack.prometheus_url)
    claude_otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with Simulator(retry_after=0.01) as sim, anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url) as client:
            async_client = anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=sim.url)
            served = 0.0
            for _ in range(ROUNDS):
                run_workload(client, async_client)
                assert meter_provider.force_flush()
                before = served
                served = real.wait_for(lambda: (total := _scraped_sum(exporter, "claude_otel_calls_total")) > before and total,
                                       "the round in the collector's exporter")  # fmt: skip
                real.wait_for(lambda: _stored_sum(prometheus, "claude_otel_calls_total") == served,
                              "Prometheus to scrape the round", timeout=3 * SCRAPE_INTERVAL)  # fmt: skip
        yield Stack(prometheus, list(span_exporter.get_finished_spans()), time.time())
    finally:
        claude_otel.uninstrument()
        meter_provider.shutdown()


# --- the names that reach Prometheus -----------------------------------------------------------------------------


def test_scraped_series_are_the_documented_names(stack: Stack) -> None:
    names = set(stack.prometheus.get("/api/v1/label/__name__/values", **{"match[]": f'{{job="{JOB}"}}'}))
    ours = {name for name in names if name.startswith(("gen_ai_", "claude_otel_"))}
    assert ours == EXPECTED_SERIES
    readme = (ROOT / "docs" / "metrics-and-cost.md").read_text()
    for name in EXPECTED_SERIES:  # Histograms are documented as `<family>_bucket` / `_sum` / `_count`.
        assert re.sub(r"_(sum|count)$", "_bucket", name) in readme, name


def test_every_call_point_carries_the_documented_labels(stack: Stack) -> None:
    series = stack.prometheus.get("/api/v1/series", **{"match[]": f'claude_otel_calls_total{{job="{JOB}"}}'})
    labels = set().union(*(set(one) for one in series))
    assert {
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "server_address", "server_port",
        "claude_otel_feature", "claude_otel_tenant", "error_type", "claude_otel_error_category",
        "anthropic_message_stop_reason", "anthropic_message_stop_details_category", "claude_otel_stream_outcome",
    } <= labels


# --- every query of every panel and variable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dashboard", "panel", "target"),
    _promql_panels(),
    ids=[f"{name}:{panel['title']}:{target['refId']}" for name, panel, target in _promql_panels()],
)
def test_every_panel_query_returns_data(stack: Stack, dashboard: str, panel: dict, target: dict) -> None:
    expr = source.expand(target["expr"], VALUES)
    assert "$" not in expr, expr
    result = stack.prometheus.instant(expr, stack.at)
    values = [float(series["value"][1]) for series in result]
    assert any(math.isfinite(value) for value in values), (expr, result)
    if panel["fieldConfig"]["defaults"]["unit"] in ("currencyUSD", "reqps", "s"):
        assert any(value > 0 for value in values), (expr, result)


@pytest.mark.parametrize("variable", source.VARIABLES, ids=[v.name for v in source.VARIABLES])
def test_every_template_variable_query_returns_values(stack: Stack, variable: source.Variable) -> None:
    queries = {
        v["name"]: v["query"] for dashboard in DASHBOARDS.values() for v in dashboard["templating"]["list"] if v["type"] == "query"
    }
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", queries[variable.name])
    assert match is not None, queries[variable.name]
    selector, label = source.expand(match.group(1), VALUES), match.group(2)
    values = set(stack.prometheus.get(f"/api/v1/label/{label}/values", **{"match[]": selector}))
    expected = {
        "service": {JOB},
        "model": {"claude-sonnet-5-5", "claude-haiku-5-5"},
        "feature": {"search", "chat", "agent", "summarize", "moderation", "report", "nightly"},
        "tenant": set(TENANTS),
    }[variable.name]
    assert values == expected


def test_a_selected_feature_narrows_the_panels(stack: Stack) -> None:
    [spend] = [q for _, p, q in source.queries() if p.title == "Top features by cost"]
    result = stack.prometheus.instant(source.expand(spend.expr, {**VALUES, "feature": "(chat|nightly)"}), stack.at)
    assert {series["metric"]["claude_otel_feature"] for series in result} == {"chat", "nightly"}


# --- the numbers are the spans' numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "attribute"), [
    ("claude_otel_cost_USD_total", "claude_otel.cost.usd"),
    ("claude_otel_cost_cache_savings_USD_total", "claude_otel.cost.cache_savings_usd"),
])
def test_spend_per_feature_and_tenant_is_the_sum_of_the_spans(stack: Stack, metric: str, attribute: str) -> None:
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for span in stack.spans:
        if is_call_span(span) and attribute in span.attributes:
            expected[(span.attributes["claude_otel.feature"], span.attributes["claude_otel.tenant"])] += span.attributes[attribute]
    result = stack.prometheus.instant(f'sum by (claude_otel_feature, claude_otel_tenant) ({metric}{{job="{JOB}"}})', stack.at)
    stored = {(s["metric"]["claude_otel_feature"], s["metric"]["claude_otel_tenant"]): float(s["value"][1]) for s in result}
    assert stored == pytest.approx(dict(expected), rel=1e-9)
    assert len(stored) >= (2 if "savings" in metric else 7)


# --- the committed JSON --------------------------------------------------------------------------------------------


def test_committed_dashboards_are_their_generated_source() -> None:
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk needs Python 3.11")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import generate_dashboards
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for dashboard in source.DASHBOARDS:
        committed = (ROOT / "dashboards" / f"{dashboard.name}.json").read_text()
        assert committed == generate_dashboards.text(dashboard), f"run scripts/generate_dashboards.py ({dashboard.name})"


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_follows_the_provisioning_contract(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert dashboard["uid"] == f"claude-otel-{name}" and "id" not in dashboard
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert set(variables) == {"datasource", "service", "model", "feature", "tenant"}
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for panel in dashboard["panels"]:
        assert panel["description"] and panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        if panel["datasource"]["type"] == "prometheus":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in panel["targets"]:
                # Windows follow the picker: no fixed [5m] that a zoom or a slow scrape would break. Only a query of
                # gauges (the rate-limit headroom, the firing alerts) reads values as they are, without a window.
                windows = re.findall(r"\[([^\]]+)\]", target["expr"])
                assert all(window in ("$__rate_interval", "$__range") for window in windows), target["expr"]
                assert windows or re.search(r"claude_otel_rate_limit_|ALERTS\{", target["expr"]), target["expr"]
        else:
            _assert_failed_requests_panel(panel)
        if "histogram_quantile" in json.dumps(panel):
            assert all(target.get("exemplar") for target in panel["targets"]), panel["title"]
        x, w = panel["gridPos"]["x"], panel["gridPos"]["w"]
        assert x >= 0 and x + w <= 24, panel["title"]


def _assert_failed_requests_panel(panel: dict) -> None:
    """The table of recent failed requests: a Jaeger trace search (each row links to its trace)."""
    assert panel["type"] == "table"
    assert panel["datasource"] == {"type": "jaeger", "uid": "jaeger"}
    [target] = panel["targets"]
    assert target["datasource"] == {"type": "jaeger", "uid": "jaeger"}
    assert target["queryType"] == "search" and target["service"] == "$service"
    assert "error=true" in target["tags"].split() and target["limit"] > 0
    assert "anthropic.request.id=" in panel["description"]


def test_the_dashboards_cover_the_issue() -> None:
    titles = {name: {panel["title"] for panel in dashboard["panels"]} for name, dashboard in DASHBOARDS.items()}
    assert {"Spend per hour by feature", "Spend per hour by tenant", "Spend per hour by model", "Tokens by kind", "Cache hit ratio",
            "Money caching saved", "Batch vs interactive spend per hour", "Top features by cost"} <= titles["cost"]
    assert {"Request rate", "Errors by error.type", "Errors by classification", "429 and 529 responses",
            "Attempts per call", "Stream failures after 200", "Refusals by category", "Stop reasons",
            "Recent failed requests", "Tools called per feature", "Rate-limit headroom %", FIRING_ALERTS} <= titles["reliability"]
    assert {"Duration by model", "Time to first token by model", "p95 duration by feature"} <= titles["latency"]


# --- claude-otel report ------------------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def test_report_draws_one_png_per_dashboard(stack: Stack, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "claude_otel", "report", "--prometheus", stack.prometheus.url, "--out", str(tmp_path),
         "--since", "5m", "--step", "15s", "--scrape-interval", f"{SCRAPE_INTERVAL:.0f}s"],
        capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cost.png", "latency.png", "reliability.png"]
    plots = {name: len([p for p in dashboard["panels"] if p["datasource"]["type"] == "prometheus"]) for name, dashboard in DASHBOARDS.items()}
    # Nothing fires in this stack (tests/test_alerts.py has one where alerts do): the firing alerts panel is empty.
    with_data = {**plots, "reliability": plots["reliability"] - 1}
    assert result.stdout.splitlines() == [
        f"{tmp_path / name}.png ({with_data[name]}/{plots[name]} panels with data)" for name in ("cost", "reliability", "latency")
    ]
    import matplotlib.image

    for name in DASHBOARDS:
        path = tmp_path / f"{name}.png"
        width, height = _png_size(path)
        assert width == 16 * 80 and height == 4 * 80 * math.ceil(plots[name] / 2), (name, width, height)
        pixels = matplotlib.image.imread(path)
        assert pixels.std() > 0.05, name  # Drawn, not blank.


def test_report_without_prometheus_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "claude_otel", "report", "--prometheus", f"http://127.0.0.1:{real.free_port()}", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("claude-otel report: cannot reach Prometheus at http://127.0.0.1:")
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []


def test_report_without_matplotlib_says_so(tmp_path: Path) -> None:
    code = "import sys; sys.modules['matplotlib'] = None; from claude_otel.__main__ import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "report", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "claude-otel report: needs matplotlib: pip install 'claude-otel[report]'\n"


def test_report_fills_in_grafanas_variables_as_grafana_does() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90 and parse_duration("7d") == 7 * 86400
    for bad in ("", "5x", "1h 30m", "h"):
        with pytest.raises(ReportError):
            parse_duration(bad)
    # $__rate_interval: the larger of four scrape intervals and a step plus a scrape interval.
    assert grafana_values(3600, 30, 15, {})["__rate_interval"] == "60000ms"
    assert grafana_values(86400, 720, 15, {})["__rate_interval"] == "735000ms"
    values = grafana_values(3600, 30, 15, {"feature": "chat|search"})
    assert source.expand('rate(x{f=~"$feature", t=~"${feature}"}[$__rate_interval]) $__range $unknown', values) == (
        'rate(x{f=~"chat|search", t=~"chat|search"}[60000ms]) 3600000ms $unknown'
    )
    assert legend("{{claude_otel_feature}}: {{error_type}}", {"claude_otel_feature": "chat", "error_type": "api_error"}) == "chat: api_error"
    assert legend("__auto", {"__name__": "x", "job": "a"}) == "job=a"
