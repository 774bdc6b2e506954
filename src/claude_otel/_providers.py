"""The telemetry pipeline that `claude_otel.instrument()` sets up when the application has none.

Standard OpenTelemetry environment variables decide it, as they would for `opentelemetry-instrument`:
`OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`
(`otlp`, the default, `console` or `none`), `OTEL_EXPORTER_OTLP_PROTOCOL` and its per-signal forms (`grpc`, the
default, or `http/protobuf`), and what the OTLP exporters read themselves (`OTEL_EXPORTER_OTLP_ENDPOINT`, headers,
timeouts, ...). Spans leave through a `BatchSpanProcessor` and metrics through a periodic reader, both on threads of
their own: an unreachable collector costs the application's calls nothing.

At exit, the providers set up here flush and shut down side by side, and the process waits for them at most the
exporter timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`, seconds, 10 by default): the SDK's own exit handlers shut them down
one after the other, each waiting out an in-flight export and a final one, so an unreachable collector would hold
the exit for several timeouts.

A provider that the application has set globally, or passes to `instrument()`, is used as it is and never changed.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

from opentelemetry import metrics, trace

log = logging.getLogger("claude_otel")

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
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
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


def _shut_down() -> None:
    """Shuts the providers down side by side, waiting for them no longer than the exporter timeout."""
    try:
        timeout = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT") or 10)
    except ValueError:
        timeout = 10.0
    threads = [threading.Thread(target=provider.shutdown, daemon=True) for provider in _AT_EXIT]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        # Daemon threads: one still exporting when the time is up does not keep the process alive.
        thread.join(max(0.0, deadline - time.monotonic()))


def _sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _exporter_kind(variable: str) -> str:
    value = os.environ.get(variable, "otlp").strip().lower() or "otlp"
    kinds = [kind.strip() for kind in value.split(",")]
    for kind in ("otlp", "console", "none"):
        if kind in kinds:
            return kind
    log.warning("claude_otel: %s=%r names no exporter claude_otel knows (otlp, console, none); using otlp", variable, value)
    return "otlp"


def _protocol(signal_variable: str) -> str:
    value = os.environ.get(signal_variable) or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    value = value.strip().lower()
    if value not in _PROTOCOLS:
        log.warning(
            "claude_otel: OTLP protocol %r is not supported (grpc, http/protobuf); using http/protobuf", value
        )
        return "http/protobuf"
    return value
