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
    prices.add_argument("--check", metavar="MODEL", help="say which row a model id resolves to, and why, and its prices")
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
    reconcile = commands.add_parser(
        "reconcile",
        help="compare claude_otel's dollars in Prometheus with Anthropic's cost report, per day and model",
        description="Per UTC day and model (and cost type): what claude_otel counted, from Prometheus, against the "
        "Admin API's cost report (ANTHROPIC_ADMIN_KEY, an sk-ant-admin... key). Exits 1 when a row is past the "
        "tolerance, naming the usual causes; 2 when it cannot tell.",
    )
    reconcile.add_argument("--since", default="7d", help="the range, up to now, in whole UTC days: 7d, 36h, ... (default: %(default)s)")
    reconcile.add_argument("--by", default="model", help="model, cost_type or both, comma-separated (default: %(default)s)")
    reconcile.add_argument("--prometheus", default="http://localhost:9090", help="the Prometheus URL (default: %(default)s)")
    reconcile.add_argument("--tolerance", default="2%", help="a row's difference allowed, as a share of the invoice (default: %(default)s)")
    reconcile.add_argument("--min-usd", type=float, default=0.01, help="... and in dollars, whatever the share (default: %(default)s)")
    destination = commands.add_parser(
        "destination",
        help="register and check where the Claude API sends its own spans (API tracing), with ANTHROPIC_ADMIN_KEY",
        description="The organization's telemetry destinations, through the Admin API (docs/api-tracing.md). "
        "Secrets are never printed, nor taken from the command line.",
    )
    actions = destination.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register a collector's https URL (port 443), with its token")
    create.add_argument("--endpoint", required=True, help="the collector's base URL: https://otel.example.com (the API appends /v1/traces)")
    create.add_argument("--name", help="a display name")
    create.add_argument("--token-env", default="CLAUDE_OTEL_API_TRACING_TOKEN",
                        help="the environment variable holding the token the API sends as 'authorization: Bearer ...' (default: %(default)s)")  # fmt: skip
    create.add_argument("--workspace", action="append", help="a workspace id to cover (repeat; default: all workspaces)")
    actions.add_parser("list", help="the destinations: state, URL, header names, last delivery")
    for name, what in (("test", "send one test span (anthropic.test) and say whether it was delivered"),
                       ("disable", "stop deliveries to a destination"), ("enable", "resume deliveries to a destination")):  # fmt: skip
        actions.add_parser(name, help=what).add_argument("id", help="the destination's id (tdst_...)")
    simulate = commands.add_parser(
        "simulate",
        help="serve the bundled Anthropic API simulator, for services under test in any language",
        description="Serves the Messages API (JSON and SSE), count_tokens, Message Batches and /v1/models until "
        "SIGTERM or Ctrl-C. Prints one line with the URL (ANTHROPIC_BASE_URL) once it listens. A request's "
        "x-claude-sim header, or else the script's rules, say what it gets (docs/simulator.md).",
    )
    simulate.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)")
    simulate.add_argument("--port", type=int, default=8765, help="the port, 0 for a free one (default: %(default)s)")
    simulate.add_argument("--script", help="a JSON (or YAML) file of rules for requests without x-claude-sim")
    arguments = parser.parse_args(argv)
    if arguments.command == "simulate":
        return _simulate(arguments.host, arguments.port, arguments.script)
    if arguments.command == "report":
        from ._tools.report import run

        selection = {name: getattr(arguments, name) for name in ("service", "model", "feature", "tenant") if getattr(arguments, name)}
        return run(arguments.prometheus, arguments.out, arguments.since, arguments.step, arguments.scrape_interval, selection)
    if arguments.command == "reconcile":
        from ._tools.reconcile import run as reconcile_run

        return reconcile_run(arguments.prometheus, arguments.since, arguments.by, arguments.tolerance, arguments.min_usd)
    if arguments.command == "destination":
        from ._tools.destination import run as destination_run

        return destination_run(arguments.action, arguments)
    if arguments.command == "prices":
        return _print_prices(arguments.file, arguments.check)
    if arguments.command == "demo":
        from ._tools.demo import run_demo

        return run_demo(["--live"] if arguments.live else [])
    return 2


def _simulate(host: str, port: int, script_path: str | None) -> int:
    """Serves the simulator until SIGTERM or SIGINT; 2 for a bad script or an address it cannot listen on."""
    import signal
    import threading

    from .testing._script import Script, ScriptError
    from .testing._simulator import Simulator

    try:
        script = Script.load(script_path) if script_path else None
    except ScriptError as err:
        print(f"claude-otel simulate: {err}", file=sys.stderr)
        return 2
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"claude-otel simulate: listening on {host}, not only on this machine: anyone who reaches it gets answers", file=sys.stderr)
    try:
        simulator = Simulator(host=host, port=port, script=script, **(script.options if script else {})).start()
    except OSError as err:
        print(f"claude-otel simulate: cannot listen on {host}:{port}: {err.strerror or err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"claude-otel simulate: serving the Anthropic API at {simulator.url} (ANTHROPIC_BASE_URL={simulator.url})", flush=True)
    try:
        while not stop.wait(1):
            pass
    finally:
        simulator.stop()
    return 0


def _print_prices(path: str | None, check: str | None) -> int:
    from ._prices import PriceTable, PriceTableError

    try:
        table = PriceTable.load(path)
    except PriceTableError as err:
        print(f"claude-otel prices: {err}", file=sys.stderr)
        return 2
    if check is not None:
        row, how = table.resolve(check)
        print(f"{check} -> {row or 'unpriced'}: {how}")
        if row is None:
            return 1
    header = ("model", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "tiers", "fast", "geo", "effective", "source")
    rows: list[tuple[str, ...]] = [header]
    for model, price in sorted(table.rows.items()):
        if check is not None and model != row:
            continue
        rates = price.rates
        per_million = [_mtok(value) for value in (rates.input, rates.cache_write_5m, rates.cache_write_1h, rates.cache_read, rates.output)]
        tiers = ",".join(f">{above}" for above, _ in price.tiers) or "-"
        fast = f"{_mtok(price.fast.input)}/{_mtok(price.fast.output)}" if price.fast else "-"
        geo = ",".join(f"{name}x{factor:g}" for name, factor in (price.inference_geo or {}).items()) or "-"
        rows.append((model, *per_million, tiers, fast, geo, price.effective_date, price.source))
    widths = [max(len(cells[column]) for cells in rows) for column in range(len(header) - 1)]
    for cells in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + "  " + cells[-1])
    print(
        f"\nUSD per million tokens (fast: input/output); batch discount: {table.batch_discount:g}; "
        f"web search: ${table.web_search_per_1k:g} per 1,000 unless a row says otherwise; "
        f"from {', '.join(table.sources)}"
    )
    return 0


def _mtok(per_token: float) -> str:
    return f"{per_token * 1_000_000:.6g}"


if __name__ == "__main__":
    sys.exit(main())
