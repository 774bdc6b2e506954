"""Many calls at once: each call span belongs to its own thread's or task's parent and attribution, none is lost or
doubled, and `uninstrument()` racing calls in flight neither deadlocks nor reaches the application."""

from __future__ import annotations

import asyncio
import threading
import time

import anthropic
from conftest import MESSAGES, MODEL, scenario
from opentelemetry import trace
from side_by_side import Watched

import claude_otel
from claude_otel.testing import Simulator

KW = {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}
THREADS = 64
TASKS = 500


def check_no_cross_talk(watched: Watched, parents: dict[int, str], calls_per_worker: int) -> None:
    """Each worker's calls are children of its own span and carry its own feature; none is missing or doubled."""
    by_parent: dict[int, list] = {}
    for span in watched.calls():
        assert span.parent is not None, span.name
        by_parent.setdefault(span.parent.span_id, []).append(span)
    assert set(by_parent) == set(parents)
    for parent_id, calls in by_parent.items():
        assert len(calls) == calls_per_worker
        assert {span.attributes["claude_otel.feature"] for span in calls} == {parents[parent_id]}
    assert len({span.context.span_id for span in watched.calls()}) == len(parents) * calls_per_worker


def test_threads(sim: Simulator) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2)
    parents: dict[int, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    with Watched(max_attribute_values=1000) as watched:
        tracer = watched.provider.get_tracer("app")

        def worker(number: int) -> None:
            try:
                feature = f"thread-{number}"
                with tracer.start_as_current_span(feature) as parent, claude_otel.attributes(feature=feature):
                    parents[parent.get_span_context().span_id] = feature
                    start.wait()
                    client.messages.create(**KW, extra_headers=scenario("529,ok" if number % 4 == 0 else "ok"))
                    assert [event.type for event in client.messages.create(**KW, stream=True)][-1] == "message_stop"
                    with client.messages.stream(**KW) as stream:
                        stream.get_final_message()
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=worker, args=(number,)) for number in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads), "deadlock"
    assert errors == []
    check_no_cross_talk(watched, parents, calls_per_worker=3)


def test_asyncio_tasks(sim: Simulator) -> None:
    parents: dict[int, str] = {}

    async def main(tracer: trace.Tracer) -> None:
        async with anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2) as client:

            async def task(number: int) -> None:
                feature = f"task-{number}"
                with tracer.start_as_current_span(feature) as parent, claude_otel.attributes(feature=feature):
                    parents[parent.get_span_context().span_id] = feature
                    if number % 2:
                        stream = await client.messages.create(**KW, stream=True)
                        assert [event.type async for event in stream][-1] == "message_stop"
                    else:
                        await client.messages.create(**KW, extra_headers=scenario("529,ok" if number % 10 == 0 else "ok"))

            await asyncio.wait_for(asyncio.gather(*(task(number) for number in range(TASKS))), timeout=120)

    with Watched(max_attribute_values=1000) as watched:
        asyncio.run(main(watched.provider.get_tracer("app")))
    check_no_cross_talk(watched, parents, calls_per_worker=1)


def test_uninstrument_racing_calls(sim: Simulator) -> None:
    # Calls of every kind run while another thread uninstruments and instruments again, over and over. No call may
    # fail or hang, and every span that was started ends exactly once (`Watched` checks).
    stop = threading.Event()
    errors: list[BaseException] = []
    calls = [0]

    def worker(number: int) -> None:
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2)
        kinds = [
            lambda: client.messages.create(**KW).stop_reason,
            lambda: [event.type for event in client.messages.create(**KW, stream=True)][-1],
            lambda: client.messages.stream(**KW).__enter__().get_final_message().stop_reason,
            lambda: client.messages.create(**KW, extra_headers=scenario("529,ok")).stop_reason,
            lambda: client.messages.with_raw_response.create(**KW).parse().stop_reason,
        ]
        expected = ["end_turn", "message_stop", "end_turn", "end_turn", "end_turn"]
        turn = number
        while not stop.is_set():
            try:
                kind = turn % len(kinds)
                assert kinds[kind]() == expected[kind]
                calls[0] += 1
            except BaseException as err:
                errors.append(err)
                return
            turn += 1

    def async_worker() -> None:
        async def run() -> None:
            async with anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2) as client:
                while not stop.is_set():
                    message = await client.messages.create(**KW)
                    stream = await client.messages.create(**KW, stream=True, extra_headers=scenario("529,ok"))
                    assert (message.stop_reason, [event.type async for event in stream][-1]) == ("end_turn", "message_stop")
                    calls[0] += 2

        try:
            asyncio.run(run())
        except BaseException as err:
            errors.append(err)

    with Watched() as watched:
        workers = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
        workers += [threading.Thread(target=async_worker) for _ in range(2)]
        for thread in workers:
            thread.start()
        deadline = time.monotonic() + 3
        toggles = 0
        while time.monotonic() < deadline:
            claude_otel.uninstrument()
            time.sleep(0.002)
            claude_otel.instrument(tracer_provider=watched.provider)
            time.sleep(0.005)
            toggles += 1
        stop.set()
        for thread in workers:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in workers), "deadlock"
    assert errors == []
    assert toggles > 20 and calls[0] > 50
    assert watched.calls()  # Some calls were traced, while instrumented.
