"""Two services of one trace, for the scale-out test, each its own process exporting to its own agent:

- `python stack_scale_out_app.py back PORT` is service B: it makes the one-line call, `claude_otel.instrument()`,
  and answers `POST /` on 127.0.0.1:PORT by calling the bundled simulator with the body's `steps` (a scenario of
  claude_otel.testing.SCENARIO_HEADER), under a SERVER span whose parent is the W3C `traceparent` of the request.
  It answers 200 with `{"request_id": ..., "failed": ...}` whether the call failed or not: the error is B's alone,
  on B's call span. `GET /` answers 200 once it serves. SIGTERM ends it as a normal exit, so that claude_otel's
  providers flush at exit as in any service stopped by its supervisor.
- `python stack_scale_out_app.py front URL PLAN` is service A, a front end instrumented with the plain OpenTelemetry
  SDK (any SDK's OTLP exporter would do): for each request of PLAN (`KIND=COUNT,...`, KIND in STEPS, shuffled) it
  starts a CLIENT span, sends its traceparent to B at URL, and prints one JSON line: the kind, A's trace id and span
  id, and B's answer. Its span's status stays unset, failed call or not.

Both export where the standard OTEL_* variables of their environment say (endpoint, bearer token, service name).
"""

from __future__ import annotations

import json
import random
import signal
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

STEPS = {"failed": "400", "ok": "ok"}
"""Request kind → the simulator's scenario for B's call: a 400 is not retried, and fails the call span."""

MODEL = "claude-sonnet-5-5"


def back(port: int) -> None:
    import anthropic
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    import claude_otel
    from claude_otel.testing import SCENARIO_HEADER, Simulator

    claude_otel.instrument()
    tracer = trace.get_tracer("scale-out-back")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    with Simulator(retry_after=0.01) as sim, anthropic.Anthropic(api_key="sk-ant-stack-test", base_url=sim.url) as client:

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.answer({"ready": True})

            def do_POST(self) -> None:
                steps = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["steps"]
                with tracer.start_as_current_span("back-end", context=extract(self.headers), kind=trace.SpanKind.SERVER):
                    request_id, failed = None, False
                    try:
                        request_id = client.messages.create(
                            model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "Say hello."}],
                            extra_headers={SCENARIO_HEADER: steps},
                        )._request_id  # fmt: skip
                    except anthropic.APIStatusError as error:
                        request_id, failed = error.request_id, True
                self.answer({"request_id": request_id, "failed": failed})

            def answer(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # One line per request on stderr would drown the log.
                pass

        with HTTPServer(("127.0.0.1", port), Handler) as server:
            server.serve_forever()


def front(url: str, plan: str) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagate import inject
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("scale-out-front")
    kinds = [kind for kind, _, count in (item.partition("=") for item in plan.split(",")) for _ in range(int(count))]
    random.shuffle(kinds)
    try:
        for kind in kinds:
            with tracer.start_as_current_span("front-end", kind=SpanKind.CLIENT) as span:
                headers = {"Content-Type": "application/json"}
                inject(headers)
                request = urllib.request.Request(url, data=json.dumps({"steps": STEPS[kind]}).encode(), headers=headers)
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                context = span.get_span_context()
            print(json.dumps({"kind": kind, "trace_id": format(context.trace_id, "032x"),
                              "span_id": format(context.span_id, "016x"), **answer}))  # fmt: skip
    finally:
        provider.shutdown()


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    if role == "back":
        back(int(arguments[0]))
    else:
        front(*arguments)
