"""An application for the fault tests, run as its own process: `python stack_faults_app.py SECONDS`.

It makes the one-line call, `claude_otel.instrument()`, so its telemetry goes where the standard OTEL_* variables of
its environment say (the real collector, with its bearer token), and calls the bundled simulator steadily until
SIGTERM, or SECONDS at most: a call every INTERVAL seconds (late, the next one at once, never a burst to catch up),
each in a trace of its own under an application span. Every FAIL_EVERY-th call is answered 400 and not retried: a
failed call, whose trace the collector's tail sampling always keeps; the others succeed.

It prints `ready` once its first call has returned, then, after the last call, one JSON line per call: when it
started (`time.time()`), how long the SDK call took, whether it was to fail, whether the application got what it
should (the message, or the 400 as `BadRequestError`), the request id and the trace id. Then it exits, and
claude_otel's providers flush at exit. The OpenTelemetry SDK's own warnings (an export retried, an export given up)
go to stderr, each with its time.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time

import anthropic
from opentelemetry import trace

import claude_otel
from claude_otel.testing import SCENARIO_HEADER, Simulator

INTERVAL = 0.05
FAIL_EVERY = 5


def call(client: anthropic.Anthropic, number: int) -> dict:
    to_fail = number % FAIL_EVERY == FAIL_EVERY - 1
    with trace.get_tracer("stack-faults-app").start_as_current_span("handle-request") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        started, clock = time.time(), time.perf_counter()
        try:
            message = client.messages.create(
                model="claude-sonnet-5-5", max_tokens=32, messages=[{"role": "user", "content": "Say hello."}],
                extra_headers={SCENARIO_HEADER: "400" if to_fail else "ok"},
            )  # fmt: skip
            request_id, expected = message._request_id, not to_fail and bool(message.content)
        except anthropic.BadRequestError as error:
            request_id, expected = error.request_id, to_fail
        except anthropic.APIError as error:  # Anything else is what the application should never get.
            request_id, expected = repr(error), False
        latency = time.perf_counter() - clock
    return {"start": started, "latency": latency, "to_fail": to_fail, "expected": expected,
            "request_id": request_id, "trace_id": trace_id}  # fmt: skip


def main(seconds: float) -> None:
    # The OpenTelemetry SDK's warnings, with their time: when an export failed, was retried, was given up.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(created).3f %(name)s %(levelname)s %(message)s"))
    logging.getLogger("opentelemetry").addHandler(handler)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # Between two calls: no call is cut short.
    claude_otel.instrument()
    calls = []
    with Simulator() as sim, anthropic.Anthropic(api_key="sk-ant-stack-faults", base_url=sim.url) as client:
        next_at = time.monotonic()
        end = next_at + seconds
        while not stop.is_set() and next_at < end:
            calls.append(call(client, len(calls)))
            if len(calls) == 1:
                print("ready", flush=True)
            next_at = max(next_at + INTERVAL, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))
    for result in calls:
        print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main(float(sys.argv[1]))
