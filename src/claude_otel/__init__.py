"""claude-otel: OpenTelemetry for the Anthropic Python SDK.

    import claude_otel
    claude_otel.instrument()

From then on every call the application makes through `anthropic` (sync or async, streamed or not, `beta`,
Bedrock and Vertex) is one CLIENT span named `chat {model}`, child of the application's current span.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from ._instrumentor import AnthropicInstrumentor
from .version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider

__all__ = ["AnthropicInstrumentor", "__version__", "instrument", "uninstrument"]


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    propagate: bool = True,
    rate_limit_headers: bool = True,
    request_log: bool = True,
) -> None:
    """Instruments the `anthropic` SDK. Idempotent: a second call changes nothing.

    A provider that is not given is the global one; when the application has set none, one is set up from the
    standard `OTEL_*` environment variables, exporting over OTLP (see `claude_otel._providers`).
    `propagate` sends the trace context with each request to the API (the SDK's own
    `ANTHROPIC_OPEN_TELEMETRY_PROPAGATION=false` or client option still turns it off for a client).
    `rate_limit_headers` records the `anthropic-ratelimit-*` response headers on each attempt span.
    `request_log` writes one JSON line per call to the `claude_otel` logger (INFO, WARNING for failures), and to
    the OpenTelemetry logs signal when a logger provider is given or configured globally.
    """
    from ._providers import default_meter_provider, default_tracer_provider

    AnthropicInstrumentor().instrument(
        tracer_provider=tracer_provider if tracer_provider is not None else default_tracer_provider(),
        meter_provider=meter_provider if meter_provider is not None else default_meter_provider(),
        logger_provider=logger_provider,
        propagate=propagate,
        rate_limit_headers=rate_limit_headers,
        request_log=request_log,
    )


def uninstrument() -> None:
    """Restores the `anthropic` SDK exactly as it was before `instrument()`."""
    AnthropicInstrumentor().uninstrument()
