"""The alert rules (stack/prometheus/alerts.yml, with targets.yml), proven twice.

1. `promtool test rules` runs the unit tests in tests/prometheus/: each alert fires, and stays silent, at the edges of
   its windows and thresholds, on the very files compose mounts.
2. A real Prometheus (Debian's) evaluates those files against a real workload: the real SDK against the simulator,
   instrumented, exporting over OTLP to the real collector, scraped with the shipped scrape config. One service's
   burst of 529s on one model, its requests near their rate limit, fires the overload, error-budget and headroom
   alerts, seen in `/api/v1/alerts`, and reaches a webhook through a real Alertmanager (Debian's) on the shipped
   alertmanager.yml; another service's clean calls on another model fire nothing. The one change to the shipped
   rules is their `for` durations, cut to one evaluation so that the test does not wait ten minutes: the unit tests
   prove the durations themselves.

Also: every alert has its severity, summary, description and runbook, the runbook section exists in docs/alerts.md,
and the docs' table lists every alert.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

import stack as real
from claude_otel._tools import dashboards as dashboards
from claude_otel._tools.report import Prometheus, parse_duration

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "stack" / "prometheus"
ALERTS = yaml.safe_load((RULES / "alerts.yml").read_text())
ALERTMANAGER_CONFIG = ROOT / "stack" / "alertmanager" / "alertmanager.yml"
UNIT_TESTS = sorted((ROOT / "tests" / "prometheus").glob("*.test.yml"))
DOCS = (ROOT / "docs" / "alerts.md").read_text()
ANCHORS = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).strip().replace(" ", "-") for heading in re.findall(r"(?m)^#+ (.+)$", DOCS)}
"""The anchors of docs/alerts.md's sections, as mkdocs makes them."""

BURST, CLEAN = "alerts-burst", "alerts-clean"
"""The two services of the live test: one in trouble, one fine."""
BURST_MODEL, CLEAN_MODEL = "claude-haiku-4-5", "claude-sonnet-5-5"


def alert_rules() -> list[dict]:
    return [rule for group in ALERTS["groups"] for rule in group["rules"] if "alert" in rule]


# --- the rules as data ---------------------------------------------------------------------------------------------


def test_promtool_unit_tests_pass() -> None:
    promtool = real.prometheus_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", *map(str, UNIT_TESTS)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS), result.stdout


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "never seen firing"
    assert names - silent == set(), "never seen silent"


def test_every_alert_carries_what_on_call_needs() -> None:
    targets = yaml.safe_load((RULES / "targets.yml").read_text())
    tuned = {rule["record"] for group in targets["groups"] for rule in group["rules"]}
    ratios = {rule["record"] for group in ALERTS["groups"] for rule in group["rules"] if "record" in rule}
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        anchor = rule["annotations"]["runbook"].removeprefix("docs/alerts.md#")
        assert anchor in ANCHORS, f"{name}: no runbook section #{anchor} in docs/alerts.md"
        assert f"| `{name}` |" in DOCS, f"{name} is not in the docs' alerts table"
        # Every recorded series it reads is recorded: its numbers by targets.yml, where the operator tunes them.
        used = set(re.findall(r"claude_otel:[a-z0-9_:]+", rule["expr"]))
        assert used <= tuned | ratios, f"{name} reads {used - tuned - ratios}, which no rule records"
        assert used & tuned or name in ("ClaudeUnpricedModel", "ClaudeAlertTargetsMissing"), f"{name} has no number to tune"


# --- the live test -------------------------------------------------------------------------------------------------


class _Webhook:
    """An HTTP server that keeps what Alertmanager POSTs to it (the webhook receiver's JSON)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def alerts(self) -> list[dict]:
        return [alert for notification in self.received for alert in notification["alerts"]]


@dataclass
class Alerting:
    prometheus: Prometheus
    webhook: _Webhook

    def firing(self) -> set[tuple[str, str]]:
        """(alertname, what it fired on: job or model and kind) of every claude-otel alert firing now."""
        alerts = self.prometheus.get("/api/v1/alerts")["alerts"]
        return {(alert["labels"]["alertname"], _subject(alert["labels"])) for alert in alerts if alert["state"] == "firing"}


def _subject(labels: dict) -> str:
    keys = ("job", "gen_ai_request_model", "claude_otel_rate_limit_kind", "claude_otel_feature", "claude_otel_tenant")
    return " ".join(labels[key] for key in keys if key in labels)


def _start_alertmanager(directory: Path, webhook: _Webhook) -> tuple[real.Process, str]:
    """Debian's Alertmanager on the shipped config, its webhook moved to `webhook`. Returns it and its address."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        real.prometheus_binary("prometheus-alertmanager")  # fails, or skips with CLAUDE_OTEL_NO_PROMETHEUS
    text = ALERTMANAGER_CONFIG.read_text()
    shipped = "alert-webhook:8080"
    assert text.count(shipped) == 1
    config = directory / "alertmanager.yml"
    config.write_text(text.replace(shipped, webhook.address))
    address = f"127.0.0.1:{real.free_port()}"
    command = [str(binary), f"--config.file={config}", f"--storage.path={directory / 'alertmanager'}",
               f"--web.listen-address={address}", "--cluster.listen-address="]  # fmt: skip
    process = real.Process("alertmanager", command, directory / "alertmanager.log").start()
    process.wait_ready(f"http://{address}/-/ready")
    return process, address


