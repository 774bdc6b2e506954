"""`AnthropicInstrumentor`: claude_otel as an OpenTelemetry instrumentor.

`opentelemetry-instrument` finds it under the `opentelemetry_instrumentor` entry point `claude_otel` (a name of
its own: other packages already claim `anthropic`, and share its `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` switch).
It uses the providers it is given, else the global ones. When there are none, as under `opentelemetry-instrument`
without `opentelemetry-distro` (which configures the SDK before instrumentors load), it sets them up from the
standard `OTEL_*` variables as `claude_otel.instrument()` does (`claude_otel._providers`): zero-code works from a
plain `pip install claude-otel`.

The one-line `claude_otel.instrument()` raises for a bad option, where the application's author sees it. The
instrumentor, which `opentelemetry-instrument` loads before the application runs, never lets a bad price file from
`CLAUDE_OTEL_PRICES` stop claude_otel: it warns and uses the bundled prices.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ._propagators import import_propagate

import_propagate()  # Before BaseInstrumentor, which imports it: a bad OTEL_PROPAGATORS must not fail our import.

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]  # noqa: E402

from ._options import Options  # noqa: E402
from ._warnings import warn  # noqa: E402

if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider

    from ._prices import PriceTable

log = logging.getLogger("claude_otel")

SUPPORTED_SDK = ("0.109.0", "3")
"""The `anthropic` versions claude_otel is tested with: from the first with a per-attempt hook, below 3."""

CHECKED = "_checked_options"
"""The keyword by which `claude_otel.instrument()` hands `_instrument` the `Options` and price table it has already
checked and loaded: `BaseInstrumentor.instrument` passes its keywords through, and nothing else."""


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces every Claude call made through the `anthropic` SDK: one CLIENT span per call.

    `instrument(**options)` takes the options of `claude_otel.instrument()`, the table of docs/usage.md ("Options"),
    and raises as it does, before anything is set up: `TypeError` for an unknown option or a wrong type,
    `ValueError` for a bad value, `PriceTableError` for a malformed `prices` file. A malformed `CLAUDE_OTEL_PRICES`
    file warns (`ConfigurationWarning`) and the bundled prices are used.
    """

    _hooks: Any = None
    _options: Options | None = None
    """The options in effect while instrumented, the providers as they resolved: for `Options.differences`."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return (f"anthropic >= {SUPPORTED_SDK[0]}",)

    def _instrument(self, **kwargs: Any) -> None:
        """Raises, before anything is set up, as `Options.from_kwargs` does."""
        from ._attribution import CardinalityGuard, ResultAttribution
        from ._batches import BatchRegistry
        from ._call import Settings
        from ._content import ContentCapture
        from ._metrics import Metrics
        from ._patches import Hooks
        from ._providers import default_meter_provider, default_tracer_provider
        from ._request_log import RequestLog

        checked: tuple[Options, PriceTable] | None = kwargs.get(CHECKED)
        options, prices = checked if checked is not None else Options.from_kwargs(kwargs, strict_price_env=False)
        tracer_provider = options.tracer_provider if options.tracer_provider is not None else default_tracer_provider()
        meter_provider = options.meter_provider if options.meter_provider is not None else default_meter_provider()
        logger_provider = _logger_provider(options.logger_provider)
        content = ContentCapture.configure(
            options.capture_content, options.max_content_bytes, options.content_hook, logger_provider
        )
        if not _sdk_has_hooks():
            return
        settings = Settings(
            rate_limit_headers=options.rate_limit_headers,
            request_log=RequestLog(options.request_log, logger_provider),
            metrics=Metrics(meter_provider, legacy=options.legacy_metrics) if options.metrics else None,
            prices=prices,
            guard=CardinalityGuard(options.max_attribute_values),
            batches=BatchRegistry(),
            batch_attribution=ResultAttribution(options.batch_attribution) if options.batch_attribution is not None else None,
            content=content,
        )
        hooks = Hooks(tracer_provider, propagate=options.propagate, settings=settings)
        hooks.apply()
        type(self)._hooks = hooks
        type(self)._options = replace(options, tracer_provider=tracer_provider, meter_provider=meter_provider)

    def _uninstrument(self, **kwargs: Any) -> None:
        hooks, type(self)._hooks = type(self)._hooks, None
        type(self)._options = None
        if hooks is not None:
            hooks.remove()


def _logger_provider(given: LoggerProvider | None) -> LoggerProvider | None:
    """The logger provider for the request log's OpenTelemetry records: the one given, else a configured global one."""
    if given is not None:
        return given
    from opentelemetry import _logs

    current = _logs.get_logger_provider()
    return None if type(current).__name__ in ("ProxyLoggerProvider", "NoOpLoggerProvider") else current


def _sdk_has_hooks() -> bool:
    """Whether the installed SDK has what claude_otel hooks into; warns when it has not, or is untested."""
    try:
        import anthropic
        from anthropic import _base_client, _streaming
    except Exception as err:  # noqa: BLE001  Not installed, or broken: the application fails on its own import, not on ours.
        log.warning("claude_otel: cannot import the anthropic SDK (%s); nothing is instrumented", err)
        return False
    version = getattr(anthropic, "__version__", "unknown")
    missing = [
        f"{owner.__name__}.{name}"
        for owner, name in (
            (_base_client.SyncAPIClient, "request"),
            (_base_client.AsyncAPIClient, "request"),
            (_base_client.SyncAPIClient, "_attempt_request"),
            (_base_client.AsyncAPIClient, "_attempt_request"),
            (_base_client.BaseClient, "_calculate_retry_timeout"),
            (_streaming.Stream, "__stream__"),
            (_streaming.AsyncStream, "__stream__"),
        )
        if name not in owner.__dict__
    ]
    if missing:
        warn(
            f"claude_otel: anthropic {version} lacks {', '.join(missing)}; claude_otel supports anthropic "
            f">= {SUPPORTED_SDK[0]}, < {SUPPORTED_SDK[1]}. Nothing is instrumented."
        )
        return False
    if _major(version) >= int(SUPPORTED_SDK[1]):
        warn(
            f"claude_otel: anthropic {version} is newer than the versions claude_otel is tested with "
            f"(< {SUPPORTED_SDK[1]}); instrumenting it all the same"
        )
    return True


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0
