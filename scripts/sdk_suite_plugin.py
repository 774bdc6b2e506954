"""A pytest plugin that instruments the anthropic SDK's own test suite with claude_otel, everything on (spans, counted;
metrics, to an in-memory reader; the request log), for `scripts/sdk_suite.py`.

Writes to the directory `CLAUDE_OTEL_SUITE_OUT`: `failures.log`, every record claude_otel logged about a failure of
its own (what it caught), and `spans.log`, per test process the spans claude_otel started and how many of them
never ended.
"""

from __future__ import annotations

import logging
import os

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

import claude_otel

_OUT = os.environ.get("CLAUDE_OTEL_SUITE_OUT", ".")


class _Open(SpanProcessor):
    """Counts the spans started, and keeps those not ended yet."""

    def __init__(self) -> None:
        self.started = 0
        self.open: set[int] = set()

    def on_start(self, span, parent_context=None) -> None:  # type: ignore[no-untyped-def]
        self.started += 1
        self.open.add(span.context.span_id)

    def on_end(self, span) -> None:  # type: ignore[no-untyped-def]
        self.open.discard(span.context.span_id)


_SPANS = _Open()


class _Failures(logging.Handler):
    """Keeps what claude_otel caught: its debug records with a traceback or a 'could not'."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "could not" in record.getMessage():
            with open(os.path.join(_OUT, "failures.log"), "a") as out:
                out.write(self.format(record) + "\n")


def pytest_configure(config) -> None:  # type: ignore[no-untyped-def]
    provider = TracerProvider()
    provider.add_span_processor(_SPANS)
    handler = _Failures(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("claude_otel")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    claude_otel.instrument(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        request_log=os.environ.get("CLAUDE_OTEL_SUITE_REQUEST_LOG", "1") == "1",
    )


def pytest_unconfigure(config) -> None:  # type: ignore[no-untyped-def]
    with open(os.path.join(_OUT, "spans.log"), "a") as out:
        out.write(f"{_SPANS.started} {len(_SPANS.open)}\n")
