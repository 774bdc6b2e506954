"""A service for the live alert test, run as its own process: `python alerts_service.py MODEL LIMIT PLAN`.

It makes the one-line call, `claude_otel.instrument()` (its telemetry goes where its OTEL_* environment says: the
real collector), and calls a simulator of its own, whose rate limit is LIMIT requests an hour (an hour: its
headroom stays where the test put it). Each line it reads on stdin is a round: one call to MODEL for each step of
PLAN (comma-separated `x-claude-sim` steps, `N*STEP` for N of them), then its metrics are exported, and it prints
`done`. It exits at the end of its input.

Rounds a scrape apart are what make counters increase inside Prometheus' rate windows, as a running service's do.
"""

from __future__ import annotations

import sys

import anthropic
from opentelemetry import metrics

import claude_otel
from claude_otel.testing import SCENARIO_HEADER, RateLimits, Simulator


def main(model: str, limit: str, plan: str) -> None:
    claude_otel.instrument()
    steps = [step for item in plan.split(",") for step in _repeat(item)]
    with Simulator(rate_limits=RateLimits(requests=int(limit), period=3600)) as sim, anthropic.Anthropic(api_key="sk-ant-test", base_url=sim.url) as client:
        for _ in sys.stdin:
            for step in steps:
                try:
                    client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                           extra_headers={SCENARIO_HEADER: step})  # fmt: skip
                except anthropic.APIStatusError:
                    pass  # A 529 after the SDK's retries: what the alerts are about.
            assert metrics.get_meter_provider().force_flush()  # type: ignore[attr-defined]
            print("done", flush=True)


def _repeat(item: str) -> list[str]:
    count, _, step = item.rpartition("*")
    return [step] * int(count or 1)


if __name__ == "__main__":
    main(*sys.argv[1:])
