"""Memory over many calls, with everything on: `python bench/memory.py [calls]` (default 100,000 per workload).

The real SDK against an in-process transport (see overhead.py), claude_otel with spans (a `BatchSpanProcessor` to an
exporter that discards), metrics (a periodic reader, every second) and the request log (the `claude_otel` logger at
INFO, to a handler that discards). Workloads: plain calls, streams read to the end, and streams abandoned after one
event and dropped. Prints RSS and the number of live objects (after a collection) at every fifth of the run, so that
growth shows as a trend; asserts nothing.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import claude_otel

sys.path.insert(0, os.path.dirname(__file__))
from overhead import KW, _Discard, _DiscardMetrics, client, plain, streamed


class _DiscardSpans(SpanExporter):
    def export(self, spans) -> SpanExportResult:  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


def abandoned(c) -> None:  # type: ignore[no-untyped-def]
    stream = c.messages.create(**KW, stream=True)
    next(iter(stream))  # One event, then the stream is dropped without a close.


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(calls: int) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_DiscardSpans()))
    reader = PeriodicExportingMetricReader(_DiscardMetrics(), export_interval_millis=1000)
    request_log = logging.getLogger("claude_otel")
    request_log.addHandler(_Discard())
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    claude_otel.instrument(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]))
    c = client(None)
    print(f"{calls} calls per workload; RSS in MB and live objects after gc, at each fifth")
    for workload in (plain, streamed, abandoned):
        row = []
        for _fifth in range(5):
            for _ in range(calls // 5):
                workload(c)
            gc.collect()
            row.append(f"{rss_mb():6.1f} MB {len(gc.get_objects()):7d}")
        print(f"{workload.__name__:9s} " + " | ".join(row))
    provider.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
