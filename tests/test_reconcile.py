"""`claude-otel reconcile`: claude_otel's dollars in a real Prometheus against the simulator's cost report.

The simulator is the API: it bills every answer it sends and serves `GET /v1/organizations/analytics/cost_report`
in the API's shape, read through the real SDK. Services in their own processes call it: the demo's workload,
instrumented; a service left uninstrumented (its spend is missing from ours); a service instrumented with a price
table that lost its web search price (its web search row drifts). They export through the real collector, which
the real Prometheus scrapes; then `claude-otel reconcile` runs as a user runs it.

Also, through the real SDK: the report's rules (admin key, 31 days, 2026-01-01), its pages, and days cut at UTC
midnight; and as plain functions: the days of a range, a counter's growth across restarts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import anthropic
import pytest

import stack as real
from claude_otel._prices import PriceTable
from claude_otel._tools import reconcile as reconcile
from claude_otel._tools.report import Prometheus
from claude_otel.testing import Simulator

ROOT = Path(__file__).resolve().parent.parent
HAS_COST_REPORT = hasattr(anthropic.Anthropic(api_key="x").beta, "organization")
needs_cost_report = pytest.mark.skipif(not HAS_COST_REPORT, reason="this SDK has no cost report API (anthropic >= 1.14)")
ADMIN = "sk-ant-admin01-test"
UNINSTRUMENTED = ("claude-opus-5-5", 4, {"input_tokens": 25_000})
"""A service without claude_otel: 4 calls of 25,000 input tokens each at Opus 5.5's list price."""
NO_SEARCH_PRICE = ("claude-sonnet-4-5", 3, {"server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0}})
"""An instrumented service whose price table has no web search price for this model: 3 searches unpriced."""


# --- the pieces, as plain functions --------------------------------------------------------------------------------


def test_days_are_utc_days_up_to_now() -> None:
    now = datetime(2026, 12, 2, 1, 30, tzinfo=timezone.utc)
    span = reconcile.days(36 * 3600, now)  # 36 h back is 2026-11-30 13:30: three days, the last one cut at now
    assert [(day.name, day.start.hour, day.end) for day in span] == [
        ("2026-11-30", 0, datetime(2026, 12, 1, tzinfo=timezone.utc)),
        ("2026-12-01", 0, datetime(2026, 12, 2, tzinfo=timezone.utc)),
        ("2026-12-02", 0, now),
    ]
    assert reconcile.days(400 * 86400, now)[0].name == "2026-01-01"  # The report has nothing earlier.


def test_counter_growth_counts_restarts_and_new_series() -> None:
    assert reconcile.counter_growth(0.0, [1.0, 1.5, 2.0]) == 2.0  # began during the day: from 0
    assert reconcile.counter_growth(10.0, [10.0, 12.0]) == 2.0  # from its value at the day's start
    assert reconcile.counter_growth(10.0, [12.0, 0.5, 1.0]) == 3.0  # 2, then a restart: 0.5 since, then 0.5
    assert reconcile.counter_growth(5.0, []) == 0.0


def test_compare_flags_past_both_tolerances() -> None:
    ours = {("d", "m", None): 100.0, ("d", "n", None): 0.999, ("d", "o", None): 0.0}
    theirs = {("d", "m", None): (90.0, 97.0), ("d", "n", None): (1.0, 1.0), ("d", "p", None): (5.0, 5.0)}
    rows = {row.key[1]: row for row in reconcile.compare(ours, theirs, tolerance=0.02, min_usd=0.01)}
    assert rows["m"].flagged and rows["m"].difference == pytest.approx(3.0)  # 3.1% of list_amount, and > $0.01
    assert not rows["n"].flagged  # 0.1%
    assert rows["p"].flagged and rows["p"].ours == 0.0  # not ours at all
    assert not rows["o"].flagged  # ours only, $0


# --- the simulator's cost report, through the SDK ------------------------------------------------------------------


@needs_cost_report
def test_cost_report_rules_as_the_api_has_them() -> None:
    with Simulator() as sim:
        report = anthropic.Anthropic(api_key=ADMIN, base_url=sim.url).beta.organization.analytics.cost_report
        with pytest.raises(anthropic.AuthenticationError):
            anthropic.Anthropic(api_key="sk-ant-api03-x", base_url=sim.url).beta.organization.analytics.cost_report.list(
                starting_at="2026-11-01T00:00:00Z")  # fmt: skip
        with pytest.raises(anthropic.BadRequestError, match="at most 31 days"):
            report.list(starting_at="2026-10-01T00:00:00Z", ending_at="2026-11-02T00:00:00Z")
        with pytest.raises(anthropic.BadRequestError, match="2026-01-01"):
            report.list(starting_at="2025-12-31T00:00:00Z", ending_at="2026-01-02T00:00:00Z")


@needs_cost_report
def test_cost_report_pages_and_cuts_days_at_utc_midnight() -> None:
    """Ten days, a page of seven buckets (the default) then three; a call a second before midnight and one a second
    after land in their own days."""
    midnight = datetime(2026, 11, 25, tzinfo=timezone.utc).timestamp()
    usage = {"input_tokens": 1000, "output_tokens": 100}
    with Simulator() as sim:
        sim.ledger.bill("claude-sonnet-5-5", usage, at=midnight - 1)
        sim.ledger.bill("claude-sonnet-5-5-20261001", usage, at=midnight + 1)  # a dated id: the same row
        sim.ledger.bill("claude-sonnet-5-5", {**usage, "server_tool_use": {"web_search_requests": 2}}, at=midnight + 3600)
        client = anthropic.Anthropic(api_key=ADMIN, base_url=sim.url)
        span = reconcile.days(10 * 86400, datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
        theirs, _ = reconcile.theirs(client, span, ["model", "cost_type"], PriceTable.load(environment=False))
        first = client.beta.organization.analytics.cost_report.list(starting_at=span[0].start, ending_at=span[-1].end)
        assert len(first.data) == 7 and first.has_more and first.next_page
        assert len(list(first)) == len(span) == 11  # every page read: 2026-11-20 to 2026-11-30
    table = PriceTable.load(environment=False)  # The list prices the simulator bills at.
    token_cost = table.cost(table.price("claude-sonnet-5-5"), usage, 100, False).total
    search_fee = 2 * table.price("claude-sonnet-5-5").web_search
    assert theirs == {
        ("2026-11-24", "claude-sonnet-5-5", "tokens"): (pytest.approx(token_cost), pytest.approx(token_cost)),
        ("2026-11-25", "claude-sonnet-5-5", "tokens"): (pytest.approx(2 * token_cost), pytest.approx(2 * token_cost)),
        ("2026-11-25", "claude-sonnet-5-5", "web_search"): (pytest.approx(search_fee), pytest.approx(search_fee)),
    }


@needs_cost_report
def test_usage_report_counts_the_billed_tokens() -> None:
    """The usage report: the tokens of every answer, as billed (streams as far as they went), per model."""
    with Simulator() as sim, anthropic.Anthropic(api_key="sk-ant-test", base_url=sim.url) as client:
        cached = client.messages.create(model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                        extra_headers={"x-claude-sim": "cache"})  # fmt: skip
        with client.messages.stream(model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                    extra_headers={"x-claude-sim": "web_search"}) as stream:  # fmt: skip
            final = stream.get_final_message()
        first = client.messages.create(model="claude-haiku-5-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
        report = anthropic.Anthropic(api_key=ADMIN, base_url=sim.url).beta.organization.analytics.usage_report
        buckets = list(report.list(starting_at=datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0),
                                   group_by=["model"]))  # fmt: skip
    rows = {row.model: row for bucket in buckets for row in bucket.results}
    assert set(rows) == {"claude-sonnet-5-5", "claude-haiku-5-5"}
    sonnet = rows["claude-sonnet-5-5"]
    assert sonnet.requests == 2 and sonnet.cache_read_input_tokens == cached.usage.cache_read_input_tokens
    assert sonnet.cache_creation.ephemeral_5m_input_tokens == cached.usage.cache_creation.ephemeral_5m_input_tokens
    assert sonnet.server_tool_use.web_search_requests == final.usage.server_tool_use.web_search_requests == 1
    assert sonnet.output_tokens == cached.usage.output_tokens + final.usage.output_tokens
    assert sonnet.uncached_input_tokens == cached.usage.input_tokens + final.usage.input_tokens
    assert rows["claude-haiku-5-5"].uncached_input_tokens == first.usage.input_tokens


@needs_cost_report
def test_more_than_31_days_takes_two_requests() -> None:
    with Simulator() as sim:
        client = anthropic.Anthropic(api_key=ADMIN, base_url=sim.url)
        span = reconcile.days(40 * 86400, datetime.now(timezone.utc))
        reconcile.theirs(client, span, ["model"], PriceTable.load(environment=False))
        reports = [request for request in sim.requests if request.path.startswith("/v1/organizations/analytics/cost_report")]
    starts = [request.path.split("starting_at=")[1].split("&")[0] for request in reports if "page=" not in request.path]
    assert len(starts) == 2  # 31 days, then the rest (each with its pages)


# --- the live test -------------------------------------------------------------------------------------------------


@dataclass
class Reconciled:
    prometheus_url: str
    sim: Simulator

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ANTHROPIC_ADMIN_KEY": ADMIN, "ANTHROPIC_BASE_URL": self.sim.url}
        command = [sys.executable, "-m", "claude_otel", "reconcile", "--prometheus", self.prometheus_url, "--since", "1d", *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def _service(collector: real.Collector, sim: Simulator, name: str, *arguments: str, env: dict[str, str] | None = None) -> None:
    environment = {**os.environ, **collector.exporter_env, "OTEL_SERVICE_NAME": name, "ANTHROPIC_BASE_URL": sim.url,
                   "OTEL_TRACES_EXPORTER": "none", **(env or {})}  # fmt: skip
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "reconcile_service.py"), *arguments],
                            env=environment, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def reconciled(real_stack: real.Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reconciled]:
    directory = tmp_path_factory.mktemp("reconcile")
    prices = directory / "no-search-price.json"
    prices.write_text(json.dumps({"models": {NO_SEARCH_PRICE[0]: {"web_search_per_1k": 0}}}))
    with real.own_metrics(directory, real_stack.jaeger) as (collector, url), Simulator(retry_after=0.01) as sim:
        sim.ledger.discount = 0.1  # A negotiated discount: `amount` 10% under `list_amount`.
        _service(collector, sim, "shop", "demo")
        model, count, usage = UNINSTRUMENTED
        _service(collector, sim, "batch-jobs", "calls", model, str(count), "ok", json.dumps(usage), "--uninstrumented")
        model, count, usage = NO_SEARCH_PRICE
        _service(collector, sim, "research", "calls", model, str(count), "web_search", json.dumps(usage),
                 env={"CLAUDE_OTEL_PRICES": str(prices)})  # fmt: skip
        prometheus = Prometheus(url)
        # Each service exported once, at its exit: once Prometheus has a sample of its series, it has its whole count.
        counted = 'count(count by (job) (claude_otel_cost_USD_total{job=~"shop|research"}))'
        real.wait_for(lambda: [series["value"][1] for series in prometheus.instant(counted, time.time())] == ["2"],
                      "both instrumented services' cost in Prometheus", timeout=60)  # fmt: skip
        yield Reconciled(url, sim)


@needs_cost_report
@pytest.mark.stack
def test_reconcile_finds_what_the_invoice_has_and_we_do_not(reconciled: Reconciled) -> None:
    result = reconciled.run("--by", "model,cost_type")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {tuple(line.split()[:3]): line for line in result.stdout.splitlines() if line[:4].isdigit()}
    today = datetime.now(timezone.utc).date().isoformat()

    def row(model: str, cost_type: str) -> str:
        return lines[(today, model, cost_type)]

    # The uninstrumented service: the invoice has its spend, we have nothing of it.
    opus = row("claude-opus-5-5", "tokens")
    assert opus.split()[3] == "$0.000000" and opus.endswith("PAST TOLERANCE")
    # The service whose price table lost web search: its search fees are missing, its tokens are right.
    assert row("claude-sonnet-4-5", "web_search").split()[3] == "$0.000000"
    assert row("claude-sonnet-4-5", "web_search").endswith("PAST TOLERANCE")
    assert not row("claude-sonnet-4-5", "tokens").endswith("PAST TOLERANCE")
    # The demo: within the tolerance, row by row.
    for model, cost_type in (("claude-sonnet-5-5", "tokens"), ("claude-sonnet-5-5", "web_search"), ("claude-haiku-5-5", "tokens")):
        assert not row(model, cost_type).endswith("PAST TOLERANCE"), row(model, cost_type)
    assert "nothing at all of ours for claude-opus-5-5" in result.stdout
    assert "Web search fees missing for claude-sonnet-4-5" in result.stdout
    assert "Credits and negotiated discounts" in result.stdout
    assert "streams cut short" in result.stdout


@needs_cost_report
@pytest.mark.stack
def test_the_demo_reconciles_to_the_cent(reconciled: Reconciled) -> None:
    """The demo's rows, exactly: what claude_otel counted equals what the simulator billed, but for the output
    of the streams the demo cut short, which the client never read (its cost is billed all the same)."""
    table = PriceTable.load(environment=False)
    span = reconcile.days(86400, datetime.now(timezone.utc))
    ours = reconcile.ours(Prometheus(reconciled.prometheus_url), span, ["model", "cost_type"], table)
    client = anthropic.Anthropic(api_key=ADMIN, base_url=reconciled.sim.url)
    theirs, refreshed = reconcile.theirs(client, span, ["model", "cost_type"], table)
    assert refreshed is not None
    today = span[-1].name
    assert ours[(today, "claude-haiku-5-5", "tokens")] == pytest.approx(theirs[(today, "claude-haiku-5-5", "tokens")][1], abs=1e-9)
    assert ours[(today, "claude-sonnet-5-5", "web_search")] == pytest.approx(theirs[(today, "claude-sonnet-5-5", "web_search")][1], abs=1e-9)
    unseen = theirs[(today, "claude-sonnet-5-5", "tokens")][1] - ours[(today, "claude-sonnet-5-5", "tokens")]
    assert 0 < unseen < 0.001  # the cut-short streams' output: a few dozen tokens at $15 per million
    # And with a tolerance of nothing, the CLI says exactly which rows differ.
    strict = reconciled.run("--by", "model", "--min-usd", "0.000001", "--tolerance", "0%")
    assert strict.returncode == 1
    assert "claude-haiku-5-5" in strict.stdout and "PAST TOLERANCE" not in next(
        line for line in strict.stdout.splitlines() if "claude-haiku-5-5" in line
    )


def test_reconcile_without_an_admin_key_says_so() -> None:
    env = {key: value for key, value in os.environ.items() if key != "ANTHROPIC_ADMIN_KEY"}
    result = subprocess.run([sys.executable, "-m", "claude_otel", "reconcile"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("claude-otel reconcile: ANTHROPIC_ADMIN_KEY is not set")


def test_reconcile_with_a_bad_range_says_so() -> None:
    env = {**os.environ, "ANTHROPIC_ADMIN_KEY": ADMIN}
    result = subprocess.run([sys.executable, "-m", "claude_otel", "reconcile", "--since", "a week"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 2 and "not a duration" in result.stderr

