"""Whatever the API sends, the application sees the same with claude_otel as without it, and claude_otel keeps its word.

Hypothesis makes the responses: SSE streams of known and unknown events with fields of any type, missing usage,
interleaved pings, huge texts, cut at any byte, split into chunks anywhere, ended by the server hanging up; and JSON
bodies, whole or truncated, of any status. The simulator serves each byte for byte over a real socket, once to the
SDK uninstrumented and once instrumented, and the two outcomes must be equal (`side_by_side`), with every span ended
exactly once, no exception raised inside claude_otel and no failure of claude_otel's logged.
"""

from __future__ import annotations

import json

import anthropic
import pytest
from conftest import MESSAGES, MODEL, scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from side_by_side import Watched, outcome

from claude_otel.testing import Simulator

# The SDK parses what it is given without validation, and pydantic warns when such a model is dumped to compare it.
# Hypothesis warns that a failing example with a huge text has a huge repr; it is still the example to see.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]

KW = {"model": MODEL, "max_tokens": 64, "messages": MESSAGES}

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What claude_otel may log a traceback for at debug level: the application reading a body that is no JSON.
BROKEN_INPUT = ("could not decode a response body",)

json_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=8)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
huge_text = st.sampled_from([0, 1, 40, 200_000]).map(lambda n: "Ω" * n)
text = st.text(max_size=20) | huge_text


def maybe(value: st.SearchStrategy, wrong: st.SearchStrategy = json_value) -> st.SearchStrategy:
    """`value`, or a value of any JSON type in its place, or the field left out (`_OMIT`)."""
    return st.one_of(value, value, value, wrong, st.just(_OMIT))


_OMIT = object()


def record(**fields: st.SearchStrategy) -> st.SearchStrategy:
    """A JSON object with `fields`, each possibly of the wrong type or missing, and maybe an unknown field."""
    return st.fixed_dictionaries(fields, optional={"unknown_field_x": json_value}).map(
        lambda obj: {key: value for key, value in obj.items() if value is not _OMIT}
    )


usage = record(
    input_tokens=maybe(st.integers(0, 10**7)),
    output_tokens=maybe(st.integers(0, 10**7)),
    cache_read_input_tokens=maybe(st.integers(0, 10**6) | st.none()),
    cache_creation_input_tokens=maybe(st.integers(0, 10**6) | st.none()),
    service_tier=maybe(st.sampled_from(["standard", "batch", "priority"])),
)
stop_reason = st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal", "pause_turn", "warp_drive", None])
block = st.one_of(
    record(type=st.just("text"), text=maybe(text)),
    record(type=st.just("tool_use"), id=maybe(st.just("toolu_1")), name=maybe(st.just("f")), input=maybe(st.just({}))),
    record(type=st.just("thinking"), thinking=maybe(text), signature=maybe(st.just("sig"))),
    record(type=st.text(max_size=10)),
)
message = record(
    id=maybe(st.just("msg_fuzz")),
    type=maybe(st.just("message")),
    role=maybe(st.just("assistant")),
    model=maybe(st.just(MODEL)),
    content=maybe(st.lists(block, max_size=3)),
    stop_reason=maybe(stop_reason),
    stop_sequence=maybe(st.none()),
    usage=maybe(usage),
)
delta = st.one_of(
    record(type=st.just("text_delta"), text=maybe(text)),
    record(type=st.just("input_json_delta"), partial_json=maybe(st.sampled_from(['{"a": ', "1}", "}{"]))),
    record(type=st.just("thinking_delta"), thinking=maybe(text)),
    record(type=st.text(max_size=10)),
)
index = maybe(st.integers(0, 3))
event = st.one_of(
    record(type=st.just("message_start"), message=maybe(message)),
    record(type=st.just("content_block_start"), index=index, content_block=maybe(block)),
    record(type=st.just("content_block_delta"), index=index, delta=maybe(delta)),
    record(type=st.just("content_block_stop"), index=index),
    record(type=st.just("message_delta"), delta=maybe(record(stop_reason=maybe(stop_reason))), usage=maybe(usage)),
    record(type=st.just("message_stop")),
    record(type=st.just("ping")),
    record(type=st.just("error"), error=maybe(record(type=maybe(st.just("overloaded_error")), message=maybe(text)))),
    record(type=st.text(max_size=12), detail=json_value),
)


def sse(name: object, data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


@st.composite
def stream_body(draw: st.DrawFn) -> tuple[list[bytes], bool]:
    """The chunks of an SSE body and whether it ends properly: events around a plausible skeleton, then damaged."""
    events = draw(st.lists(event, max_size=8))
    if draw(st.booleans()):
        # A plausible stream: a real start and stop around the fuzzed events, pings wherever.
        events = [{"type": "message_start", "message": draw(message)}, *events, {"type": "message_stop"}]
    events = [item for e in events for item in ([e, {"type": "ping"}] if draw(st.booleans()) else [e])]
    data = b"".join(sse(e.get("type"), e) for e in events)
    damage = draw(st.sampled_from(["none", "none", "cut", "garbage", "bad_json"]))
    if damage == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "garbage":
        data += draw(st.binary(max_size=40))
    elif damage == "bad_json":
        data += b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=4)))
    chunks = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)])]
    return chunks, draw(st.booleans())


