"""What claude_otel adds to a Claude call, measured in-process (no sockets): `python bench/overhead.py [batch|count]`.

The real SDK against an `httpx2.MockTransport` (`httpx.MockTransport` on 0.x) that answers at once, so what is
measured is the SDK and the instrumentation. Workloads: a plain `messages.create`, `create(stream=True)` with 200
text deltas read to the end, and the `messages.stream()` helper. Modes, interleaved run by run: no telemetry; the
SDK's own tracing alone (anthropic >= 1.14); claude_otel with spans only; claude_otel with spans, metrics (a
periodic reader collecting every second on its own thread, as in production but 60 times as often) and the request
log (the `claude_otel` logger at INFO, to a handler that discards). Spans go through a `SimpleSpanProcessor` to an
in-memory exporter (the worst case for the application thread), or with `batch` a `BatchSpanProcessor`.
Prints medians in microseconds, what each mode adds, per SSE event, and the ratios; asserts nothing.

`count [workload ...]` measures instructions instead of time, repeatable where wall time varies by ±30% (a shared
machine): each workload and mode runs in a process of its own under valgrind's callgrind, which counts the
instructions of the calls between two markers (`os.getppid()`, where callgrind dumps its counts), after a warm-up.
Spans go through a `SimpleSpanProcessor`; the metric reader never collects during the calls, so what is counted is
what the application thread pays (collection, on the reader's thread, is not counted). The objects of the warm-up
are frozen out of the garbage collector (`gc.freeze()`), so that a full collection does not land in one count and
not in another. Slow: minutes per process, two at a time on two cores.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
from anthropic import _base_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel

httpx = getattr(_base_client, "httpx2", None) or _base_client.httpx
DELTAS = 200
EVENTS = DELTAS + 5  # message_start, content_block_start/stop, message_delta, message_stop
MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
    "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
}


def sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


START = {**MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 1}}
STREAM = b"".join(
    [sse("message_start", {"type": "message_start", "message": START}),
     sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})]
    + [sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}})] * DELTAS
    + [sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
       sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": DELTAS}}),
       sse("message_stop", {"type": "message_stop"})]
)


def handler(request):
    if json.loads(request.content).get("stream"):
        return httpx.Response(200, headers={"content-type": "text/event-stream", "request-id": "req_1"}, content=STREAM)
    return httpx.Response(200, headers={"content-type": "application/json", "request-id": "req_1"}, json=MESSAGE)


def client(provider: TracerProvider | None) -> anthropic.Anthropic:
    options = {}
    if SDK_TRACES_ITSELF:
        options["open_telemetry"] = {"tracer_provider": provider} if provider else False
    return anthropic.Anthropic(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(handler)), **options)


SDK_TRACES_ITSELF = tuple(int(p) for p in anthropic.__version__.split(".")[:2]) >= (1, 14)
KW = {"model": "claude-sonnet-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def plain(c):
    c.messages.create(**KW)


def streamed(c):
    for _ in c.messages.create(**KW, stream=True):
        pass


def helper(c):
    with c.messages.stream(**KW) as s:
        s.until_done()


WORKLOADS = {"plain": plain, "streamed": streamed, "helper": helper}


class _Discard(logging.Handler):
    """A handler that formats nothing and writes nowhere: the request log's cost, without the cost of I/O."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


class _DiscardMetrics(MetricExporter):
    """Receives each collection and drops it: collecting is measured, exporting is not."""

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        pass


def modes(provider: TracerProvider, collect_every: int = 1000) -> dict[str, tuple[anthropic.Anthropic, dict | None]]:
    """Each mode: its client, and the `instrument()` options of claude_otel (None: not instrumented)."""
    reader = PeriodicExportingMetricReader(_DiscardMetrics(), export_interval_millis=collect_every)
    found = {"none": (client(None), None)}
    if SDK_TRACES_ITSELF:
        found["sdk tracing"] = (client(provider), None)
    found["claude_otel spans"] = (client(None), {"tracer_provider": provider, "metrics": False, "request_log": False})
    found["claude_otel all"] = (
        client(None),
        {"tracer_provider": provider, "meter_provider": MeterProvider(metric_readers=[reader]), "request_log": True},
    )
    return found


def main(rounds: int = 15, calls: int = 200, processor: str = "simple") -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter) if processor == "simple" else BatchSpanProcessor(exporter))
    # The request log at INFO, as a service that logs its requests would have it.
    request_log = logging.getLogger("claude_otel")
    request_log.addHandler(_Discard())
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    runs = modes(provider)
    results: dict[tuple[str, str], list[float]] = {}
    for workload in WORKLOADS.values():
        for _ in range(rounds):
            for mode, (c, options) in runs.items():
                if options is not None:
                    claude_otel.instrument(**options)
                started = time.perf_counter()
                for _ in range(calls):
                    workload(c)
                elapsed = (time.perf_counter() - started) / calls * 1e6
                if options is not None:
                    claude_otel.uninstrument()
                provider.force_flush()
                exporter.clear()
                results.setdefault((workload.__name__, mode), []).append(elapsed)
    print(
        f"anthropic {anthropic.__version__}, Python {sys.version.split()[0]}, {processor} span processor; "
        f"median µs per call over {rounds}x{calls} calls, modes interleaved"
    )
    report({run: statistics.median(values) for run, values in results.items()}, list(runs), list(WORKLOADS), "µs")


