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
from typing import Any

from ._propagators import import_propagate

import_propagate()  # Before BaseInstrumentor, which imports it: a bad OTEL_PROPAGATORS must not fail our import.

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]  # noqa: E402

from ._warnings import warn  # noqa: E402

log = logging.getLogger("claude_otel")

SUPPORTED_SDK = ("0.109.0", "3")
"""The `anthropic` versions claude_otel is tested with: from the first with a per-attempt hook, below 3."""

_OPTIONS = frozenset(
    {
        "tracer_provider",
        "meter_provider",
        "logger_provider",
        "propagate",
        "rate_limit_headers",
        "request_log",
        "metrics",
        "legacy_metrics",
        "prices",
        "max_attribute_values",
        "batch_attribution",
        "capture_content",
        "max_content_bytes",
        "content_hook",
    }
)


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces every Claude call made through the `anthropic` SDK: one CLIENT span per call.

    `instrument(tracer_provider=None, meter_provider=None, logger_provider=None, propagate=True,
    rate_limit_headers=True, request_log=True)`: `propagate` sends the trace context with each request to the API,
    unless the SDK's own option turns it off for a client; `rate_limit_headers` records the `anthropic-ratelimit-*`
    headers on attempt spans; `request_log` writes one record per call (`claude_otel._request_log`); `metrics`
    records the metrics of `claude_otel._metrics`, `legacy_metrics` also under the earlier conventions' names;
    `prices` is a price file over the bundled table (`claude_otel._prices`); `max_attribute_values` bounds the
    distinct values of each attribution key on metrics (`claude_otel._attribution`); `batch_attribution` attributes
    Message Batch results by batch id and `custom_id` (`claude_otel._batches`). `capture_content`,
    `max_content_bytes` and `content_hook` capture prompts and completions, opted in (`claude_otel._content`).
    """

    _hooks: Any = None
    _options: dict[str, Any] | None = None
    """The options in effect while instrumented, for `ignored_options`."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return (f"anthropic >= {SUPPORTED_SDK[0]}",)

    def _instrument(self, **kwargs: Any) -> None:
        from ._attribution import CardinalityGuard, ResultAttribution
        from ._batches import BatchRegistry
        from ._call import Settings
        from ._content import ContentCapture
        from ._metrics import Metrics
        from ._patches import Hooks
        from ._prices import PriceTable, PriceTableError
        from ._providers import default_meter_provider, default_tracer_provider
        from ._request_log import RequestLog

        try:
            prices = check_options(kwargs)
        except PriceTableError as err:
            if kwargs.get("prices") is not None:
                raise  # Given in code: the caller's to fix, and to see.
            warn(f"claude_otel: {err}; using the bundled prices")
            prices = PriceTable.load(environment=False)
        if kwargs.get("tracer_provider") is None:
            kwargs["tracer_provider"] = default_tracer_provider()
        if kwargs.get("meter_provider") is None:
            kwargs["meter_provider"] = default_meter_provider()
        max_values = kwargs.get("max_attribute_values", 100)
        batch_attribution = kwargs.get("batch_attribution")
        logger_provider = _logger_provider(kwargs.get("logger_provider"))
        content = ContentCapture.configure(
            kwargs.get("capture_content"), kwargs.get("max_content_bytes"), kwargs.get("content_hook"), logger_provider
        )
        if not _sdk_has_hooks():
            return
        settings = Settings(
            rate_limit_headers=bool(kwargs.get("rate_limit_headers", True)),
            request_log=RequestLog(bool(kwargs.get("request_log", True)), logger_provider),
            metrics=(
                Metrics(kwargs.get("meter_provider"), legacy=bool(kwargs.get("legacy_metrics", False)))
                if kwargs.get("metrics", True)
                else None
            ),
            prices=prices,
            guard=CardinalityGuard(max_values),
            batches=BatchRegistry(),
            batch_attribution=ResultAttribution(batch_attribution) if batch_attribution is not None else None,
            content=content,
        )
        hooks = Hooks(kwargs.get("tracer_provider"), propagate=bool(kwargs.get("propagate", True)), settings=settings)
        hooks.apply()
        type(self)._hooks = hooks
        type(self)._options = kwargs

    def _uninstrument(self, **kwargs: Any) -> None:
        hooks, type(self)._hooks = type(self)._hooks, None
        type(self)._options = None
        if hooks is not None:
            hooks.remove()


def check_options(options: dict[str, Any]) -> Any:
    """Checks the options of `instrument()` and returns the price table they give. Raises, before anything is set
    up: `TypeError` for an unknown option or a wrong type, `ValueError` for a bad value, `PriceTableError` for a
    malformed price file (here, never at call time)."""
    from ._content import check_options as check_content_options
    from ._prices import PriceTable

    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"claude_otel: unknown option(s) {sorted(unknown)}; known: {sorted(_OPTIONS)}")
    max_values = options.get("max_attribute_values", 100)
    if not isinstance(max_values, int) or isinstance(max_values, bool) or max_values < 1:
        raise ValueError(f"claude_otel: max_attribute_values must be a whole number >= 1, not {max_values!r}")
    batch_attribution = options.get("batch_attribution")
    if batch_attribution is not None and not callable(batch_attribution):
        raise TypeError(f"claude_otel: batch_attribution must be a function (batch_id, custom_id), not {batch_attribution!r}")
    check_content_options(options.get("capture_content"), options.get("max_content_bytes"), options.get("content_hook"))
    return PriceTable.load(options.get("prices"))


def ignored_options(options: dict[str, Any]) -> list[str]:
    """The options of a second `instrument()` that differ from those in effect, as `name=value (in effect: value)`.
    A provider left out (`None`, the global one) is never one of them: the one in effect is what it resolved to."""
    in_effect = AnthropicInstrumentor._options or {}
    return [
        f"{name}={value!r} (in effect: {in_effect.get(name)!r})"
        for name, value in options.items()
        if value is not in_effect.get(name) and value != in_effect.get(name)
        and not (name.endswith("_provider") and value is None)
    ]


def _logger_provider(given: Any) -> Any:
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
