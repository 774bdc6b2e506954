"""Drift between the API's names that claude_otel knows and the ones the installed SDK declares (#19).

claude_otel reads the Messages API by name: the stop reasons it knows (`_response.STOP_REASONS`) and their GenAI finish
reasons (`_semconv.FINISH_REASONS`), the usage fields a call keeps (`_response.USAGE_FIELDS`) and those the cost reads
(`_prices`), the stream events `MessageReader.event` reads or passes over (`_response.OTHER_EVENTS`), the content
blocks that are tool calls (`_response.TOOL_BLOCKS`) and the deltas that content capture reads
(`_content._DELTA_FIELDS`). When the API
adds a name, the SDK's types declare it first, and nothing in claude_otel fails: a new stop reason is recorded raw, a
new usage field is dropped, a new billed line costs nothing. So each test here reads a vocabulary from the installed
SDK's types (the `Literal`s and model fields, never a copy of them) and fails when the SDK declares a name claude_otel
does not know, naming it and where to add it: a human decides what it means for spans, metrics and cost.

Only that direction fails. claude_otel supports SDK lines 0.109 to 2.14, so it knows names an older SDK does not
declare yet. A name claude_otel knows and deliberately does not read is listed below with why, so nothing is silent.
A type an older SDK does not have skips its check for that SDK only.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import json
import logging
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import pytest
import typing_extensions
from conftest import MODEL, Spans, scenario

from claude_otel import _content, _prices, _response
from claude_otel import _semconv as sc
from claude_otel._call import Request
from claude_otel._response import STOP_REASONS, TOOL_BLOCKS, USAGE_FIELDS, MessageReader
from claude_otel.testing import Simulator

SDK = f"anthropic {anthropic.__version__}"

# --- reading the installed SDK's types --------------------------------------------------------------------------------


class Missing(Exception):
    """The installed SDK does not declare what a path names: its check is skipped for this SDK only."""


_LITERALS = {typing.Literal, typing_extensions.Literal}
_ANNOTATED = {typing.Annotated, typing_extensions.Annotated}
_UNIONS: set[object] = {typing.Union, types.UnionType}
# Containers whose items are what a field declares: `content: List[ContentBlock]`, `iterations: List[...]`.
_CONTAINERS: set[object] = {list, tuple, collections.abc.Sequence, collections.abc.Iterable}


def leaves(annotation: object) -> Iterator[object]:
    """The alternatives of `annotation`: through `Annotated` (the SDK's discriminated unions), unions and `Optional`
    (without `None`), type aliases (`type X = ...`) and lists, down to the `Literal`s and models."""
    value = getattr(annotation, "__value__", None)  # A PEP 695 `TypeAliasType`.
    if value is not None and not isinstance(annotation, type):
        yield from leaves(value)
        return
    origin = typing.get_origin(annotation)
    if origin in _ANNOTATED:
        yield from leaves(typing.get_args(annotation)[0])
    elif origin in _UNIONS or origin in _CONTAINERS:
        for argument in typing.get_args(annotation):
            yield from leaves(argument)
    elif annotation is not type(None):
        yield annotation


def literal_values(annotation: object) -> set[str]:
    """The strings of the `Literal`s in `annotation` (a stop reason, a `type`, a service tier)."""
    values: set[str] = set()
    for leaf in leaves(annotation):
        if typing.get_origin(leaf) in _LITERALS:
            for argument in typing.get_args(leaf):
                values |= {argument} if isinstance(argument, str) else literal_values(argument)
    return values


def model_fields(model: type) -> Mapping[str, Any]:
    """The fields of an SDK model under pydantic v2 (`model_fields`) or v1 (`__fields__`), which the SDK supports."""
    fields = getattr(model, "model_fields", None)
    if not isinstance(fields, Mapping):
        fields = getattr(model, "__fields__", None)
    if not isinstance(fields, Mapping):
        raise TypeError(f"{model!r} is not a pydantic model")
    return fields


def field_annotation(model: type, name: str) -> object:
    info = model_fields(model)[name]
    # pydantic v2's `FieldInfo.annotation`; v1's `ModelField.annotation` (1.10) or `outer_type_` (without Optional).
    annotation = getattr(info, "annotation", None)
    return annotation if annotation is not None else info.outer_type_


def models(annotation: object) -> list[type]:
    """The models among the alternatives of `annotation`."""
    # `model_fields` first: pydantic v2 warns that `__fields__` is deprecated.
    return [
        leaf
        for leaf in leaves(annotation)
        if isinstance(leaf, type) and (hasattr(leaf, "model_fields") or hasattr(leaf, "__fields__"))
    ]


def annotation_at(path: str) -> object:
    """What the SDK declares at `path`, `module:Name.field.field`: `anthropic.types:Message.stop_reason` is the
    annotation of that field, `anthropic.types:RawMessageStreamEvent` the alias itself. Raises `Missing`."""
    module_name, _, dotted = path.partition(":")
    name, *steps = dotted.split(".")
    try:
        annotation: object = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise Missing(f"{SDK} has no {module_name}.{name}") from None
    for step in steps:
        owners = [model for model in models(annotation) if step in model_fields(model)]
        if not owners:
            raise Missing(f"{SDK} declares no field {step!r} in {path}")
        annotation = field_annotation(owners[0], step)
    return annotation


def declared_literals(path: str) -> set[str]:
    return literal_values(annotation_at(path))


def declared_literals_of(model: type) -> set[str]:
    """The `type` literal of one model of a union."""
    return literal_values(field_annotation(model, "type"))


def declared_types(path: str) -> set[str]:
    """The `type` literals of the models a union at `path` is made of (events, content blocks, deltas)."""
    found = models(annotation_at(path))
    if not found:
        raise Missing(f"{SDK} declares no models at {path}")
    return {value for model in found if "type" in model_fields(model) for value in declared_literals_of(model)}


def declared_fields(path: str) -> set[str]:
    """The field names of the model(s) at `path` (a usage, a usage's breakdown)."""
    found = models(annotation_at(path))
    if not found:
        raise Missing(f"{SDK} declares no model at {path}")
    return {name for model in found for name in model_fields(model)}


def quietly(read: Callable[[str], set[str]], *paths: str) -> set[str]:
    """What `read` finds at whichever of `paths` the installed SDK declares: for parametrizing at collection time."""
    found: set[str] = set()
    for path in paths:
        try:
            found |= read(path)
        except Missing:
            pass
    return found


# --- what claude_otel knows beyond its own sets, each with why --------------------------------------------------------

GENAI_FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_call", "error"})
"""The GenAI conventions' `FinishReason` values: what `FINISH_REASONS` may map a stop reason to."""

STOP_REASONS_PASSED_THROUGH = {
    "pause_turn": "the API paused a long turn for the client to continue: no GenAI finish reason means that",
    "model_context_window_exceeded": "the context window, not `max_tokens`, ended it: `length` would hide which",
    "compaction": "a beta turn that stopped after compacting its context, to be continued: like `pause_turn`",
}
"""Stop reasons `gen_ai.response.finish_reasons` records as they are (docs/call-span.md): none of the conventions'
values fits. Every stop reason claude_otel knows is here or in `FINISH_REASONS`."""

USAGE_FIELDS_READ_APART = {"output_tokens": "`MessageReader.output_tokens`: a stream's final count is in `message_delta`"}
USAGE_FIELDS_NOT_READ = {
    "fallback_credit": "a redeemed fallback credit is already in the token counts: nothing to add "
    "(docs/metrics-and-cost.md)",
}
"""Usage fields a `MessageReader` deliberately does not keep."""

BLOCKS_NOT_TOOL_CALLS = {
    "text": "words",
    "thinking": "reasoning",
    "redacted_thinking": "reasoning, encrypted",
    "container_upload": "a file the code execution tool uploaded: no call",
    "compaction": "the summary of compacted context",
    "fallback": "says a fallback model answered the rest",
    "mcp_tool_listing": "the tools an MCP server offers, listed: none is called",
}
"""Content blocks that are not tool calls. A `*_tool_result` block (and `tool_result`) is a call's result, whose call
block was counted: `_content.part` reads them by that suffix too."""

DELTAS_NOT_READ = {
    "signature_delta": "a thinking block's signature: not words (see `_content._DELTA_FIELDS`)",
    "citations_delta": "a citation of a text block: not words",
    "compaction_delta": "a compaction block keeps only its type in captured content (`anthropic_compaction`), as in "
    "the SDK's own tracing, so its summary is not read",
}
"""Content block deltas whose content capture adds nothing to its block."""


@dataclass(frozen=True)
class Names:
    """The names of one vocabulary that claude_otel reads only by writing them out in its code."""

    read: Mapping[str, tuple[types.ModuleType, ...]]
    """Each with the modules that read it: checked, each must name it."""
    not_read: Mapping[str, str] = field(default_factory=dict)
    """Each with why it is deliberately not read."""


SERVER_TOOL_COUNTS = Names(
    read={"web_search_requests": (_prices,)},
    not_read={"web_fetch_requests": "web fetch costs nothing beyond its tokens (docs/metrics-and-cost.md)"},
)
"""`usage.server_tool_use`: the server tools' billed requests."""

TOKEN_BREAKDOWNS = Names(
    read={
        "ephemeral_5m_input_tokens": (_response, _prices),
        "ephemeral_1h_input_tokens": (_response, _prices),
        "thinking_tokens": (_response,),
    }
)
"""`usage.cache_creation` and `usage.output_tokens_details`."""

ITERATION_TYPES = Names(
    read={"message": (_prices,), "fallback_message": (_prices,), "compaction": (_prices,)},
    not_read={
        "advisor_message": "priced by `PriceTable.cost`'s default rule, at its own model and in addition to the "
        "top-level counts, which leave it out (docs/metrics-and-cost.md)",
    },
)
"""`usage.iterations[].type` (beta): the kinds of iteration `PriceTable.cost` prices each its own way."""

ITERATION_FIELDS = Names(
    read={
        name: (_prices,)
        for name in (
            "type",
            "model",
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "cache_creation",
        )
    }
)
"""`usage.iterations[]`: what `PriceTable.cost` prices an iteration by."""

TIERS_AND_SPEEDS = Names(
    read={"batch": (_response,), "priority": (_prices,), "fast": (_prices,)},
    not_read={"standard": "the default service tier and speed: the standard rates, nothing to read"},
)
"""`usage.service_tier` and `usage.speed` values: each has its own rates."""

NAMES = (SERVER_TOOL_COUNTS, TOKEN_BREAKDOWNS, ITERATION_TYPES, ITERATION_FIELDS, TIERS_AND_SPEEDS)


@dataclass(frozen=True)
class Vocabulary:
    """Names the SDK declares at some paths, and how claude_otel knows them."""

    what: str
    read: Callable[[str], set[str]]
    paths: tuple[str, ...]
    unknown: Callable[[set[str]], set[str]]
    """Of the declared names, those claude_otel does not know."""
    fix: str
    """Where a human adds a new name, once they know what it means."""


def _unknown_events(declared: set[str]) -> set[str]:
    """The event types `MessageReader.event` logs as unknown: its branches and `OTHER_EVENTS` are what it knows."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("claude_otel")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        unknown = set()
        for kind in sorted(declared):
            records.clear()
            bare_reader().event(types.SimpleNamespace(type=kind))  # A known type without its fields is caught inside.
            if any("unknown stream event type" in record.getMessage() for record in records):
                unknown.add(kind)
        return unknown
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def bare_reader() -> MessageReader:
    """The reader of a streamed chat's response, for feeding events to. (Built by keyword: a change of the
    records' signatures fails here, and this is the place to follow it.)"""
    request = Request(
        operation=sc.OPERATION_CHAT,
        model=MODEL,
        streams=True,
        propagate=False,
        max_retries=None,
        attempt_attributes={},
        metric_base={},
    )
    return MessageReader(request=request, recorder=None)


def _not_tool_call(kind: str) -> bool:
    return kind in BLOCKS_NOT_TOOL_CALLS or kind == "tool_result" or kind.endswith("_tool_result")


def _known(*sets: Iterable[str]) -> Callable[[set[str]], set[str]]:
    """The declared names that are in none of `sets`."""
    known = {name for names in sets for name in names}
    return lambda declared: declared - known


T, B = "anthropic.types", "anthropic.types.beta"
USAGE = (f"{T}:Message.usage", f"{B}:BetaMessage.usage")
STOP_REASON_PATHS = (
    f"{T}:StopReason",
    f"{T}:Message.stop_reason",
    f"{T}:RawMessageDeltaEvent.delta.stop_reason",
    f"{B}:BetaStopReason",
    f"{B}:BetaMessage.stop_reason",
    f"{B}:BetaRawMessageDeltaEvent.delta.stop_reason",
)
BLOCK_PATHS = (
    f"{T}:Message.content",
    f"{T}:RawContentBlockStartEvent.content_block",
    f"{B}:BetaMessage.content",
    f"{B}:BetaRawContentBlockStartEvent.content_block",
)

VOCABULARIES = (
    Vocabulary(
        "stop reasons",
        declared_literals,
        STOP_REASON_PATHS,
        _known(STOP_REASONS),
        "add it to `STOP_REASONS` in src/claude_otel/_response.py, and to `FINISH_REASONS` in _semconv.py if a GenAI "
        "finish reason fits (else to STOP_REASONS_PASSED_THROUGH here, and docs/call-span.md)",
    ),
    Vocabulary(
        "stream event types",
        declared_types,
        (f"{T}:RawMessageStreamEvent", f"{B}:BetaRawMessageStreamEvent"),
        _unknown_events,
        "read it in `MessageReader.event` (src/claude_otel/_response.py), or add it to `OTHER_EVENTS` there if it says nothing "
        "a span records",
    ),
    Vocabulary(
        "usage fields",
        declared_fields,
        (*USAGE, f"{T}:RawMessageDeltaEvent.usage", f"{B}:BetaRawMessageDeltaEvent.usage"),
        _known(USAGE_FIELDS, USAGE_FIELDS_READ_APART, USAGE_FIELDS_NOT_READ),
        "add it to `USAGE_FIELDS` in src/claude_otel/_response.py (and price it in _prices.py if it is billed), or to "
        "USAGE_FIELDS_NOT_READ here with why",
    ),
    Vocabulary(
        "server tool usage counts",
        declared_fields,
        tuple(f"{path}.server_tool_use" for path in USAGE),
        _known(SERVER_TOOL_COUNTS.read, SERVER_TOOL_COUNTS.not_read),
        "price it in `PriceTable.cost` (src/claude_otel/_prices.py, prices.json, docs/metrics-and-cost.md) and add "
        "it to SERVER_TOOL_COUNTS here, or to its `not_read` with why it costs nothing",
    ),
    Vocabulary(
        "cache creation and output token breakdowns",
        declared_fields,
        tuple(f"{path}.{name}" for path in USAGE for name in ("cache_creation", "output_tokens_details")),
        _known(TOKEN_BREAKDOWNS.read, TOKEN_BREAKDOWNS.not_read),
        "record or price it (src/claude_otel/_response.py `_usage_attributes`, _prices.py `_tokens`) and add it to "
        "TOKEN_BREAKDOWNS here, or to its `not_read` with why",
    ),
    Vocabulary(
        "usage iteration types",
        declared_types,
        (f"{B}:BetaMessage.usage.iterations",),
        _known(ITERATION_TYPES.read, ITERATION_TYPES.not_read),
        "decide in `PriceTable.cost` (src/claude_otel/_prices.py) at which model's rates it is priced and whether "
        "the top-level counts hold it, document it in docs/metrics-and-cost.md, and add it to ITERATION_TYPES here",
    ),
    Vocabulary(
        "usage iteration fields",
        declared_fields,
        (f"{B}:BetaMessage.usage.iterations",),
        _known(ITERATION_FIELDS.read, ITERATION_FIELDS.not_read),
        "price it in `PriceTable.cost` (src/claude_otel/_prices.py) and add it to ITERATION_FIELDS here, or to "
        "its `not_read` with why",
    ),
    Vocabulary(
        "service tiers and speeds",
        declared_literals,
        tuple(f"{path}.{name}" for path in USAGE for name in ("service_tier", "speed")),
        _known(TIERS_AND_SPEEDS.read, TIERS_AND_SPEEDS.not_read),
        "give it its rates in `PriceTable.cost` (src/claude_otel/_prices.py, prices.json) and add it to "
        "TIERS_AND_SPEEDS here, or to its `not_read` with why the standard rates apply",
    ),
    Vocabulary(
        "content block types",
        declared_types,
        BLOCK_PATHS,
        lambda declared: {kind for kind in declared if kind not in TOOL_BLOCKS and not _not_tool_call(kind)},
        "if the model calls a tool with it, add it to `TOOL_BLOCKS` in src/claude_otel/_response.py with its "
        "`gen_ai.tool.type` (and to `_content.part`); else add it to BLOCKS_NOT_TOOL_CALLS here",
    ),
    Vocabulary(
        "content block delta types",
        declared_types,
        (f"{T}:RawContentBlockDeltaEvent.delta", f"{B}:BetaRawContentBlockDeltaEvent.delta"),
        _known(_content._DELTA_FIELDS, DELTAS_NOT_READ),
        "add the field that carries its content to `_DELTA_FIELDS` in src/claude_otel/_content.py, or add it to "
        "DELTAS_NOT_READ here with why",
    ),
)


# --- the SDK declares nothing that claude_otel does not know ----------------------------------------------------------


@pytest.mark.parametrize(
    ("vocabulary", "path"),
    [
        pytest.param(vocabulary, path, id=f"{vocabulary.what}: {path}")
        for vocabulary in VOCABULARIES
        for path in vocabulary.paths
    ],
)
def test_the_sdk_declares_nothing_unknown(vocabulary: Vocabulary, path: str) -> None:
    try:
        declared = vocabulary.read(path)
    except Missing as missing:
        pytest.skip(str(missing))
    assert declared, f"read no {vocabulary.what} at {path}: the reading of the SDK's types is broken"
    unknown = vocabulary.unknown(declared)
    assert not unknown, (
        f"{SDK} declares {vocabulary.what} that claude_otel does not know: {sorted(unknown)} (at {path}). "
        f"A human must decide what each means, then {vocabulary.fix}."
    )


def test_the_reading_of_types_sees_through_their_wrappers() -> None:
    """The readers find a literal inside every wrapper the SDK's lines use, or every test above could pass on
    nothing read."""
    literal = typing_extensions.Literal["a", "b"]
    wrapped = typing.Optional[typing_extensions.Annotated[typing.Union[literal, typing.Literal["c"]], "discriminator"]]
    assert literal_values(wrapped) == {"a", "b", "c"}
    assert literal_values(typing.List[typing.Optional[literal]]) == {"a", "b"}
    assert declared_types(f"{T}:RawMessageStreamEvent") >= {"message_start", "message_stop"}
    with pytest.raises(Missing):
        annotation_at(f"{T}:NoSuchType")
    with pytest.raises(Missing):
        annotation_at(f"{T}:Message.no_such_field")


# --- what claude_otel's own sets say of each other --------------------------------------------------------------------


def test_every_known_stop_reason_has_its_finish_reason() -> None:
    mapped = set(sc.FINISH_REASONS)
    passed = set(STOP_REASONS_PASSED_THROUGH)
    assert not (STOP_REASONS - mapped - passed), (
        f"stop reasons with no decided finish reason: {sorted(STOP_REASONS - mapped - passed)}; map each in "
        "`FINISH_REASONS` (src/claude_otel/_semconv.py) or add it to STOP_REASONS_PASSED_THROUGH here"
    )
    assert not (mapped & passed), f"both mapped and passed through: {sorted(mapped & passed)}"
    # A mapped or passed-through name that is no stop reason is a typo, or a stop reason left out of `STOP_REASONS`.
    assert mapped | passed <= STOP_REASONS, f"not in `STOP_REASONS`: {sorted((mapped | passed) - STOP_REASONS)}"
    # `error` is for a finish reason that never came, never for a stop reason the API sent.
    invented = set(sc.FINISH_REASONS.values()) - (GENAI_FINISH_REASONS - {sc.FINISH_REASON_ERROR})
    assert not invented, f"`FINISH_REASONS` maps to values that are not the conventions': {sorted(invented)}"


def test_the_names_said_to_be_read_are_read() -> None:
    """`Names.read` is a claim about the source: each module it names must name the field or value (in quotes);
    and no name is both read and deliberately not read."""
    for names in NAMES:
        for name, modules in names.read.items():
            for module in modules:
                assert f'"{name}"' in inspect.getsource(module), f"{module.__name__} does not read {name!r}"
        assert not (set(names.read) & set(names.not_read)), "both read and not read"
    kept = set(USAGE_FIELDS_NOT_READ) & set(USAGE_FIELDS)
    assert not kept, f"usage fields now kept: drop {sorted(kept)} from USAGE_FIELDS_NOT_READ"
    assert not (set(DELTAS_NOT_READ) & set(_content._DELTA_FIELDS)), "a delta now read: drop it from DELTAS_NOT_READ"
    assert not (set(BLOCKS_NOT_TOOL_CALLS) & set(TOOL_BLOCKS)), "a tool call block is listed as not one"


DECLARED_BLOCKS = sorted(quietly(declared_types, *BLOCK_PATHS) | set(TOOL_BLOCKS) | set(BLOCKS_NOT_TOOL_CALLS))


@pytest.mark.parametrize("kind", DECLARED_BLOCKS)
def test_content_capture_and_the_span_agree_on_tool_calls(kind: str) -> None:
    """A block that the captured content shows as a `tool_call` is one of the span's tool calls, and the other way
    round: `_content.part` and `TOOL_BLOCKS` each know the tool call blocks."""
    block = {"type": kind, "id": "toolu_1", "name": "probe", "input": {}, "tool_use_id": "toolu_0", "content": "x"}
    assert (_content.part(block)["type"] == "tool_call") == (kind in TOOL_BLOCKS), (
        f"{kind!r}: content capture says {_content.part(block)['type']!r}, `TOOL_BLOCKS` "
        f"{'has' if kind in TOOL_BLOCKS else 'lacks'} it"
    )


# --- each declared name, through the real SDK, on the span ------------------------------------------------------------

DECLAREDSTOP_REASONS = sorted(quietly(declared_literals, *STOP_REASON_PATHS))


def _tool_shaped(path: str) -> set[str]:
    """The block types at `path` whose model has what a tool call has: an id, a tool's name, its input."""
    return {
        kind
        for model in models(annotation_at(path))
        if {"id", "name", "input"} <= set(model_fields(model))
        for kind in declared_literals_of(model)
    }


DECLARED_TOOL_CALLS = sorted(quietly(_tool_shaped, *BLOCK_PATHS))


def _message(stop_reason: str | None, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "msg_drift",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1 if stop_reason is None else 7},
    }


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)


