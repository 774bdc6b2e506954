"""The call span is a child of the application's current span: in threads and in asyncio tasks, with no cross-talk."""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

import anthropic
from conftest import MESSAGES, MODEL, Spans

KW = {"model": MODEL, "max_tokens": 16, "messages": MESSAGES}


def test_threads(spans: Spans, client: anthropic.Anthropic) -> None:
    tracer = spans.provider.get_tracer("app")

    def handle(number: int) -> tuple[int, str]:
        with tracer.start_as_current_span(f"request-{number}") as parent:
            stream = number % 2 == 1
            if stream:
                for _ in client.messages.create(**KW, stream=True):
                    pass
            else:
                client.messages.create(**KW)
            return parent.get_span_context().span_id, f"request-{number}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        parents = dict(pool.map(handle, range(32)))
    calls = spans.calls()
    assert len(calls) == 32
    assert sorted(parents[call.parent.span_id] for call in calls) == sorted(parents.values())


def test_thread_that_copies_the_context(spans: Spans, client: anthropic.Anthropic) -> None:
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("parent") as parent, ThreadPoolExecutor(1) as pool:
        context = contextvars.copy_context()
        pool.submit(context.run, client.messages.create, **KW).result()
    (call,) = spans.calls()
    assert call.parent.span_id == parent.get_span_context().span_id


def test_asyncio_tasks(spans: Spans, async_client: anthropic.AsyncAnthropic) -> None:
    tracer = spans.provider.get_tracer("app")

    async def handle(number: int) -> int:
        with tracer.start_as_current_span(f"task-{number}") as parent:
            async with async_client.messages.stream(**KW) as stream:
                await stream.until_done()
            await async_client.messages.create(**KW)
            return parent.get_span_context().span_id

    async def main() -> list[int]:
        return await asyncio.gather(*(handle(number) for number in range(50)))

    parents = asyncio.run(main())
    calls = spans.calls()
    assert len(calls) == 100
    by_parent: dict[int, int] = {}
    for call in calls:
        by_parent[call.parent.span_id] = by_parent.get(call.parent.span_id, 0) + 1
    assert by_parent == {parent: 2 for parent in parents}
