"""The options of `claude_otel.instrument()` and `AnthropicInstrumentor().instrument(**options)`, in one place.

`Options` has one field per option, with its default; the docstring under each field is the text of its row in the
options table of docs/usage.md (tests/test_instrumentor.py holds the two equal, and `instrument()`'s signature equal
to the fields). `Options.from_kwargs` is the one place that checks them: a wrong type is a `TypeError`, a bad value
of the right type a `ValueError` (`PriceTableError`, a `ValueError`, for a malformed price file), raised before
anything is set up. An option left at `None` that has an environment variable is read from it later, where it is
used (`claude_otel._content`, `claude_otel._prices`): a bad environment value warns and falls back, never raises,
except `CLAUDE_OTEL_PRICES` under `instrument()`, which raises like a `prices` given in code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from ._content import MODES
from ._prices import PriceTable, PriceTableError
from ._warnings import warn

if TYPE_CHECKING:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace
    from opentelemetry._logs import LoggerProvider


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The options in effect, checked: made by `from_kwargs`. Each field's docstring is its row of the docs' table."""

    tracer_provider: trace.TracerProvider | None = None
    """The tracer provider of the spans. `None`: the global one; when the application has set none, one is set up
    from the standard `OTEL_*` variables, exporting over OTLP."""

    meter_provider: otel_metrics.MeterProvider | None = None
    """The meter provider of the metrics. `None`: as for `tracer_provider`."""

    logger_provider: LoggerProvider | None = None
    """The logger provider of the request log's OpenTelemetry records and of content events. `None`: the global one
    if the application configured one; none is set up."""

    propagate: bool = True
    """Send the trace context with each request to the API (`traceparent`; baggage, without claude_otel's
    attribution). The SDK's own `ANTHROPIC_OPEN_TELEMETRY_PROPAGATION=false`, or a client whose SDK tracing is off,
    still turns it off for that client."""

    rate_limit_headers: bool = True
    """Record the `anthropic-ratelimit-*` response headers on each attempt span."""

    request_log: bool = True
    """Write one JSON line per call to the `claude_otel` logger (INFO, WARNING for a failure), and to the
    OpenTelemetry logs signal when there is a logger provider."""

    metrics: bool = True
    """Record the GenAI client metrics, the cost and the reliability counters."""

    legacy_metrics: bool = False
    """Also emit `gen_ai.client.operation.duration` and `gen_ai.client.token.usage`, for dashboards that expect
    those names."""

    prices: str | os.PathLike[str] | None = None
    """A JSON price file whose rows extend the bundled table, each merged onto the bundled row of its model unless it
    says `"replace": true`. `None`: `CLAUDE_OTEL_PRICES`, else the bundled table alone. A malformed file raises
    `PriceTableError` when `instrument()` is called, never at call time."""

    max_attribute_values: int = 100
    """The most distinct values of each attribution key on metrics (`claude_otel.attributes`); further values are
    recorded as `_other`."""

    batch_attribution: Callable[[str, str], Mapping[str, str | int | float | bool] | None] | None = None
    """`batch_attribution(batch_id, custom_id)` gives the attribution of a Message Batch result read in a process
    that did not create the batch (from a `custom_id` prefix, say): a mapping like the arguments of `attributes`, or
    `None`."""

    capture_content: str | None = None
    """Record prompts and completions: `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY` or `SPAN_AND_EVENT`
    (case-insensitive). `None`: `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, else the SDK's own content
    mode of each client, else nothing."""

    max_content_bytes: int | None = None
    """The most bytes of UTF-8 JSON that the content of one call is kept within. `None`:
    `CLAUDE_OTEL_MAX_CONTENT_BYTES`, else 750000 (for a client in the SDK's own content mode, its own limit)."""

    content_hook: Callable[[dict[str, Any]], Any] | None = None
    """`content_hook(content)` returns what to record of a call's content, to redact it, or `None` for nothing."""

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], *, strict_price_env: bool) -> tuple[Options, PriceTable]:
        """The options `kwargs` give (an option left out has its default), checked, and the price table they give,
        loaded here once.

        Raises `TypeError` for an unknown option or a value of the wrong type, `ValueError` for a value of the right
        type that is not valid, and `PriceTableError` for a malformed `prices` file. A malformed `CLAUDE_OTEL_PRICES`
        file raises `PriceTableError` when `strict_price_env` is true; when false it warns (`ConfigurationWarning`)
        and the bundled prices are used, so that `opentelemetry-instrument` never fails on it.
        """
        unknown = set(kwargs) - set(NAMES)
        if unknown:
            raise TypeError(f"claude_otel: unknown option(s) {sorted(unknown)}; known: {sorted(NAMES)}")
        for name, value in kwargs.items():
            _check(name, value)
        options = cls(**kwargs)
        try:
            prices = PriceTable.load(options.prices)
        except PriceTableError as err:
            if options.prices is not None or strict_price_env:
                raise
            warn(f"claude_otel: {err}; using the bundled prices")
            prices = PriceTable.load(environment=False)
        return options, prices

    def differences(self, in_effect: Options | None) -> list[str]:
        """The options of `self` that differ from those `in_effect`, as `name=value (in effect: value)`. A provider
        left out (`None`, the global one) is never one of them: the one in effect is what it resolved to.
        `in_effect` is `None` when instrumenting hooked nothing (an SDK claude_otel cannot hook): every option that
        is not `None` differs then."""
        changed = []
        for name in NAMES:
            value = getattr(self, name)
            current = getattr(in_effect, name) if in_effect is not None else None
            if value is not current and value != current and not (name.endswith("_provider") and value is None):
                changed.append(f"{name}={value!r} (in effect: {current!r})")
        return changed


