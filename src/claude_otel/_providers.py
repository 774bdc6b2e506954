"""The telemetry pipeline that `claude_otel.instrument()` sets up when the application has none.

Standard OpenTelemetry environment variables decide it, as they would for `opentelemetry-instrument`:
`OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`
(`otlp`, the default, `console` or `none`), `OTEL_EXPORTER_OTLP_PROTOCOL` and its per-signal forms (`grpc`, the
default, or `http/protobuf`), and what the OTLP exporters read themselves (`OTEL_EXPORTER_OTLP_ENDPOINT`, headers,
timeouts, ...). Spans leave through a `BatchSpanProcessor` and metrics through a periodic reader, both on threads of
their own: an unreachable collector costs the application's calls nothing.

At exit, the providers set up here flush and shut down side by side, and the process waits for them while the
collector takes what is left: it stops waiting once `CLAUDE_OTEL_EXIT_TIMEOUT` seconds (0.5 by default) pass without
a span export succeeding, and in any case after the exporter timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s). A telemetry
library must not hold a CLI, a job or a serverless function: the SDK's own exit handlers would shut the providers
down one after the other, each waiting out the exporter's retries for its whole timeout, so an unreachable collector
held the exit for 8 to 10 s. A collector that answers gets everything, its backlog included; from one that does not
(refused, or silent), what was not yet exported is dropped.

A provider that the application has set globally, or passes to `instrument()`, is used as it is and never changed.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._warnings import warn

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_PROTOCOLS = ("grpc", "http/protobuf")


def default_tracer_provider() -> trace.TracerProvider | None:
    """The global tracer provider, after setting one up from the environment if the application has none.

    `None` when OpenTelemetry is disabled (`OTEL_SDK_DISABLED=true`): spans then go to the no-op provider.
    """
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        return current
    if _sdk_disabled():
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create(), shutdown_on_exit=False)
    kind = _exporter_kind("OTEL_TRACES_EXPORTER")
    if kind == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif kind == "otlp":
        if _protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
        provider.add_span_processor(BatchSpanProcessor(_Watched(OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    _shut_down_at_exit(provider)
    return trace.get_tracer_provider()


def default_meter_provider() -> metrics.MeterProvider | None:
    """The global meter provider, after setting one up from the environment if the application has none."""
    current = metrics.get_meter_provider()
    if type(current).__name__ != "_ProxyMeterProvider":
        return current
    if _sdk_disabled():
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    readers = []
    kind = _exporter_kind("OTEL_METRICS_EXPORTER")
    if kind == "console":
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    elif kind == "otlp":
        if _protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    provider = MeterProvider(resource=Resource.create(), metric_readers=readers, shutdown_on_exit=False)
    metrics.set_meter_provider(provider)
    _shut_down_at_exit(provider)
    return metrics.get_meter_provider()


_AT_EXIT: list[Any] = []
"""The providers set up here, which `_shut_down` shuts down at exit."""


def _shut_down_at_exit(provider: Any) -> None:
    if not _AT_EXIT:
        atexit.register(_shut_down)
    _AT_EXIT.append(provider)


EXIT_TIMEOUT_VARIABLE = "CLAUDE_OTEL_EXIT_TIMEOUT"
_EXIT_TIMEOUT_S = 0.5
"""How long exit waits without a span export succeeding."""


def _shut_down() -> None:
    """Shuts the providers down side by side, and waits for them while span exports keep succeeding (see the module's
    docstring). Never raises."""
    try:
        threads = [threading.Thread(target=provider.shutdown, daemon=True) for provider in _AT_EXIT]
        started = time.monotonic()
        _Watched.last_success = started  # The exit timeout runs from here, then from each successful export.
        for thread in threads:
            thread.start()
        idle, deadline = _exit_timeout(), started + _exporter_timeout()
        for thread in threads:
            # Daemon threads: one still exporting when the time is up does not keep the process alive.
            while thread.is_alive():
                now = time.monotonic()
                wait = min(_Watched.last_success + idle, deadline) - now
                if wait <= 0:
                    return
                thread.join(min(wait, 0.05))
    except Exception:  # noqa: BLE001, S110  At exit, with the interpreter going away: nothing to report it to.
        pass


class _Watched(SpanExporter):
    """A span exporter that notes when an export last succeeded: at exit, the sign that the collector answers."""

    last_success = 0.0
    """`time.monotonic()` of the last successful export of any `_Watched` exporter."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            _Watched.last_success = time.monotonic()
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._exporter.force_flush(timeout_millis))


def _exporter_timeout() -> float:
    """`OTEL_EXPORTER_OTLP_TIMEOUT` in seconds, as the exporters read it (10 when unset or not a number)."""
    try:
        return float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT") or 10)
    except ValueError:
        return 10.0


def _exit_timeout() -> float:
    text = os.environ.get(EXIT_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return _EXIT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 3600:  # NaN too
        _warn_once(EXIT_TIMEOUT_VARIABLE, text, f"claude_otel: {EXIT_TIMEOUT_VARIABLE}={text!r} is not a number of seconds; using {_EXIT_TIMEOUT_S}")
        return _EXIT_TIMEOUT_S
    return seconds


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _exporter_kind(variable: str) -> str:
    value = os.environ.get(variable, "otlp").strip().lower() or "otlp"
    kinds = [kind.strip() for kind in value.split(",")]
    for kind in ("otlp", "console", "none"):
        if kind in kinds:
            return kind
    _warn_once(variable, value, f"claude_otel: {variable}={value!r} names no exporter claude_otel knows (otlp, console, none); using otlp")
    return "otlp"


def _protocol(signal_variable: str) -> str:
    """The OTLP protocol of a signal: its own variable, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else grpc, the default
    that a value claude_otel cannot use also falls back to."""
    variable = signal_variable if os.environ.get(signal_variable) else "OTEL_EXPORTER_OTLP_PROTOCOL"
    value = (os.environ.get(variable) or "grpc").strip().lower()
    if value not in _PROTOCOLS:
        _warn_once(variable, value, f"claude_otel: {variable}={value!r} is not an OTLP protocol (grpc, http/protobuf); using grpc")
        return "grpc"
    return value


_WARNED: set[tuple[str, str]] = set()
"""The (variable, value) pairs already warned about: the traces and the metrics read the same variables."""


def _warn_once(variable: str, value: str, message: str) -> None:
    if (variable, value) not in _WARNED:
        _WARNED.add((variable, value))
        warn(message)
