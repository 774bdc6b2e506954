"""Reading values off what the SDK has, for the readers of requests (`claude_otel._request`) and responses
(`claude_otel._response`, `claude_otel._batches`).

Each function here takes what the SDK has (a request body as a dict, a response as a pydantic model or as decoded
JSON, SSE events as models) and returns plain values. None of them trusts a type: a field that is missing or of
another type yields nothing rather than a wrong value or an exception, because the SDK does not validate responses
unless the client asks it to, and because the Messages API adds fields and events over time.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from opentelemetry.util.types import AttributeValue


def field(value: object, key: str) -> Any:
    """`value[key]` for a dict, the field `key` of a model, and `None` when there is no such entry (see `fields_of`)."""
    return fields_of(value).get(key)


def fields_of(value: object) -> Mapping[str, Any]:
    """The entries of a dict, or the fields of a model, as one mapping to read them from; empty for anything else.
    Read only: it can be the model's own `__dict__`.

    A model's fields are its `__dict__` and, for fields the SDK's types do not declare (a newer API's), pydantic's
    extras: `getattr` would go through pydantic's `__getattr__`, which raises and catches an `AttributeError` for
    every missing field, at a cost paid on every call.
    """
    if value is None:  # The usual absent field: a lookup on `None` would go through an AttributeError.
        return _EMPTY
    if isinstance(value, dict):
        return value
    fields = getattr(value, "__dict__", None)
    if not isinstance(fields, dict):
        return _EMPTY
    extra = getattr(value, "__pydantic_extra__", None)
    return {**extra, **fields} if isinstance(extra, dict) and extra else fields


_EMPTY: Mapping[str, Any] = {}


def as_int(value: object) -> int | None:
    """`value` when it can be a count (every whole number claude_otel reads is one: tokens, `max_tokens`, `top_k`).

    `bool` is an `int` too, and a count is never one. Nor is it negative, which metric counters refuse, or beyond
    2**53, past which sums of counts overflow OTLP's int64 and JSON readers lose digits.
    """
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_COUNT else None


_MAX_COUNT = 2**53


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def as_str_list(value: object) -> list[str] | None:
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def put(attributes: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    """Sets the attribute `key` to `value`, unless `value` is `None` (nothing was read)."""
    if value is not None:
        attributes[key] = value


def timestamp(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 string (decoded JSON, a header) or a `datetime` (the SDK's model);
    `None` for anything else. Never raises."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))  # "Z": Python < 3.11 needs it spelled
        except ValueError:
            return None
    return value.timestamp() if isinstance(value, datetime.datetime) else None