def _answer(sim: Simulator, stop_reason: str, block: dict[str, Any], streamed: bool) -> str:
    """Registers the API's answer with one content block and `stop_reason`, whole or as its stream of events."""
    if not streamed:
        return sim.raw(json.dumps(_message(stop_reason, [block])).encode(), content_type="application/json")
    # A tool call's input arrives in deltas, after its block starts with an empty one; its name and id are all
    # the span reads, from `content_block_start`.
    started = {**block, "input": {}} if "input" in block else block
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    events = [
        {"type": "message_start", "message": _message(None, [])},
        {"type": "content_block_start", "index": 0, "content_block": started},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    ]
    return sim.raw(_sse(events))


def _call_beta(client: anthropic.Anthropic, key: str, streamed: bool) -> None:
    """The beta Messages API, whose types declare a superset of the stop reasons and blocks of the plain one."""
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi."}]}
    if streamed:
        for _ in client.beta.messages.create(**kwargs, stream=True, extra_headers=scenario(f"raw:{key}")):
            pass
    else:
        client.beta.messages.create(**kwargs, extra_headers=scenario(f"raw:{key}"))


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("stop_reason", DECLAREDSTOP_REASONS)
def test_each_declared_stop_reason_is_recorded(
    spans: Spans,
    sim: Simulator,
    client: anthropic.Anthropic,
    caplog: pytest.LogCaptureFixture,
    stop_reason: str,
    streamed: bool,
) -> None:
    """Every stop reason the SDK declares is on the span, with its finish reason, and is not logged as unknown."""
    key = _answer(sim, stop_reason, {"type": "text", "text": "Hello."}, streamed)
    try:
        with caplog.at_level(logging.DEBUG, logger="claude_otel"):
            _call_beta(client, key, streamed)
    finally:
        sim.forget(key)
    span = spans.one()
    assert span.attributes[sc.ANTHROPIC_STOP_REASON] == stop_reason
    expected = sc.FINISH_REASONS.get(stop_reason, stop_reason)
    assert span.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == (expected,)
    unknown = [record.getMessage() for record in caplog.records if "unknown stop_reason" in record.getMessage()]
    assert not unknown, f"claude_otel does not know the stop reason {stop_reason!r} that {SDK} declares: {unknown}"


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("kind", DECLARED_TOOL_CALLS)
def test_each_declared_tool_call_block_is_a_tool_call_on_the_span(
    spans: Spans, sim: Simulator, client: anthropic.Anthropic, kind: str, streamed: bool
) -> None:
    """Every block the SDK declares with a tool call's shape (an id, a name, an input) is one of the span's tool
    calls, with its `gen_ai.tool.type`: a new kind of tool call is not left off the span and the tool call metric."""
    block = {"type": kind, "id": "toolu_drift_1", "name": "probe", "input": {"q": 1}, "server_name": "srv"}
    key = _answer(sim, "tool_use", block, streamed)
    try:
        _call_beta(client, key, streamed)
    finally:
        sim.forget(key)
    span = spans.one()
    assert span.attributes.get(sc.CLAUDE_OTEL_TOOL_CALLS_NAMES) == ("probe",), (
        f"a {kind!r} block, which {SDK} declares with a tool call's fields, is not among the span's tool calls: "
        "add it to `TOOL_BLOCKS` in src/claude_otel/_response.py with its `gen_ai.tool.type`"
    )
    assert span.attributes[sc.CLAUDE_OTEL_TOOL_CALLS_IDS] == ("toolu_drift_1",)
    assert span.attributes[sc.CLAUDE_OTEL_TOOL_CALLS_TYPES] == (TOOL_BLOCKS[kind],)
