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
from ._instrumentor import CHECKED, AnthropicInstrumentor
from ._options import Options
from ._prices import PriceTableError
from ._warnings import ConfigurationWarning, warn
from .version import __version__

# A library's logger has a NullHandler (Python's logging HOWTO, "Configuring Logging for a Library"): in an
# application that set up no logging, Python's last-resort handler would print claude_otel's WARNING records, the
# request log's line of every failed call, on stderr.
logging.getLogger("claude_otel").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider

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
    """Instruments the `anthropic` SDK: from then on every call is one CLIENT span, its metrics and its log record.

    Every option, its default and what it does: the table "Options" of docs/usage.md (the same text as the
    docstrings of `claude_otel._options.Options`). A provider that is not given is the global one; when the
    application has set none, one is set up from the standard `OTEL_*` environment variables. An option left at
    `None` that has an environment variable (`prices`, `capture_content`, `max_content_bytes`) is read from it; a bad
    value there warns (`ConfigurationWarning`) and is not used, except a malformed `CLAUDE_OTEL_PRICES` file, which
    raises `PriceTableError` as a `prices` file does.

    Raises, before anything is set up: `TypeError` when an option has the wrong type (`propagate=1`,
    `max_attribute_values="100"`, `content_hook="redact"`); `ValueError` when it has the right type but a bad value
    (`max_attribute_values=0`, `capture_content="ALL"`); `PriceTableError`, a `ValueError`, for a malformed price
    file. A second call changes nothing: it warns (`ConfigurationWarning`) when its options differ from those in
    effect, which `uninstrument()` and a new `instrument()` change.
    """
    # The parameters by name, before any other local is bound: they are the fields of `Options`, which
    # tests/test_instrumentor.py holds equal to this signature.
    options, prices_table = Options.from_kwargs(locals(), strict_price_env=True)
    instrumentor = AnthropicInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        ignored = options.differences(AnthropicInstrumentor._options)
        if ignored:
            warn(
                f"claude_otel: already instrumented; this instrument() call's {', '.join(ignored)} ignored. "
                "To change options, call claude_otel.uninstrument() first."
            )
        return
    instrumentor.instrument(**{CHECKED: (options, prices_table)})


def uninstrument() -> None:
    """Restores the `anthropic` SDK exactly as it was before `instrument()`."""
    AnthropicInstrumentor().uninstrument()