def report(values: dict[tuple[str, str], float], names: list[str], workloads: list[str], unit: str) -> None:
    """Prints each workload's value per mode (µs or instructions per call), what each mode adds to the first mode,
    no telemetry, and for claude_otel the share of what the SDK's tracing adds; per SSE event beyond a plain call."""
    number, per_event = ("{:8.1f}", "{:+.2f}") if unit == "µs" else ("{:12,.0f}", "{:+,.0f}")
    added_plain = {mode: values[("plain", mode)] - values[("plain", "none")] for mode in names} if "plain" in workloads else {}
    for workload in workloads:
        base = values[(workload, "none")]
        print(f"{workload:9s} none {number.format(base)}")
        for mode in names[1:]:
            value = values[(workload, mode)]
            added = value - base
            line = f"          {mode:18s} {number.format(value)}  +{number.format(added)} {unit}  x{value / base:.3f}"
            if workload != "plain" and added_plain:
                line += f"  {per_event.format((added - added_plain[mode]) / EVENTS)} {unit}/event beyond a plain call"
            elif workload == "plain" and mode.startswith("claude_otel") and "sdk tracing" in names:
                line += f"  {added / added_plain['sdk tracing']:.2f} of what the SDK's tracing adds"
            print(line)


def count_one(workload_name: str, mode: str, calls: int) -> None:
    """Runs `calls` calls of one workload and mode between the two markers that callgrind dumps its counts at."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    request_log = logging.getLogger("claude_otel")
    request_log.addHandler(_Discard())
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    c, options = modes(provider, collect_every=10**9)[mode]
    if options is not None:
        claude_otel.instrument(**options)
    workload = WORKLOADS[workload_name]
    for _ in range(20):
        workload(c)
    # What exists now is never collected again: a full collection, whose cost is that of the whole heap, would
    # otherwise land in some runs' calls and not in others'. Collections of what the calls allocate still count.
    gc.collect()
    gc.freeze()
    os.getppid()  # The first marker.
    for _ in range(calls):
        workload(c)
    os.getppid()  # The second.


def floor_one(calls: int) -> None:
    """Makes the outputs of one plain call, `calls` times, between the two markers: what `count_one` does for the
    floor. The outputs are those of a real call, captured once."""
    from opentelemetry import context, trace
    from opentelemetry.propagate import inject
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import SpanKind

    class Capture(SpanProcessor):
        def on_start(self, span, parent_context=None) -> None:
            captured["start"] = dict(span.attributes)

        def on_end(self, span) -> None:
            captured["name"], captured["end"] = span.name, dict(span.attributes)

    class Fields(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured["fields"] = record.claude_otel

    captured: dict = {}
    provider = TracerProvider()
    provider.add_span_processor(Capture())
    request_log = logging.getLogger("claude_otel")
    request_log.addHandler(Fields())
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    c, options = modes(provider, collect_every=10**9)["claude_otel all"]
    claude_otel.instrument(**options)
    plain(c)
    claude_otel.uninstrument()
    request_log.handlers.clear()
    request_log.addHandler(_Discard())
    start, name, fields = captured["start"], captured["name"], captured["fields"]
    end = {key: value for key, value in captured["end"].items() if key not in start}
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    tracer = provider.get_tracer("floor")
    encoder = json.JSONEncoder(separators=(",", ":"))

    def outputs() -> None:
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start)
        token = context.attach(trace.set_span_in_context(span))
        inject({})
        context.detach(token)
        span.set_attributes(end)
        span.end()
        line = encoder.encode(fields)
        request_log.handle(request_log.makeRecord("claude_otel", logging.INFO, __file__, 1, line, (), None, "outputs", {"claude_otel": fields}))

    for _ in range(20):
        outputs()
    gc.collect()
    gc.freeze()
    os.getppid()
    for _ in range(calls):
        outputs()
    os.getppid()


def count(workloads: list[str], calls: int = 50) -> None:
    """Instructions per call of each workload and mode, each counted in a process of its own under callgrind."""
    names = ["none", *(["sdk tracing"] if SDK_TRACES_ITSELF else []), "claude_otel spans", "claude_otel all"]
    runs = [(workload, mode) for workload in workloads for mode in names]
    if "plain" in workloads and SDK_TRACES_ITSELF:
        runs.append(("plain", "floor"))

    def instructions(run: tuple[str, str]) -> float:
        with tempfile.TemporaryDirectory() as directory:
            out = os.path.join(directory, "callgrind.out")
            subprocess.run(
                ["valgrind", "--tool=callgrind", "--dump-before=getppid", f"--callgrind-out-file={out}",
                 sys.executable, __file__, "_count", run[0], run[1], str(calls)],
                check=True, capture_output=True,
            )
            # Dump 1 ends at the first marker, dump 2 at the second: the calls are dump 2.
            with open(f"{out}.2") as dump:
                return int(re.search(r"^totals: (\d+)", dump.read(), re.MULTILINE).group(1)) / calls

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        counted = dict(zip(runs, pool.map(instructions, runs)))
    print(f"anthropic {anthropic.__version__}, Python {sys.version.split()[0]}, simple span processor; "
          f"instructions per call (callgrind, {calls} calls after a warm-up)")
    report(counted, names, workloads, "instructions")
    if ("plain", "floor") in counted:
        floor = counted[("plain", "floor")]
        sdk = counted[("plain", "sdk tracing")] - counted[("plain", "none")]
        print(f"floor     the outputs of claude_otel all, made directly: +{floor:12,.0f} instructions  "
              f"{floor / sdk:.2f} of what the SDK's tracing adds")


if __name__ == "__main__":
    if sys.argv[1:2] == ["count"]:
        count(sys.argv[2:] or list(WORKLOADS))
    elif sys.argv[1:2] == ["_count"] and sys.argv[3] == "floor":
        floor_one(int(sys.argv[4]))
    elif sys.argv[1:2] == ["_count"]:
        count_one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main(processor=sys.argv[1] if len(sys.argv) > 1 else "simple")
