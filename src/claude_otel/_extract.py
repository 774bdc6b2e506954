"""Reading telemetry off the SDK's requests and responses.

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

from . import _semconv as sc


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


def chat_request_attributes(body: object, stream: bool) -> dict[str, AttributeValue]:
    """The attributes of a `messages.create` request body that a chat span starts with. Never raises."""
    attributes: dict[str, AttributeValue] = {}
    if not isinstance(body, dict):
        return attributes
    for key, attribute, convert in _REQUEST_FIELDS:
        value = body.get(key)
        if value is not None:
            _put(attributes, attribute, convert(value))
    if stream:
        attributes[sc.GEN_AI_REQUEST_STREAM] = True
    # `or None`: the SDK's body holds its falsy `Omit` / `NotGiven` for a parameter not given (SDK 2.x: most of them).
    output_config = body.get("output_config") or None
    thinking = body.get("thinking") or None
    output_format = body.get("output_format") or None
    if output_config is None and thinking is None and output_format is None:
        return attributes
    _put(attributes, sc.GEN_AI_REQUEST_REASONING_LEVEL, as_str(field(output_config, "effort")))
    if thinking is not None:
        _put(attributes, sc.ANTHROPIC_THINKING_TYPE, as_str(field(thinking, "type")))
        _put(attributes, sc.ANTHROPIC_THINKING_BUDGET_TOKENS, as_int(field(thinking, "budget_tokens")))
    # `output_format` is the deprecated form of `output_config.format`.
    for schema in (field(output_config, "format"), output_format):
        if field(schema, "type") == "json_schema":
            attributes[sc.GEN_AI_OUTPUT_TYPE] = "json"
    return attributes


_REQUEST_FIELDS = (
    ("model", sc.GEN_AI_REQUEST_MODEL, as_str),
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, as_int),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, as_float),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, as_float),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K, as_int),
    ("stop_sequences", sc.GEN_AI_REQUEST_STOP_SEQUENCES, as_str_list),
    ("service_tier", sc.ANTHROPIC_REQUEST_SERVICE_TIER, as_str),
)
"""The top-level request fields that are attributes as they are: field, attribute, conversion."""


def beta_header(*layers: object) -> list[str] | None:
    """The `anthropic-beta` header that the last of `layers` (header mappings) to set it gives, split at commas."""
    value: str | None = None
    for layer in layers:
        if isinstance(layer, Mapping):
            for key, header in layer.items():
                # The length first: it rules out nearly every header at once.
                if isinstance(key, str) and len(key) == 14 and key.lower() == "anthropic-beta":
                    value = header if isinstance(header, str) else None
    parts = [part.strip() for part in (value or "").split(",") if part.strip()]
    return parts or None


def _put(attributes: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
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
