"""`claude-otel reconcile`: claude_otel's dollars, as Prometheus holds them, against Anthropic's cost report.

For each UTC day of the range (today up to now), and each model (and `cost_type` with `--by model,cost_type`):
what claude_otel counted (`claude_otel_cost_USD_total`, every service's), what the invoice says (the Admin API's
cost report, `amount` after discounts and `list_amount` at list prices), and their difference against
`list_amount`, since claude_otel prices at list prices. A row is past the tolerance when its difference is beyond
both `--tolerance` (a share of `list_amount`) and `--min-usd`; then the command names the usual causes and exits 1.

Our side is exact, not the dashboards' `increase()`, which extrapolates at the edges of its window: each day's sum
is the counters' growth from their value at the day's start (0 for a series that began during the day) over their
raw samples up to its end, a drop counted as a restart from 0. The invoice's side is read through the SDK
(`client.beta.organization.analytics.cost_report.list`, with `ANTHROPIC_ADMIN_KEY`), a request per 31 days at
most (the API's limit), every page. Both sides name a model by its price-table row (`claude-sonnet-5-5`, whatever
dated or routed id was called) and map claude_otel's `claude_otel.cost.part` to Anthropic's `cost_type`: `tokens`
and `surcharge` (fast mode, US-only inference) are `tokens`, `server_tools` is `web_search`.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TextIO

from .._extract import timestamp
from .._prices import PriceTable, normalize
from .report import Prometheus, QueryError, ReportError, parse_duration

ADMIN_KEY_ENV = "ANTHROPIC_ADMIN_KEY"
COST = 'claude_otel_cost_USD_total{claude_otel_cost_part!=""}'
"""The priced cost series (an unpriced call adds 0 under `claude_otel_cost_unpriced="true"`, without a part)."""
_COST_TYPES = {"tokens": "tokens", "surcharge": "tokens", "server_tools": "web_search"}
_MAX_DAYS = 31
_EARLIEST = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""The cost report has nothing before this."""
_CUT_SHORT = 'claude_otel_calls_total{claude_otel_stream_outcome=~"abandoned|failed|truncated"}'

Key = tuple[str, str | None, str | None]
"""(day, model, cost_type); None for a dimension not asked for."""


@dataclass(frozen=True)
class Day:
    """A UTC day of the range: [start, end), `end` now for today."""

    start: datetime
    end: datetime

    @property
    def name(self) -> str:
        return self.start.date().isoformat()


@dataclass(frozen=True)
class Row:
    key: Key
    ours: float
    amount: float | None
    list_amount: float | None
    flagged: bool

    @property
    def difference(self) -> float:
        return self.ours - (self.list_amount or 0.0)


def days(since_seconds: float, now: datetime) -> list[Day]:
    """The UTC days from the one `since_seconds` before `now` to today, today ending at `now`."""
    first = max(_EARLIEST, now - timedelta(seconds=since_seconds))
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while start < now:
        end = min(now, start + timedelta(days=1))
        found.append(Day(start, end))
        start += timedelta(days=1)
    return found


def counter_growth(baseline: float, values: Iterable[float]) -> float:
    """How much a counter grew over `values` (its samples, in order) from `baseline` (its value before them; 0 for
    a series that began among them). A drop is a restart: the counter grew by its new value since."""
    grown, previous = 0.0, baseline
    for value in values:
        grown += value - previous if value >= previous else value
        previous = value
    return grown


def growth(prometheus: Prometheus, selector: str, day: Day) -> list[tuple[dict[str, str], float]]:
    """How much each counter series of `selector` grew over `day`, exactly: from its value at the day's start (0 if
    it began during the day) over its raw samples (`counter_growth`). Not `increase()`, which extrapolates at the
    window's edges, and misses the count a series already has at its first sample."""
    width = max(1, round((day.end - day.start).total_seconds()))
    before = {_identity(series["metric"]): float(series["value"][1])
              for series in prometheus.instant(f"last_over_time({selector}[1d])", day.start.timestamp())}  # fmt: skip
    return [
        (series["metric"], counter_growth(before.get(_identity(series["metric"]), 0.0), (float(value) for _, value in series["values"])))
        for series in prometheus.instant(f"{selector}[{width}s]", day.end.timestamp())
    ]


