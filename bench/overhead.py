"""What claude_otel adds to a Claude call, measured in-process (no sockets): `python bench/overhead.py`.

The real SDK against an `httpx2.MockTransport` (`httpx.MockTransport` on 0.x) that answers at once, so what is
measured is the SDK and the instrumentation. Modes, interleaved run by run: no telemetry; the SDK's own tracing
(anthropic >= 1.14); claude_otel spans. Spans go through a `SimpleSpanProcessor` to an in-memory exporter (the
worst case for the application thread). Prints medians in microseconds and the ratios; asserts nothing.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import anthropic
from anthropic import _base_client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel

httpx = getattr(_base_client, "httpx2", None) or _base_client.httpx
DELTAS = 200
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


def main(rounds: int = 15, calls: int = 200) -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    modes = {"none": client(None)}
    if SDK_TRACES_ITSELF:
        modes["sdk tracing"] = client(provider)
    modes["claude_otel"] = client(None)
    results: dict[tuple[str, str], list[float]] = {}
    for workload in (plain, streamed, helper):
        for _ in range(rounds):
            for mode, c in modes.items():
                if mode == "claude_otel":
                    claude_otel.instrument(tracer_provider=provider)
                started = time.perf_counter()
                for _ in range(calls):
                    workload(c)
                elapsed = (time.perf_counter() - started) / calls * 1e6
                if mode == "claude_otel":
                    claude_otel.uninstrument()
                exporter.clear()
                results.setdefault((workload.__name__, mode), []).append(elapsed)
    print(f"anthropic {anthropic.__version__}, Python {sys.version.split()[0]}; median µs per call over {rounds}x{calls} calls")
    for workload in ("plain", "streamed", "helper"):
        base = statistics.median(results[(workload, "none")])
        line = [f"{workload:9s} none {base:8.1f}"]
        for mode in list(modes)[1:]:
            value = statistics.median(results[(workload, mode)])
            added = value - base
            per_event = f" ({added / (DELTAS + 5):.2f} µs/event)" if workload != "plain" else ""
            line.append(f"{mode} {value:8.1f} (+{added:6.1f}, x{value / base:.2f}){per_event}")
        print(" | ".join(line))


if __name__ == "__main__":
    main()
