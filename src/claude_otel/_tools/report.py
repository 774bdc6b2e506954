"""`claude-otel report`: the dashboards' data as PNG images, straight from a Prometheus, without Grafana.

One image per dashboard (`cost.png`, `reliability.png`, `latency.png`), one plot per PromQL panel, evaluated with
the queries of `claude_otel._dashboards` (the same ones the Grafana dashboards run): lines over time for time series
panels (range queries), a number for stat panels and bars for bar panels (instant queries over the whole period).
Trace-search panels need Jaeger and are left out.

Needs matplotlib (the `report` extra), imported here only. A missing matplotlib, an unreachable Prometheus or a bad
option is a message on stderr and exit code 2, never a traceback. A query that fails or returns nothing shows as
such in its plot; the other plots are drawn.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from . import dashboards as d

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIMEOUT = 30.0


class ReportError(Exception):
    """A reason to stop: the message is for the user."""


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration: `90s`, `15m`, `1h`, `1h30m`, `7d`. Raises `ReportError`."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ReportError(f"not a duration: {text!r} (examples: 90s, 15m, 1h, 7d)")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _promql_duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def grafana_values(since: float, step: float, scrape_interval: float, selection: dict[str, str]) -> dict[str, str]:
    """The values of Grafana's built-in variables and of the template variables, as Grafana would set them for a
    time range of `since` seconds shown at one point per `step` seconds (`$__rate_interval` as Grafana computes it:
    the larger of four scrape intervals and one step plus a scrape interval)."""
    rate_interval = max(4 * scrape_interval, step + scrape_interval)
    return {
        "__range": _promql_duration(since),
        "__interval": _promql_duration(step),
        "__rate_interval": _promql_duration(rate_interval),
        **selection,
    }


class QueryError(Exception):
    """Prometheus refused a query, or answered something else than its API's JSON (the reason)."""


class Prometheus:
    """A Prometheus' HTTP API (`/api/v1/...`)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str, **params: str) -> Any:
        """The `data` of a successful answer. Raises `ReportError` when unreachable, `QueryError` otherwise."""
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=_TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:  # Prometheus says why a query is bad in a 400's JSON body.
            raw = err.read()
        except OSError as err:
            raise ReportError(f"cannot reach Prometheus at {self.url}: {getattr(err, 'reason', err)}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise QueryError(f"not a Prometheus API answer: {raw[:200]!r}")
        if body.get("status") != "success":
            raise QueryError(str(body.get("error") or body))
        return body["data"]

    def instant(self, expr: str, at: float) -> list[dict[str, Any]]:
        return _series(self.get("/api/v1/query", query=expr, time=f"{at:.3f}"))

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return _series(self.get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:.3f}"))


def _series(data: Any) -> list[dict[str, Any]]:
    """The series of a query's answer, checked to be a list of them."""
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise QueryError(f"not a Prometheus query result: {str(data)[:200]}")
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    """A Grafana legend format (`{{label}}`) filled in with a series' labels."""
    if not template or template == "__auto":
        return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()) if key != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: labels.get(match.group(1), ""), template)


def _format(value: float, unit: str) -> str:
    if math.isnan(value):
        return "NaN"
    if unit == "currencyUSD":
        return f"${value:,.6f}" if abs(value) < 1 else f"${value:,.2f}"
    if unit == "percentunit":
        return f"{value * 100:.1f} %"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "reqps":
        return f"{value:.3g} req/s"
    return f"{value:.4g}"


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=timezone.utc)


def _axis_label(unit: str) -> str:
    return {"currencyUSD": "USD", "percentunit": "ratio", "s": "seconds", "reqps": "per second"}.get(unit, "")


