"""Observing how the application reads a response body, without changing what it reads.

Two layers, because the SDK's own objects must stay what they are (on 0.x, `isinstance(s, anthropic.Stream)` holds
only for an object whose type is exactly `Stream`, so a proxy or a subclass breaks applications):

- The *body*: `response.stream` of the httpx/httpx2 response is replaced by a wrapper of the same kind that tells the
  `Call` when the body was read to its end, closed early, failed, or dropped. It works for every way of reading a
  body: a `Stream`, `with_streaming_response`, or the application's own `iter_bytes()`.
- The *events*: the SDK's `Stream.__stream__` (the generator that parses a body into events) is wrapped so that the
  `Call` sees each event as the application gets it, and how the iteration ended.

Each wrapper forwards everything and swallows nothing: what the application sees is what the SDK gives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

from ._boundary import never_raises

if TYPE_CHECKING:
    from ._call import Call


class Outcome:
    """How the reading of a streamed body ended (`claude_otel.stream.outcome`)."""

    COMPLETED = "completed"
    """Read to its end: `message_stop` for a stream of events."""
    ABANDONED = "abandoned"
    """The application stopped reading: it broke out, closed the stream, dropped it, or its task was cancelled."""
    FAILED = "failed"
    """Reading raised: an `error` event, a dropped connection, a read timeout."""
    TRUNCATED = "truncated"
    """The server ended the stream without `message_stop`. The application sees no error; the span says it failed."""


class Observer:
    """How the application reads the body of a call's successful response, and who reports how that ended.

    Two wrappers can see one ending: the body's (`BodyWrapper`: read to its end, failed, closed, dropped) and, when
    an SDK `Stream` parses the body into events, the stream's (`observe_events`), whose reads of the body run inside
    it. The stream reports what it sees, with what its events say; the body reports only what no stream is there to
    see. Each `Call` has one `Observer`; its methods are the rules, in one place.
    """

    __slots__ = ("body", "in_next", "parsing", "sink")

    def __init__(self) -> None:
        self.body: object | None = None
        """The body left for the application to read: its wrapper, or `ADOPTED`; `None` when there is none."""
        self.sink: Any = None
        """What `Call.body_sink` gave: it receives the body's bytes as they are read."""
        self.parsing = False
        """An SDK `Stream` parses the body: its end is the stream's to report."""
        self.in_next = False
        """The stream is inside a read of the body: a failure or close the body sees then is the stream's."""

    def read_failed(self, call: Call, error: BaseException) -> None:
        """Reading the body raised."""
        if not self.in_next:
            call.end(error, Outcome.FAILED)

    def read_to_end(self, call: Call) -> None:
        """The body was read to its end."""
        if not self.parsing:
            call.body_read()

    def closed(self, call: Call, body: object, read: bool) -> None:
        """`body` was closed or dropped (`read`: after its end). Before its end and outside a stream's read, the
        application abandoned it; before the call returned, the SDK or a middleware did (one that replays or caches
        responses closes the one it got and returns its own): the call goes on, its end told by what the application
        reads (`patches._call_of`)."""
        if not read and not self.in_next:
            if call.handed_over:
                call.end(None, Outcome.ABANDONED)
            elif self.body is body:
                self.body = None

    def stream_closed(self, call: Call) -> None:
        """The application closed a stream over a body read before the call returned (an adopted one). In a read, it
        is the SDK closing a stream it read to the end, which the stream's events report."""
        if not self.in_next:
            call.end(None, Outcome.ABANDONED)


ADOPTED = object()
"""An `Observer`'s `body` while a stream over a body read early is the call's to read (`patches._adopt`)."""

CALL_ATTRIBUTE = "claude_otel_call"
"""The attribute of a wrapped body that holds its `Call`, where a `Stream` parsing that body finds it."""


class BodyWrapper:
    """Wraps response bodies of the SDK's HTTP library, `httpx2` from SDK 1.0 on and `httpx` before it."""

    def __init__(self, httpx: Any) -> None:
        self._sync_base = httpx.SyncByteStream
        self._async_base = httpx.AsyncByteStream
        self._sync, self._async, self._dual = _body_classes(httpx)

    def wrap(self, body: Any, call: Call) -> Any:
        """A wrapper of `body` of the same kind: `httpx.Response` checks the kind of its `stream`."""
        is_sync = isinstance(body, self._sync_base)
        is_async = isinstance(body, self._async_base)
        wrapper_type = self._dual if is_sync and is_async else self._sync if is_sync else self._async
        return wrapper_type(body, call)


