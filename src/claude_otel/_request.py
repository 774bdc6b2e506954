"""The attributes a call span starts with, read off the request the SDK is about to send.

`chat_request_attributes` reads a `messages.create` body through `REQUEST_FIELDS`, the table of the top-level
fields that are attributes as they are, and the nested fields (thinking, effort, output format) after it;
`beta_header` reads the `anthropic-beta` header the client and the request set. Neither raises.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from ._extract import as_float, as_int, as_str, as_str_list, field, put


def chat_request_attributes(body: object, stream: bool) -> dict[str, AttributeValue]:
    """The attributes of a `messages.create` request body that a chat span starts with. Never raises."""
    attributes: dict[str, AttributeValue] = {}
    if not isinstance(body, dict):
        return attributes
    for key, attribute, convert in REQUEST_FIELDS:
        value = body.get(key)
        if value is not None:
            put(attributes, attribute, convert(value))
    if stream:
        attributes[sc.GEN_AI_REQUEST_STREAM] = True
    # `or None`: the SDK's body holds its falsy `Omit` / `NotGiven` for a parameter not given (SDK 2.x: most of them).
    output_config = body.get("output_config") or None
    thinking = body.get("thinking") or None
    output_format = body.get("output_format") or None
    if output_config is None and thinking is None and output_format is None:
        return attributes
    put(attributes, sc.GEN_AI_REQUEST_REASONING_LEVEL, as_str(field(output_config, "effort")))
    if thinking is not None:
        put(attributes, sc.ANTHROPIC_THINKING_TYPE, as_str(field(thinking, "type")))
        put(attributes, sc.ANTHROPIC_THINKING_BUDGET_TOKENS, as_int(field(thinking, "budget_tokens")))
    # `output_format` is the deprecated form of `output_config.format`.
    for schema in (field(output_config, "format"), output_format):
        if field(schema, "type") == "json_schema":
            attributes[sc.GEN_AI_OUTPUT_TYPE] = "json"
    return attributes


REQUEST_FIELDS = (
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
