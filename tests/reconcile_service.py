"""A service for the reconcile test, run as its own process: `python reconcile_service.py demo|calls ...`.

`demo`: instrumented (`claude_otel.instrument()`, exporting where its OTEL_* environment says), it runs the demo's
workload against ANTHROPIC_BASE_URL. `calls MODEL COUNT STEP USAGE [--uninstrumented]`: COUNT calls to MODEL, each
scripted with the `x-claude-sim` STEP and the `x-claude-sim-usage` USAGE (JSON), instrumented unless told not to.
It exits when done; claude_otel's providers export at exit, as in any short-lived job.
"""

from __future__ import annotations

import sys

import anthropic

import claude_otel
from claude_otel.testing import SCENARIO_HEADER, USAGE_HEADER


def main(argv: list[str]) -> None:
    if "--uninstrumented" not in argv:
        claude_otel.instrument()
    client, async_client = anthropic.Anthropic(api_key="sk-ant-test"), anthropic.AsyncAnthropic(api_key="sk-ant-test")
    if argv[0] == "demo":
        from claude_otel._tools.demo import run_workload

        run_workload(client, async_client)
        return
    _, model, count, step, usage = argv[:5]
    for _ in range(int(count)):
        client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                               extra_headers={SCENARIO_HEADER: step, USAGE_HEADER: usage})  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