def _body_classes(httpx: Any) -> tuple[type, type, type]:
    """The sync, async and dual body wrappers, subclassing the byte streams of `httpx`."""

    class SyncBody(httpx.SyncByteStream):  # type: ignore[misc]
        # The SDK 2.x `Stream` looks for its own tracing's observer here on every event; a class attribute
        # answers that at once, where `__getattr__` would raise and catch an AttributeError each time.
        stream_observer = None

        def __init__(self, body: Any, call: Call) -> None:
            self._body = body
            self._read = False
            self.claude_otel_call = call

        def __iter__(self) -> Iterator[bytes]:
            call = self.claude_otel_call
            observer = call.observer
            chunks = observer.sink
            try:
                for chunk in self._body:
                    if chunks is not None:
                        chunks.append(chunk)
                    yield chunk
            except GeneratorExit:
                raise  # The reader stopped; `close` says so.
            except BaseException as err:
                observer.read_failed(call, err)
                raise
            self._read = True
            observer.read_to_end(call)

        def close(self) -> None:
            _body_closed(self)
            self._body.close()

        def __del__(self) -> None:
            # The application dropped the response without closing it, perhaps without reading any of it.
            _body_closed(self)

        def __getattr__(self, name: str) -> Any:
            # `elapsed`, and whatever else the transport's body has, is the wrapped body's.
            if name == "_body":
                raise AttributeError(name)
            return getattr(self._body, name)

    class AsyncBody(httpx.AsyncByteStream):  # type: ignore[misc]
        stream_observer = None

        def __init__(self, body: Any, call: Call) -> None:
            self._async_body = body
            self._read = False
            self.claude_otel_call = call

        async def __aiter__(self) -> AsyncIterator[bytes]:
            call = self.claude_otel_call
            observer = call.observer
            chunks = observer.sink
            body = self._async_body.__aiter__()
            try:
                async for chunk in body:
                    if chunks is not None:
                        chunks.append(chunk)
                    yield chunk
            except GeneratorExit:
                raise
            except BaseException as err:
                observer.read_failed(call, err)
                raise
            finally:
                # Closes the body's generator in the task that read it, not later in a task of the event loop's.
                aclose = getattr(body, "aclose", None)
                if aclose is not None:
                    await aclose()
            self._read = True
            observer.read_to_end(call)

        async def aclose(self) -> None:
            _body_closed(self)
            await self._async_body.aclose()

        def __del__(self) -> None:
            _body_closed(self)

        def __getattr__(self, name: str) -> Any:
            if name == "_async_body":
                raise AttributeError(name)
            return getattr(self._async_body, name)

    class DualBody(SyncBody, AsyncBody):
        """A body that is sync and async at once, as `httpx.ByteStream` is."""

        def __init__(self, body: Any, call: Call) -> None:
            SyncBody.__init__(self, body, call)
            AsyncBody.__init__(self, body, call)

        def __getattr__(self, name: str) -> Any:
            return SyncBody.__getattr__(self, name)

    return SyncBody, AsyncBody, DualBody


@never_raises("record the close of a response body", None)
def _body_closed(body: Any) -> None:
    """A body was closed or dropped (`Observer.closed`)."""
    call: Call | None = getattr(body, CALL_ATTRIBUTE, None)
    if call is not None:
        call.observer.closed(call, body, body._read)


def observe_events(events: Generator[Any, None, None], call: Call) -> Iterator[Any]:
    """Yields the events of `events`, a `Stream.__stream__` generator, telling `call` of each and of the end."""
    observer = call.observer
    observer.parsing = True
    read = call.reader.event  # Once: it runs for every event.
    try:
        while True:
            observer.in_next = True
            try:
                event = next(events)
            except StopIteration:
                observer.in_next = False
                call.stream_ended()
                return
            observer.in_next = False
            read(event)
            yield event
    except GeneratorExit:
        # The application closed the iteration, or dropped the stream: close the SDK's generator too.
        observer.in_next = False
        call.end(None, Outcome.ABANDONED)
        events.close()
        raise
    except BaseException as err:
        observer.in_next = False
        call.end(err, Outcome.FAILED if isinstance(err, Exception) else Outcome.ABANDONED)
        raise


async def observe_async_events(events: Any, call: Call) -> AsyncIterator[Any]:
    """`observe_events` for an `AsyncStream.__stream__` async generator."""
    observer = call.observer
    observer.parsing = True
    read = call.reader.event  # Once: it runs for every event.
    try:
        while True:
            observer.in_next = True
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                observer.in_next = False
                call.stream_ended()
                return
            observer.in_next = False
            read(event)
            yield event
    except GeneratorExit:
        observer.in_next = False
        call.end(None, Outcome.ABANDONED)
        await events.aclose()
        raise
    except BaseException as err:
        observer.in_next = False
        call.end(err, Outcome.FAILED if isinstance(err, Exception) else Outcome.ABANDONED)
        raise
