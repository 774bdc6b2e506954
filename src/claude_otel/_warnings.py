"""How claude_otel tells a human about a setting to fix: a `ConfigurationWarning`, through Python's `warnings`.

The `claude_otel` logger has a `NullHandler` (Python's logging HOWTO, "Configuring Logging for a Library"), so what
it logs reaches only an application that collects logs. A setting that claude_otel cannot use (an environment
variable's value, a price file, an `instrument()` option ignored, an SDK it cannot hook) is something the
application's author must change, which the HOWTO gives to `warnings.warn`: Python prints each such warning once on
stderr, `logging.captureWarnings(True)` routes it to logging, and `-W error::claude_otel.ConfigurationWarning` makes
it fail a test run. What happens at run time (a model without a price, a callback that failed) is logged instead.
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType


class ConfigurationWarning(UserWarning):
    """A claude_otel setting that it cannot use as given; claude_otel goes on with the fallback the message names."""


ConfigurationWarning.__module__ = "claude_otel"  # Its public name, in tracebacks and `-W` filters.

_OWN_MODULES = ("claude_otel", "opentelemetry", "importlib")
"""Where a warning is not about: it points at the first frame outside these, the line that instrumented."""


def warn(message: str) -> None:
    """Issues `message` as a `ConfigurationWarning`, attributed to the application's line that led to it.
    Never raises unless the application turned the warning into an error (`-W error`), which is its to ask."""
    warnings.warn(message, ConfigurationWarning, stacklevel=_application_level())


def _application_level() -> int:
    """The `stacklevel` of the first frame, above `warn`, that is not in claude_otel, OpenTelemetry or importlib."""
    level = 2
    frame: FrameType | None = sys._getframe(level)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_OWN_MODULES):
        level, frame = level + 1, frame.f_back
    return level if frame is not None else 2