def run(
    prometheus_url: str,
    out: str,
    since: str = "1h",
    step: str | None = None,
    scrape_interval: str = "15s",
    selection: dict[str, str] | None = None,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> int:
    """Writes `<out>/<dashboard>.png` for each dashboard and prints each path. Returns the exit code: 0, or 2 with
    a message on `stderr` for the failures a user can fix (matplotlib missing, Prometheus unreachable or not a
    Prometheus, a bad duration, a directory that cannot be written); a query that fails is drawn as such."""
    try:
        return _run(prometheus_url, out, since, step, scrape_interval, selection or {}, stdout)
    except ReportError as err:
        print(f"claude-otel report: {err}", file=stderr)
        return 2


def _run(
    prometheus_url: str, out: str, since: str, step: str | None, scrape_interval: str, selection: dict[str, str], stdout: TextIO
) -> int:
    seconds = parse_duration(since)
    step_seconds = parse_duration(step) if step else max(1.0, seconds / 120)
    values = grafana_values(seconds, step_seconds, parse_duration(scrape_interval), {**{v.name: d.ALL for v in d.VARIABLES}, **selection})
    try:
        import matplotlib

        matplotlib.use("Agg")  # Files only: never a window, whatever the environment says.
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("needs matplotlib: pip install 'claude-otel[report]'") from None
    prometheus = Prometheus(prometheus_url)
    try:
        prometheus.get("/api/v1/status/buildinfo")  # Unreachable: stop before drawing anything.
    except QueryError as err:
        raise ReportError(f"{prometheus_url} does not answer as a Prometheus: {err}") from None
    directory = Path(out)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"cannot create {directory}: {err.strerror or err}") from None
    end = time.time()
    start = end - seconds
    for dashboard in d.DASHBOARDS:
        panels = [panel for panel in dashboard.panels if panel.queries]
        columns = 2
        rows = math.ceil(len(panels) / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(16, 4 * rows), squeeze=False)
        figure.suptitle(f"{dashboard.title} — last {since}", fontsize=16)
        with_data = 0
        for number, panel in enumerate(panels):
            with_data += _draw(axes[number // columns][number % columns], panel, prometheus, values, start, end, step_seconds)
        for number in range(len(panels), rows * columns):
            axes[number // columns][number % columns].axis("off")
        # Fixed margins: matplotlib's tight_layout measures every tick label, and costs seconds per image.
        figure.subplots_adjust(left=0.1, right=0.98, top=1 - 0.9 / (4 * rows), bottom=0.8 / (4 * rows), hspace=0.5, wspace=0.25)
        path = directory / f"{dashboard.name}.png"
        try:
            figure.savefig(path, dpi=80)
        except OSError as err:
            raise ReportError(f"cannot write {path}: {err.strerror or err}") from None
        finally:
            plt.close(figure)
        print(f"{path} ({with_data}/{len(panels)} panels with data)", file=stdout)
    return 0


def _draw(axis: Any, panel: d.Panel, prometheus: Prometheus, values: dict[str, str], start: float, end: float, step: float) -> bool:
    """Draws a panel's plot; whether it had data."""
    axis.set_title(panel.title)
    drawn = 0
    try:
        if panel.kind == "timeseries":
            for query in panel.queries:
                for series in prometheus.range(d.expand(query.expr, values), start, end, step):
                    times = [_utc(float(at)) for at, _ in series["values"]]
                    axis.plot(times, [float(value) for _, value in series["values"]], label=legend(query.legend, series["metric"]))
                    drawn += 1
            axis.set_xlim(_utc(start), _utc(end))
            axis.tick_params(axis="x", labelrotation=20)
            axis.set_xlabel("UTC")
            axis.set_ylabel(_axis_label(panel.unit))
            if drawn:
                axis.legend(fontsize="small")
        else:
            results = [
                (legend(query.legend, series["metric"]), float(series["value"][1]))
                for query in panel.queries
                for series in prometheus.instant(d.expand(query.expr, values), end)
            ]
            drawn = len(results)
            if panel.kind == "stat" and results:
                axis.text(0.5, 0.5, "\n".join(_format(value, panel.unit) for _, value in results), ha="center", va="center", fontsize=24)
                axis.axis("off")
            elif results:
                results.sort(key=lambda item: item[1])
                axis.barh([name for name, _ in results], [value for _, value in results])
                axis.set_xlabel(_axis_label(panel.unit))
    except QueryError as err:
        axis.text(0.5, 0.5, f"query failed:\n{err}", ha="center", va="center", wrap=True, color="red")
        return False
    if not drawn:
        axis.text(0.5, 0.5, "no data", ha="center", va="center", color="gray")
    return bool(drawn)

