"""Attribution: which feature, tenant, ... of the application a call served, for cost and latency per feature.

`claude_otel.attributes(feature="search", tenant="acme")` puts the values in the OpenTelemetry context as baggage
(`claude_otel.feature=search`, ...). So they reach every call inside the block, in threads that copy the context and
in asyncio tasks; they travel to downstream services with the W3C baggage header (the application's own
propagation), where the claude_otel of that service picks them up too. They are never sent to the Anthropic API
(`without_attribution`). Each call span gets them (`claude_otel.feature`, ...) and so does every metric point.

Metrics aggregate by attribute values, so a mistake (a user id as the feature) could explode a metrics backend:
the guard keeps at most `max_values` distinct values per key on metrics, records the others as `_other`, and warns
once per key. Spans keep the real value.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import baggage, context

from . import _semconv as sc

log = logging.getLogger("claude_otel")

PREFIX = sc.ATTRIBUTION_PREFIX
OTHER = "_other"
_KEY = re.compile(r"[a-z][a-z0-9_]*")

F = TypeVar("F", bound=Callable[..., Any])


class attributes:
    """Attributes every Claude call inside the block (or the decorated function, sync or async) with the values.

    Keys are lowercase identifiers (`feature`, `tenant`, `team`, ...); values are strings, or numbers and booleans,
    which are recorded as strings. Blocks nest: an inner value replaces an outer one for its key.
    """

    def __init__(self, **values: str | float | bool) -> None:
        for key, value in values.items():
            if not _KEY.fullmatch(key):
                raise ValueError(f"claude_otel.attributes: {key!r} is not a lowercase identifier")
            if not isinstance(value, (str, int, float, bool)):
                raise TypeError(f"claude_otel.attributes: {key}={value!r} must be a string, number or boolean")
        self._values = {PREFIX + key: str(value) for key, value in values.items()}
        self._tokens: list[object] = []

    def __enter__(self) -> attributes:
        ctx = context.get_current()
        for key, value in self._values.items():
            ctx = baggage.set_baggage(key, value, ctx)
        self._tokens.append(context.attach(ctx))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def __call__(self, function: F) -> F:
        values = {key.removeprefix(PREFIX): value for key, value in self._values.items()}
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with attributes(**values):
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with attributes(**values):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]


def current() -> dict[str, str]:
    """The attribution in the current context: the `claude_otel.<identifier>` baggage entries. Never raises.

    Baggage can come from other services, so other `claude_otel.` entries (`claude_otel.cost.unpriced`, ...) are
    left out: they would pose as, and collide with, the attributes claude_otel sets itself.
    """
    try:
        entries = baggage.get_all()
        if not entries:
            return {}
        return {
            key: str(value)
            for key, value in entries.items()
            if key.startswith(PREFIX) and _KEY.fullmatch(key[_PREFIX_LENGTH:])
        }
    except Exception:
        log.debug("claude_otel: could not read the attribution baggage", exc_info=True)
        return {}


_PREFIX_LENGTH = len(PREFIX)


def without_attribution(parent: context.Context | None = None) -> context.Context | None:
    """`parent` (default: the current context) without claude_otel's baggage entries, for the trace context sent to
    the Anthropic API: the application's feature and tenant names are often its customers' identifiers, and the API
    needs only `traceparent`. `None` when there are none to remove (inject the current context as it is)."""
    entries = baggage.get_all(parent)
    ours = [key for key in entries if key.startswith(PREFIX)]
    if not ours:
        return None
    stripped = parent if parent is not None else context.get_current()
    for key in ours:
        stripped = baggage.remove_baggage(key, stripped)
    return stripped


class CardinalityGuard:
    """Keeps at most `max_values` distinct values per attribution key on metrics; the rest become `_other`."""

    def __init__(self, max_values: int) -> None:
        self._max = max_values
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def guard(self, values: dict[str, str]) -> dict[str, str]:
        guarded = {}
        for key, value in values.items():
            seen = self._seen.get(key)
            if seen is not None and value in seen:
                guarded[key] = value
                continue
            with self._lock:
                seen = self._seen.setdefault(key, set())
                if len(seen) < self._max:
                    seen.add(value)
                    guarded[key] = value
                    continue
                if len(seen) == self._max:
                    seen.add(OTHER)  # Marks the warning as given.
                    log.warning(
                        "claude_otel: %s has more than %d distinct values; further ones are recorded as %r on metrics "
                        "(spans keep them). Attribute a bounded set (features, tenants), or raise max_attribute_values.",
                        key,
                        self._max,
                        OTHER,
                    )
                guarded[key] = OTHER
        return guarded


class ResultAttribution:
    """The application's `batch_attribution(batch_id, custom_id)` callback, made safe to call for every result.

    Returns the attribution as `claude_otel.<key>` entries, like `attributes`; the callback may return `None` for
    none. Never raises: a callback that raises or returns something else than a mapping of lowercase identifiers to
    strings, numbers or booleans gives no attribution for that result, with one warning for the first such result.
    """

    def __init__(self, callback: Callable[[str, str], Any]) -> None:
        self._callback = callback
        self._warned = False

    def __call__(self, batch_id: str, custom_id: str) -> dict[str, str]:
        try:
            given = self._callback(batch_id, custom_id)
            if given is None:
                return {}
            values = {}
            for key, value in given.items():
                if not isinstance(key, str) or not _KEY.fullmatch(key) or not isinstance(value, (str, int, float, bool)):
                    raise ValueError(f"{key!r}: {value!r} is not a lowercase identifier with a string, number or boolean")
                values[PREFIX + key] = str(value)
            return values
        except Exception as err:  # noqa: BLE001  The application's function: its failure is a warning, once.
            if not self._warned:
                self._warned = True
                log.warning("claude_otel: batch_attribution(%r, %r) failed (%s); such results get no attribution from it", batch_id, custom_id, err)
            return {}