def ours(prometheus: Prometheus, span: Sequence[Day], by: Sequence[str], table: PriceTable) -> dict[Key, float]:
    """claude_otel's dollars per day (and model, cost type), from every cost series' growth."""
    sums: dict[Key, float] = defaultdict(float)
    for day in span:
        for labels, grown in growth(prometheus, COST, day):
            model = _model(table, labels.get("gen_ai_request_model")) if "model" in by else None
            cost_type = _COST_TYPES.get(labels.get("claude_otel_cost_part", ""), "tokens") if "cost_type" in by else None
            sums[(day.name, model, cost_type)] += grown
    return sums


def theirs(client: Any, span: Sequence[Day], by: Sequence[str], table: PriceTable) -> tuple[dict[Key, tuple[float, float]], str | None]:
    """The cost report's (amount, list_amount) in USD per day (and model, cost type), and when its data was last
    refreshed. One request per 31 days at most, every page read."""
    sums: dict[Key, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    refreshed = None
    for chunk in (span[index : index + _MAX_DAYS] for index in range(0, len(span), _MAX_DAYS)):
        pages = client.beta.organization.analytics.cost_report.list(
            starting_at=chunk[0].start, ending_at=chunk[-1].end, bucket_width="1d", group_by=list(by)
        )
        for bucket in pages:
            day = _utc(bucket.starting_at).date().isoformat()
            for result in bucket.results:
                model = _model(table, result.model) if "model" in by else None
                key = (day, model, result.cost_type if "cost_type" in by else None)
                sums[key][0] += Decimal(result.amount) / 100
                sums[key][1] += Decimal(result.list_amount) / 100
        refreshed = getattr(pages, "data_refreshed_at", None) or refreshed
    return {key: (float(amount), float(listed)) for key, (amount, listed) in sums.items()}, (
        _utc(refreshed).isoformat() if refreshed else None
    )


def _utc(value: datetime | str) -> datetime:
    """A time of the report in UTC: SDKs before 2.x type some of them as RFC 3339 strings."""
    seconds = timestamp(value)
    if seconds is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    return datetime.fromtimestamp(seconds, timezone.utc)


def compare(ours_: dict[Key, float], theirs_: dict[Key, tuple[float, float]], tolerance: float, min_usd: float) -> list[Row]:
    rows = []
    for key in sorted(set(ours_) | set(theirs_), key=lambda key: tuple(part or "" for part in key)):
        amount, listed = theirs_.get(key, (None, None))
        mine = ours_.get(key, 0.0)
        difference = abs(mine - (listed or 0.0))
        rows.append(Row(key, mine, amount, listed, difference > min_usd and difference > tolerance * (listed or 0.0)))
    return rows


def causes(rows: Sequence[Row], cut_short: int) -> list[str]:
    """The usual causes of the flagged rows' differences, in words."""
    flagged = [row for row in rows if row.flagged]
    said = []
    short = [row for row in flagged if row.ours < (row.list_amount or 0.0)]
    if short:
        missing = sorted({str(row.key[1]) for row in short if not any(r.ours for r in rows if r.key[:2] == row.key[:2])} - {"None"})
        said.append(
            "Less than the invoice: calls from services that are not instrumented"
            + (f" (nothing at all of ours for {', '.join(missing)})" if missing else "")
            + "; calls of a model claude_otel cannot price (alert ClaudeUnpricedModel)"
            + (f"; {cut_short} streams cut short in the range (abandoned, failed or truncated: the output the client never read is billed)" if cut_short else "")
            + "."
        )
    unpriced = sorted({str(row.key[2]) for row in flagged if row.key[2] not in (None, *_COST_TYPES.values())})
    if unpriced:
        said.append(f"Cost lines claude_otel does not price yet: {', '.join(unpriced)}.")
    searched = sorted({str(row.key[1]) for row in short if row.key[2] == "web_search" and row.ours == 0})
    if searched:
        said.append(f"Web search fees missing for {', '.join(searched)}: the price table in use has no web search price "
                    "for it (`claude-otel prices --check MODEL`).")  # fmt: skip
    if any(row.ours > (row.list_amount or 0.0) for row in flagged):
        said.append("More than the invoice: a price table above Anthropic's list prices (stale after a price cut? `claude-otel prices`), "
                    "or calls after the report's last refresh.")  # fmt: skip
    if flagged:
        said.append("A stale price table misprices every row of its models: update claude-otel, or its price file (CLAUDE_OTEL_PRICES).")
    if any(row.amount is not None and row.list_amount is not None and row.amount < row.list_amount for row in rows):
        said.append("Credits and negotiated discounts: `amount` is after them, claude_otel prices at list prices, so rows are "
                    "compared with `list_amount`.")  # fmt: skip
    return said


def run(prometheus_url: str, since: str, by_text: str, tolerance_text: str, min_usd: float, out: TextIO = sys.stdout) -> int:
    """The command: prints the table and the causes; 0 when every row is within the tolerance, 1 otherwise, 2 when
    it cannot tell (bad arguments, Prometheus or the API unreachable, no admin key)."""
    try:
        since_seconds = parse_duration(since)
        by = [part.strip() for part in by_text.split(",") if part.strip()]
        if not by or set(by) - {"model", "cost_type"}:
            raise ValueError(f"--by takes model, cost_type or both, not {by_text!r}")
        tolerance = float(tolerance_text.removesuffix("%")) / 100
    except (ValueError, ReportError) as err:
        return _fail(str(err))
    key = os.environ.get(ADMIN_KEY_ENV)
    if not key:
        return _fail(f"{ADMIN_KEY_ENV} is not set: the cost report needs an Admin API key (sk-ant-admin...)")
    import anthropic

    table = PriceTable.load()
    span = days(since_seconds, datetime.now(timezone.utc))
    prometheus = Prometheus(prometheus_url)
    try:
        mine = ours(prometheus, span, by, table)
        cut_short = _cut_short(prometheus, span)
    except (ReportError, QueryError) as err:
        return _fail(str(err))
    try:
        with anthropic.Anthropic(api_key=key) as client:
            if not hasattr(client.beta, "organization"):
                return _fail(f"anthropic {anthropic.__version__} has no cost report API: reconcile needs anthropic >= 1.14")
            invoice, refreshed = theirs(client, span, by, table)
    except (anthropic.APIError, ValueError) as err:
        return _fail(f"the cost report: {err}")
    rows = compare(mine, invoice, tolerance, min_usd)
    _print(rows, by, out)
    flagged = [row for row in rows if row.flagged]
    print(f"\n{len(rows)} rows, {len(flagged)} past the tolerance ({tolerance:.0%} and ${min_usd:g})."
          + (f" Anthropic's report was refreshed at {refreshed}." if refreshed else ""), file=out)  # fmt: skip
    for cause in causes(rows, cut_short):
        print(f"- {cause}", file=out)
    return 1 if flagged else 0


def _cut_short(prometheus: Prometheus, span: Sequence[Day]) -> int:
    """Streams that ended before their final usage, over the range."""
    return round(sum(grown for day in span for _, grown in growth(prometheus, _CUT_SHORT, day)))


def _print(rows: Sequence[Row], by: Sequence[str], out: TextIO) -> None:
    header = ["day", *(["model"] if "model" in by else []), *(["cost_type"] if "cost_type" in by else []),
              "ours", "amount", "list_amount", "difference", ""]  # fmt: skip
    lines = [header]
    for row in rows:
        day, model, cost_type = row.key
        listed = row.list_amount
        share = f" ({row.difference / listed:+.1%})" if listed else ""
        lines.append([day, *([str(model)] if "model" in by else []), *([str(cost_type)] if "cost_type" in by else []),
                      f"${row.ours:.6f}", _usd(row.amount), _usd(listed), f"{row.difference:+.6f}{share}",
                      "PAST TOLERANCE" if row.flagged else ""])  # fmt: skip
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip(), file=out)


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}"


def _model(table: PriceTable, model: str | None) -> str:
    """A model as both sides name it: its price-table row, else its id without routing and date."""
    if not model:
        return "unknown"
    row, _ = table.resolve(model)
    return row or normalize(model)


def _identity(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, value) for name, value in labels.items() if name != "__name__"))


def _fail(message: str) -> int:
    print(f"claude-otel reconcile: {message}", file=sys.stderr)
    return 2