NAMES: tuple[str, ...] = tuple(option.name for option in fields(Options))
"""The names of the options, in the order of `instrument()`'s signature."""

_DEFAULTS = {option.name: option.default for option in fields(Options)}

# A provider is whatever has the method OpenTelemetry calls on it, not only a subclass of the API's class: a
# provider of another SDK, or a test's stand-in, is one too.
_PROVIDER_METHODS = {"tracer_provider": "get_tracer", "meter_provider": "get_meter", "logger_provider": "get_logger"}


def _check(name: str, value: object) -> None:
    """Raises `TypeError` when `value` is not of the type of option `name`, `ValueError` when it is but is not
    valid."""
    if value is None and _DEFAULTS[name] is None:
        return
    if name in _PROVIDER_METHODS:
        method = _PROVIDER_METHODS[name]
        if not callable(getattr(value, method, None)):
            raise TypeError(f"claude_otel: {name} must be a provider (with {method}()), not {value!r}")
    elif name in ("propagate", "rate_limit_headers", "request_log", "metrics", "legacy_metrics"):
        if not isinstance(value, bool):
            raise TypeError(f"claude_otel: {name} must be True or False, not {value!r}")
    elif name == "prices":
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"claude_otel: prices must be the path of a price file (str or os.PathLike), not {value!r}")
    elif name in ("max_attribute_values", "max_content_bytes"):
        if not isinstance(value, int) or isinstance(value, bool):  # A bool is an int to Python, but no count.
            raise TypeError(f"claude_otel: {name} must be a whole number >= 1, not {value!r}")
        if value < 1:
            raise ValueError(f"claude_otel: {name} must be a whole number >= 1, not {value!r}")
    elif name in ("batch_attribution", "content_hook"):
        if not callable(value):
            arguments = "(batch_id, custom_id)" if name == "batch_attribution" else "(content)"
            raise TypeError(f"claude_otel: {name} must be a function {arguments}, not {value!r}")
    elif name == "capture_content":
        if not isinstance(value, str):
            raise TypeError(f"claude_otel: capture_content must be one of {', '.join(MODES)}, not {value!r}")
        if value.strip().upper() not in MODES:
            raise ValueError(f"claude_otel: capture_content must be one of {', '.join(MODES)}, not {value!r}")