@st.composite
def json_body(draw: st.DrawFn) -> tuple[int, bytes, str]:
    """Status, body and content type of a non-streamed answer: a Message, an error, anything, maybe truncated."""
    status = draw(st.sampled_from([200, 200, 200, 400, 404, 413, 429, 500, 529]))
    if status == 200:
        payload = draw(message | json_value)
    else:
        payload = draw(record(type=maybe(st.just("error")), error=maybe(record(type=maybe(st.text(max_size=12)), message=maybe(text)))))
    data = json.dumps(payload).encode()
    if draw(st.integers(0, 4)) == 0 and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    content_type = draw(st.sampled_from(["application/json", "application/json", "text/plain", "text/html"]))
    return status, data, content_type


@pytest.fixture(scope="module")
def fuzz_client(sim: Simulator) -> anthropic.Anthropic:
    # No retries: a retried fuzz answer is served again the same, and the SDK's back-off would only add waiting.
    return anthropic.Anthropic(api_key="sk-ant-fuzz", base_url=sim.url, max_retries=0, timeout=10)


def both_ways(sim: Simulator, key: str, call, capture: bool) -> None:
    """`call(extra_headers)` uninstrumented, then instrumented (capturing content or not): the same outcome, and the
    promises kept."""
    try:
        plain = outcome(lambda: call(scenario(f"raw:{key}")))
        with Watched(BROKEN_INPUT, capture_content="SPAN_ONLY" if capture else None) as watched:
            instrumented = outcome(lambda: call(scenario(f"raw:{key}")))
        assert instrumented == plain
        assert len(watched.calls()) == 1
    finally:
        sim.forget(key)


@FUZZ
@given(body=stream_body(), capture=st.booleans())
def test_streams_with_create(sim: Simulator, fuzz_client: anthropic.Anthropic, body: tuple[list[bytes], bool], capture: bool) -> None:
    chunks, complete = body
    key = sim.raw(chunks, headers={"request-id": "req_fuzz"}, complete=complete)
    both_ways(sim, key, lambda headers: list(fuzz_client.messages.create(**KW, stream=True, extra_headers=headers)), capture)


@FUZZ
@given(body=stream_body(), capture=st.booleans())
def test_streams_with_the_helper(sim: Simulator, fuzz_client: anthropic.Anthropic, body: tuple[list[bytes], bool], capture: bool) -> None:
    chunks, complete = body
    key = sim.raw(chunks, headers={"request-id": "req_fuzz"}, complete=complete)

    def read(headers):
        with fuzz_client.messages.stream(**KW, extra_headers=headers) as stream:
            return stream.get_final_message()

    both_ways(sim, key, read, capture)


@FUZZ
@given(answer=json_body(), complete=st.booleans(), capture=st.booleans())
def test_json_answers(sim: Simulator, fuzz_client: anthropic.Anthropic, answer: tuple[int, bytes, str], complete: bool, capture: bool) -> None:
    status, data, content_type = answer
    key = sim.raw(data, status=status, content_type=content_type, headers={"request-id": "req_fuzz"}, complete=complete)
    both_ways(sim, key, lambda headers: fuzz_client.messages.create(**KW, extra_headers=headers), capture)


@FUZZ
@given(answer=json_body(), count=maybe(st.integers(0, 10**6)), capture=st.booleans())
def test_count_tokens_answers(sim: Simulator, fuzz_client: anthropic.Anthropic, answer: tuple[int, bytes, str], count: object, capture: bool) -> None:
    status, data, content_type = answer
    if status == 200:
        data = json.dumps({} if count is _OMIT else {"input_tokens": count}).encode()
    key = sim.raw(data, status=status, content_type=content_type, headers={"request-id": "req_fuzz"})
    both_ways(sim, key, lambda headers: fuzz_client.messages.count_tokens(model=MODEL, messages=MESSAGES, extra_headers=headers), capture)


@FUZZ
@given(answer=json_body(), capture=st.booleans())
def test_json_answers_read_raw(sim: Simulator, fuzz_client: anthropic.Anthropic, answer: tuple[int, bytes, str], capture: bool) -> None:
    # The application reads the body itself: claude_otel decodes it for its usage, whatever it is.
    status, data, content_type = answer
    key = sim.raw(data, status=status, content_type=content_type, headers={"request-id": "req_fuzz"})

    def read(headers):
        with fuzz_client.messages.with_streaming_response.create(**KW, extra_headers=headers) as response:
            return response.status_code, b"".join(response.iter_bytes())

    both_ways(sim, key, read, capture)


@settings(FUZZ, max_examples=30)  # An event loop and a client per run: the slowest.
@given(body=stream_body(), capture=st.booleans())
def test_async_streams(sim: Simulator, body: tuple[list[bytes], bool], capture: bool) -> None:
    import asyncio

    chunks, complete = body
    key = sim.raw(chunks, headers={"request-id": "req_fuzz"}, complete=complete)

    def call(headers):
        async def read():
            async with anthropic.AsyncAnthropic(api_key="sk-ant-fuzz", base_url=sim.url, max_retries=0) as client:
                stream = await client.messages.create(**KW, stream=True, extra_headers=headers)
                return [event async for event in stream]

        return asyncio.run(read())

    both_ways(sim, key, call, capture)
