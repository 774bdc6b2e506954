"""Running the same application code without claude_otel and with it, and checking what instrumentation promises.

`outcome(fn)` is what the application sees of `fn()`: its result in comparable form, or its exception's type and
message. `Watched` instruments the SDK for one run and then checks the promises that hold whatever the SDK got:
every span that started ended exactly once, no exception was raised inside claude_otel, and claude_otel logged no
failure of its own (its request log aside, which is a record per call at INFO or WARNING by design).
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel

PACKAGE_DIR = os.path.dirname(claude_otel.__file__)

# The warnings of claude_otel's that are about what it was given, not failures of its own: a model missing from the
# price table (a response can name any model).
EXPECTED_WARNINGS = ("no price for model",)
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def plain(value: Any) -> Any:
    """`value` as comparable data: models as their dumps (and the request id the SDK gives them), the rest as is."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return (type(value).__name__, dump(warnings=False), getattr(value, "_request_id", None))
    return value


def outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    """What the application gets from `fn()`: `("returned", plain result)` or `("raised", type, message, ...)`.

    The exception's own message, its status code and body when it is an API error, and its cause's type.
    Object addresses in messages are masked, since they differ from run to run.
    """
    try:
        return ("returned", plain(fn()))
    except Exception as err:
        assert_not_raised_inside_claude_otel(err)
        return (
            "raised",
            type(err),
            _ADDRESS.sub(" at 0x?", str(err)),
            getattr(err, "status_code", None),
            plain(getattr(err, "body", None)),
            type(err.__cause__),
        )


def assert_not_raised_inside_claude_otel(err: BaseException) -> None:
    """The frame that raised `err`, and those that raised its causes and contexts, are none of claude_otel's.

    claude_otel's wrappers are on the way of every exception of the SDK (they see it and re-raise it), so only the
    innermost frame, where the exception started, tells whose it is.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [err]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback = current.__traceback__
        if traceback is not None:
            while traceback.tb_next is not None:
                traceback = traceback.tb_next
            where = traceback.tb_frame.f_code.co_filename
            in_package = where.startswith(PACKAGE_DIR) and os.sep + "testing" + os.sep not in where
            assert not in_package, f"{type(current).__name__}: {current} was raised in {where}"
        pending += [current.__cause__, current.__context__]


class _Starts(SpanProcessor):
    """Counts the starts and the ends of every span, by span id."""

    def __init__(self) -> None:
        self.started: Counter[int] = Counter()
        self.ended: Counter[int] = Counter()
        self._lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        with self._lock:
            self.started[span.context.span_id] += 1

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended[span.context.span_id] += 1


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Watched:
    """claude_otel instrumenting the SDK for a `with` block, with every span, debug log and warning kept.

    On a clean exit it checks the promises (see the module); `expected_failures` are substrings of debug messages of
    claude_otel's that the run may log with a traceback, for an input that is broken for the SDK itself.
    """

    def __init__(self, expected_failures: Iterable[str] = (), **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self._starts = _Starts()
        self.provider.add_span_processor(self._starts)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self._options = options
        self._expected = tuple(expected_failures)
        self._ours = _Records()
        self._otel = _Records()
        self._levels: dict[str, int] = {}

    def __enter__(self) -> Watched:
        for name, handler in self._loggers():
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(handler)
        claude_otel.instrument(
            tracer_provider=self.provider, meter_provider=MeterProvider(metric_readers=[self.reader]), **self._options
        )
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        claude_otel.uninstrument()
        for name, handler in self._loggers():
            logger = logging.getLogger(name)
            logger.removeHandler(handler)
            logger.setLevel(self._levels[name])
        if exc_type is None:
            self.check()

    def _loggers(self) -> tuple[tuple[str, logging.Handler], ...]:
        # The OpenTelemetry SDK's complaints about what it was given (a span ended twice, a negative count) and about
        # attribute values; not its exporters', which an earlier test's global provider may have running.
        return (("claude_otel", self._ours), ("opentelemetry.sdk", self._otel), ("opentelemetry.attributes", self._otel))

    def _unended(self) -> set[int]:
        return {span_id for span_id in self._starts.started if span_id not in self._starts.ended}

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def calls(self) -> list[ReadableSpan]:
        return [span for span in self.spans() if "claude_otel.attempts" in span.attributes]

    def check(self) -> None:
        unended = self._unended()
        if unended:
            gc.collect()  # Ends the spans of streams the application dropped, that only the cycle collector frees.
            unended = self._unended()
        assert not unended, f"{len(unended)} span(s) never ended"
        assert all(count == 1 for count in self._starts.started.values())
        assert all(count == 1 for count in self._starts.ended.values()), "a span ended twice"
        failures = [
            record.getMessage()
            for record in self._ours.records
            if (
                record.levelno > logging.DEBUG
                and not hasattr(record, "claude_otel")
                and not any(text in record.getMessage() for text in EXPECTED_WARNINGS)
            )
            or (record.exc_info and not any(text in record.getMessage() for text in self._expected))
        ]
        assert not failures, failures
        otel_warnings = [record.getMessage() for record in self._otel.records if record.levelno >= logging.WARNING]
        assert not otel_warnings, otel_warnings  # Such as "Calling end() on an ended span".
