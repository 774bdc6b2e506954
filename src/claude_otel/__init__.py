"""claude-otel: OpenTelemetry for the Anthropic Python SDK.

    import claude_otel
    claude_otel.instrument()

From then on every call the application makes through `anthropic` (sync or async, streamed or not, `beta`,
Bedrock and Vertex) is one CLIENT span named `chat {model}`, child of the application's current span.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace

from ._attribution import attributes
from ._instrumentor import AnthropicInstrumentor
from ._prices import PriceTableError
from ._warnings import ConfigurationWarning, warn
from .version import __version__

# A library's logger has a NullHandler (Python's logging HOWTO, "Configuring Logging for a Library"): in an
# application that set up no logging, Python's last-resort handler would print claude_otel's WARNING records, the
# request log's line of every failed call, on stderr.
logging.getLogger("claude_otel").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider

__all__ = ["AnthropicInstrumentor", "ConfigurationWarning", "PriceTableError", "__version__", "attributes", "instrument", "uninstrument"]


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: otel_metrics.MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
    propagate: bool = True,
    rate_limit_headers: bool = True,
    request_log: bool = True,
    metrics: bool = True,
    legacy_metrics: bool = False,
    prices: str | os.PathLike[str] | None = None,
    max_attribute_values: int = 100,
    batch_attribution: Callable[[str, str], Mapping[str, str | int | float | bool] | None] | None = None,
    capture_content: str | None = None,
    max_content_bytes: int | None = None,
    content_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> None:
    """Instruments the `anthropic` SDK. A second call changes nothing; it warns (`ConfigurationWarning`) when its
    options differ from those in effect, which `uninstrument()` and a new `instrument()` change.

    A provider that is not given is the global one; when the application has set none, one is set up from the
    standard `OTEL_*` environment variables, exporting over OTLP (see `claude_otel._providers`).
    `propagate` sends the trace context with each request to the API, without claude_otel's attribution baggage
    (the SDK's own `ANTHROPIC_OPEN_TELEMETRY_PROPAGATION=false`, or a client whose SDK tracing is off, still turns it
    off for a client).
    `rate_limit_headers` records the `anthropic-ratelimit-*` response headers on each attempt span.
    `request_log` writes one JSON line per call to the `claude_otel` logger (INFO, WARNING for failures), and to
    the OpenTelemetry logs signal when a logger provider is given or configured globally.
    `metrics` records the GenAI client metrics, cost and reliability counters; `legacy_metrics` also emits
    `gen_ai.client.operation.duration` and `gen_ai.client.token.usage` for dashboards that expect those names.
    `prices` is a JSON price file (also `CLAUDE_OTEL_PRICES`) whose rows extend the bundled table, each merged onto
    the bundled row of its model unless it says `"replace": true`; a malformed one raises `PriceTableError` here. `max_attribute_values` bounds the distinct values per attribution
    key on metrics (see `attributes`). `batch_attribution(batch_id, custom_id)` gives the attribution of a Message
    Batch result read in a process that did not create the batch (e.g. from a `custom_id` prefix), as a mapping
    like the arguments of `attributes`, or `None`.
    `capture_content` records prompts and completions: `NO_CONTENT` (the default), `SPAN_ONLY`, `EVENT_ONLY` or
    `SPAN_AND_EVENT`, over `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`; `max_content_bytes` bounds the
    content of a call (default 750000, or `CLAUDE_OTEL_MAX_CONTENT_BYTES`); `content_hook(content)` returns what to
    record of it, to redact, or `None` for nothing (see `claude_otel._content`).
    """
    from ._instrumentor import check_options, ignored_options

    options = {
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "logger_provider": logger_provider,
        "propagate": propagate,
        "rate_limit_headers": rate_limit_headers,
        "request_log": request_log,
        "metrics": metrics,
        "legacy_metrics": legacy_metrics,
        "prices": prices,
        "max_attribute_values": max_attribute_values,
        "batch_attribution": batch_attribution,
        "capture_content": capture_content,
        "max_content_bytes": max_content_bytes,
        "content_hook": content_hook,
    }
    check_options(options)  # Bad options raise before any provider is set up.
    instrumentor = AnthropicInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        ignored = ignored_options(options)
        if ignored:
            warn(
                f"claude_otel: already instrumented; this instrument() call's {', '.join(ignored)} ignored. "
                "To change options, call claude_otel.uninstrument() first."
            )
        return
    instrumentor.instrument(**options)


def uninstrument() -> None:
    """Restores the `anthropic` SDK exactly as it was before `instrument()`."""
    AnthropicInstrumentor().uninstrument()
