"""The boundary between claude_otel and the application: nothing claude_otel does may raise into it.

`never_raises` makes a function such a boundary: an `Exception` it raises is logged at debug level on the
`claude_otel` logger, with its traceback, and the function returns its default. A `BaseException` that is not an
`Exception` (`KeyboardInterrupt`, `SystemExit`, a task's `CancelledError`, `GeneratorExit`) is the application's or
the interpreter's, and goes through as it came.

The functions that run for every event or chunk of a stream keep their own `try` instead: a decorator's extra call
is paid each time.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

log = logging.getLogger("claude_otel")

P = ParamSpec("P")
R = TypeVar("R")
D = TypeVar("D")


def never_raises(what: str, default: D) -> Callable[[Callable[P, R]], Callable[P, R | D]]:
    """Decorates a function that must never raise: on an `Exception`, logs "claude_otel: could not {what}" at debug
    level and returns `default` (shared by every call: an immutable value, or `None`)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R | D]:
        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | D:
            try:
                return function(*args, **kwargs)
            except Exception:
                log.debug("claude_otel: could not %s", what, exc_info=True)
                return default

        return guarded

    return decorate