def _shortened_rules(directory: Path) -> Path:
    """alerts.yml with every `for` cut to one evaluation interval, and nothing else changed, in a copy of the rules'
    directory."""
    rules = directory / "rules"
    shutil.copytree(RULES, rules)
    interval = yaml.safe_load((RULES / "prometheus.yml").read_text())["global"]["evaluation_interval"]
    text = (RULES / "alerts.yml").read_text()
    shortened = re.sub(r"(?m)^(\s+for: )\S+$", rf"\g<1>{interval}", text)
    before, after = yaml.safe_load(text), yaml.safe_load(shortened)
    for group_before, group_after in zip(before["groups"], after["groups"]):
        for rule_before, rule_after in zip(group_before["rules"], group_after["rules"]):
            assert {**rule_before, "for": None} == {**rule_after, "for": None}
    (rules / "alerts.yml").write_text(shortened)
    return rules / "prometheus.yml"


class _Service:
    """tests/alerts_service.py running as its own process, exporting to `collector` as the service `name`."""

    def __init__(self, name: str, model: str, limit: int, plan: str, collector: real.Collector) -> None:
        env = {**os.environ, **collector.exporter_env, "OTEL_SERVICE_NAME": name, "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
               "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}  # fmt: skip
        command = [sys.executable, str(ROOT / "tests" / "alerts_service.py"), model, str(limit), plan]
        self.name = name
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def round(self) -> None:
        """Runs its calls once; returns when their metrics are in the collector."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "done\n", f"{self.name} failed its round"

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)


def _stored_calls(prometheus: Prometheus, job: str) -> float:
    result = prometheus.instant(f'sum(claude_otel_calls_total{{job="{job}"}})', time.time())
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def alerting(real_stack: real.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerting]:
    """Its own collector, Prometheus and Alertmanager (the session's collector also carries other tests' series,
    which would fire alerts of their own), and two services, each its own process, through two rounds of calls a
    scrape apart."""
    directory = tmp_path_factory.mktemp("alerts")
    webhook = _Webhook()
    services: list[_Service] = []
    alertmanager, address = _start_alertmanager(directory, webhook)
    try:
        with real.own_metrics(directory, real_stack.jaeger, _shortened_rules(directory), {"alertmanager:9093": address}) as (collector, url):
            prometheus = Prometheus(url)
            try:
                # Each round, the burst: 5 calls answered 529 three times (the SDK's 2 retries) and 10 that succeed,
                # against a limit of 10 requests (an hour); the clean service: 10 calls that succeed, far within its
                # limits.
                services += [_Service(BURST, BURST_MODEL, 10, "5*529,10*ok", collector),
                             _Service(CLEAN, CLEAN_MODEL, 1000, "10*ok", collector)]  # fmt: skip
                scrape = parse_duration(yaml.safe_load((RULES / "prometheus.yml").read_text())["global"]["scrape_interval"])
                for number in (1, 2):
                    for service in services:
                        service.round()
                    for job, calls in ((BURST, 15), (CLEAN, 10)):
                        real.wait_for(lambda: _stored_calls(prometheus, job) == calls * number,
                                      f"Prometheus to scrape round {number} of {job}", timeout=3 * scrape)  # fmt: skip
                yield Alerting(prometheus, webhook)
            finally:
                for service in services:
                    service.stop()
    finally:
        alertmanager.stop()
        webhook.server.shutdown()


EXPECTED = {
    ("ClaudeOverloaded", BURST_MODEL),
    ("ClaudeRateLimitHeadroomLow", f"{BURST_MODEL} requests"),
    ("ClaudeErrorBudgetBurnFast", BURST),
    ("ClaudeErrorBudgetBurnSlow", BURST),
    ("ClaudeErrorBudgetBurnTicket", BURST),
}
"""What the burst fires, and all that fires: the clean service and its model are in none of them."""


def test_a_burst_of_529s_fires_the_alerts_and_clean_calls_fire_nothing(alerting: Alerting) -> None:
    firing = real.wait_for(lambda: (now := alerting.firing()) >= EXPECTED and now, "the burst's alerts to fire", timeout=120)
    assert firing == EXPECTED
    assert not any(CLEAN in subject or CLEAN_MODEL in subject for _, subject in firing)
    [alert] = [a for a in alerting.prometheus.get("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "ClaudeOverloaded"]
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == f"Anthropic is overloaded for {BURST_MODEL}"
    # Each round, 15 attempts answered 529 out of 25.
    assert alert["annotations"]["description"].startswith(f"60% of the HTTP attempts to {BURST_MODEL} were answered 529")


def test_the_firing_alerts_panel_lists_them(alerting: Alerting) -> None:
    real.wait_for(lambda: alerting.firing() >= EXPECTED, "the burst's alerts to fire", timeout=120)
    [query] = [q for _, panel, q in dashboards.queries() if panel.title == "Firing alerts"]
    result = alerting.prometheus.instant(query.expr, time.time())
    assert {(series["metric"]["alertname"], _subject(series["metric"])) for series in result} == EXPECTED


def test_alertmanager_notifies_the_webhook_and_inhibits_the_slower_burns(alerting: Alerting) -> None:
    def notified() -> set[tuple[str, str]]:
        return {(alert["labels"]["alertname"], _subject(alert["labels"])) for alert in alerting.webhook.alerts()}

    wanted = EXPECTED - {("ClaudeErrorBudgetBurnSlow", BURST), ("ClaudeErrorBudgetBurnTicket", BURST)}
    got = real.wait_for(lambda: (now := notified()) >= wanted and now, "Alertmanager's notifications", timeout=150)
    assert got == wanted  # The fast burn says it all: the slower ones of the same service are inhibited.
    [overloaded] = [a for a in alerting.webhook.alerts() if a["labels"]["alertname"] == "ClaudeOverloaded"]
    assert overloaded["status"] == "firing"
    assert overloaded["annotations"]["runbook"] == "docs/alerts.md#claudeoverloaded"
