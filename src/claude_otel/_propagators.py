"""Importing `opentelemetry.propagate` without letting a misspelled `OTEL_PROPAGATORS` raise into the application.

`opentelemetry.propagate` reads `OTEL_PROPAGATORS` when it is first imported and raises `ValueError` for a name no
installed package provides. `BaseInstrumentor`, which `AnthropicInstrumentor` subclasses, imports it at import
time, so `import claude_otel` would fail in an application whose variable has a typo. `import_propagate()` imports it
first: on that error it warns (`ConfigurationWarning`, naming what is missing) and imports it again with only the
propagators that are installed, `OTEL_PROPAGATORS` restored afterwards. Other code importing it later gets that
module. Anything else (no error, or a propagator that fails to load) is left exactly as OpenTelemetry has it.
"""

from __future__ import annotations

import logging
import os
import sys

from ._warnings import warn

log = logging.getLogger("claude_otel")

_VARIABLE = "OTEL_PROPAGATORS"


def import_propagate() -> None:
    """Imports `opentelemetry.propagate` (see the module's docstring). Never raises."""
    if "opentelemetry.propagate" in sys.modules:
        return
    try:
        import opentelemetry.propagate  # noqa: F401
    except ValueError as err:
        _import_installed_only(err)
    except Exception:  # A propagator that fails as it loads: OpenTelemetry's own error, at the application's import.
        log.debug("claude_otel: could not import opentelemetry.propagate", exc_info=True)


def _import_installed_only(err: ValueError) -> None:
    from importlib.metadata import entry_points

    configured = os.environ.get(_VARIABLE, "")
    installed = {entry.name for entry in entry_points(group="opentelemetry_propagator")}
    names = [name.strip() for name in configured.split(",") if name.strip()]
    kept = [name for name in names if name in installed]
    missing = [name for name in names if name not in installed]
    warn(
        f"claude_otel: {_VARIABLE}={configured!r} names propagators that are not installed ({', '.join(missing)}): "
        f"{err} Trace context is propagated with {', '.join(kept) or 'none'} until it is fixed."
    )
    try:
        os.environ[_VARIABLE] = ",".join(kept) or "none"
        import opentelemetry.propagate  # noqa: F401
    except Exception:
        log.debug("claude_otel: could not import opentelemetry.propagate with the installed propagators", exc_info=True)
    finally:
        os.environ[_VARIABLE] = configured
