"""`claude-otel` / `python -m claude_otel`: the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="claude-otel", description="OpenTelemetry for the Anthropic Python SDK.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run a mixed workload through the real SDK against the bundled API simulator and print its telemetry",
    )
    demo.add_argument("--live", action="store_true", help="call the real API (needs ANTHROPIC_API_KEY)")
    prices = commands.add_parser("prices", help="print the price table in use and where each row came from")
    prices.add_argument("--file", help="a price file over the bundled table (default: $CLAUDE_OTEL_PRICES)")
    report = commands.add_parser(
        "report",
        help="draw the Grafana dashboards' panels as PNG images from a Prometheus (needs the 'report' extra)",
        description="Writes OUT/cost.png, OUT/reliability.png and OUT/latency.png: one plot per dashboard panel, "
        "from the same PromQL as the Grafana dashboards.",
    )
    report.add_argument("--prometheus", default="http://localhost:9090", help="the Prometheus URL (default: %(default)s)")
    report.add_argument("--out", default="claude-otel-report", help="the directory to write to (default: %(default)s)")
    report.add_argument("--since", default="1h", help="the time range, up to now: 15m, 6h, 7d, ... (default: %(default)s)")
    report.add_argument("--step", help="seconds between points of the time series (default: the range / 120)")
    report.add_argument(
        "--scrape-interval", default="15s", help="Prometheus' scrape interval, for $__rate_interval (default: %(default)s)"
    )
    for name in ("service", "model", "feature", "tenant"):
        report.add_argument(f"--{name}", help=f"a regular expression of the {name}s to show (default: all)")
    arguments = parser.parse_args(argv)
    if arguments.command == "report":
        from ._report import run

        selection = {name: getattr(arguments, name) for name in ("service", "model", "feature", "tenant") if getattr(arguments, name)}
        return run(arguments.prometheus, arguments.out, arguments.since, arguments.step, arguments.scrape_interval, selection)
    if arguments.command == "prices":
        return _print_prices(arguments.file)
    if arguments.command == "demo":
        from ._demo import run_demo

        return run_demo(["--live"] if arguments.live else [])
    return 2


def _print_prices(path: str | None) -> int:
    from ._prices import PriceTable, PriceTableError

    try:
        table = PriceTable.load(path)
    except PriceTableError as err:
        print(f"claude-otel prices: {err}", file=sys.stderr)
        return 2
    header = ("model", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "tiers", "effective", "source")
    rows = [header]
    for model, price in sorted(table.rows.items()):
        rates = price.rates
        per_million = [f"{value * 1_000_000:.6g}" for value in (rates.input, rates.cache_write_5m, rates.cache_write_1h, rates.cache_read, rates.output)]
        tiers = ",".join(f">{above}" for above, _ in price.tiers) or "-"
        rows.append((model, *per_million, tiers, price.effective_date, price.source))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print(f"\nUSD per million tokens; batch discount: {table.batch_discount:g}; from {', '.join(table.sources)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
