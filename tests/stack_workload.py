"""An application for the stack tests, run as its own process: `python stack_workload.py PLAN`.

It makes the one-line call, `claude_otel.instrument()`, so its telemetry goes where the standard OTEL_* variables of
its environment say (the real collector, with its bearer token), and calls the bundled simulator: each call in a
trace of its own, under an application span named after the call's kind. Then it exits, and claude_otel's providers
flush at exit as in any short-lived job.

For every call it prints one JSON line: the kind, the trace id, the request id the application saw (from the
response, or from the exception), and whether the call failed. The last call is a failing `sentinel`, made after
all the others have ended: once the collector has decided its trace, it has decided every other one.

PLAN is `KIND=COUNT,...`; a kind is one of KINDS below. `slow` calls run in threads beside the rest.
"""

from __future__ import annotations

import json
import os
import sys
import threading

import anthropic
from opentelemetry import trace

import claude_otel
from claude_otel.testing import SCENARIO_HEADER, Simulator

CANARY = os.environ.get("STACK_WORKLOAD_CANARY", "")
"""A word put in every prompt, system prompt and tool definition, to look for in what the stack stored."""

SLOW_SECONDS = float(os.environ.get("STACK_WORKLOAD_SLOW_SECONDS", "21"))

# kind: (simulator steps, streamed)
KINDS = {
    "ok": ("ok", False),
    "streamed": ("ok", True),
    "retried": ("529,ok", False),
    "rate_limited": ("429", False),
    "rejected": ("400", False),
    "error_after_200": ("error_event", True),
    "truncated": ("truncate", True),
    "slow": (f"stall:{SLOW_SECONDS}", False),
    "sentinel": ("400", False),
}


def call(client: anthropic.Anthropic, kind: str, out: list[dict]) -> None:
    steps, streamed = KINDS[kind]
    request = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 32,
        "system": f"Be brief. {CANARY}",
        "messages": [{"role": "user", "content": f"Say hello. {CANARY}"}],
        "tools": [{"name": "lookup", "description": f"Looks up {CANARY}", "input_schema": {"type": "object"}}],
        "extra_headers": {SCENARIO_HEADER: steps},
    }
    with trace.get_tracer("stack-workload").start_as_current_span(kind) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        request_id, failed = None, False
        try:
            if streamed:
                stream = client.messages.create(**request, stream=True)
                request_id = stream.response.headers.get("request-id")
                with stream:
                    for _ in stream:
                        pass
            else:
                request_id = client.messages.create(**request)._request_id
        except anthropic.APIStatusError as error:  # An error response, or an error event after HTTP 200.
            request_id, failed = error.request_id or request_id, True
        except anthropic.APIError:
            failed = True
    out.append({"kind": kind, "trace_id": trace_id, "request_id": request_id, "failed": failed})


def main(plan: str) -> None:
    claude_otel.instrument()
    counts = {kind: int(count) for kind, _, count in (item.partition("=") for item in plan.split(","))}
    results: list[dict] = []
    with Simulator(retry_after=0.01) as sim, anthropic.Anthropic(api_key="sk-ant-stack-test", base_url=sim.url) as client:
        slow = [threading.Thread(target=call, args=(client, "slow", results)) for _ in range(counts.pop("slow", 0))]
        for thread in slow:
            thread.start()
        for kind, count in counts.items():
            for _ in range(count):
                call(client, kind, results)
        for thread in slow:
            thread.join()
        call(client, "sentinel", results)
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
