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
    arguments = parser.parse_args(argv)
    if arguments.command == "demo":
        from ._demo import run_demo

        return run_demo(["--live"] if arguments.live else [])
    return 2


if __name__ == "__main__":
    sys.exit(main())
