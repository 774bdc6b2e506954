"""Where claude_otel hooks into the Anthropic SDK, and the hooks.

The SDK funnels every API call through one method of its client base classes, on 0.x (httpx) as on 1.x and 2.x
(httpx2), so hooking there covers every entry point at once: `messages.create` (plain and streamed),
`messages.stream`, `messages.parse`, `count_tokens`, `with_raw_response`, `with_streaming_response`, `beta.*`,
and the Bedrock and Vertex clients, whose resources copy the methods but not the funnel:

- `SyncAPIClient.request` / `AsyncAPIClient.request`: one call, with all its retries. The call span starts here,
  is current while the SDK works, and ends here unless a body remains to be read.
- `SyncAPIClient._attempt_request` / `AsyncAPIClient._attempt_request`: one HTTP attempt, inside the SDK's retry
  loop and below any middleware, so it sees every attempt even with the application's own `http_client`.
  Each attempt is recorded (`claude_otel._attempts`), and the call's trace context is sent with it. (Not a middleware of the SDK's: adding one to
  every client would change `client.middleware`, which applications read and copy.)
- `BaseClient._calculate_retry_timeout`: the wait the SDK chose before its next attempt.
- `Stream.__stream__` / `AsyncStream.__stream__`: the parsing of a body into events.
- `BaseClient._tracer` (SDK ≥ 1.14): the SDK's own tracing, which claude_otel replaces for the calls it traces
  (never two spans for one call), and leaves alone for every other call.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any

import wrapt
from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagate import inject
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from . import _batches
from . import _semconv as sc
from ._attribution import current as current_attribution
from ._attribution import without_attribution
from ._boundary import never_raises
from ._call import Call, Request, Settings
from ._metrics import metric_attributes
from ._observe import ADOPTED, CALL_ATTRIBUTE, BodyWrapper, Outcome, observe_async_events, observe_events
from ._request import beta_header, chat_request_attributes
from ._response import MessageReader
from .version import __version__

log = logging.getLogger("claude_otel")

SCOPE = "claude_otel"

_CURRENT_CALL: ContextVar[Call | None] = ContextVar("claude_otel_call", default=None)
"""The `Call` the SDK works on in this thread or task. A context variable of its own, beside the call span in the
OpenTelemetry context: it is read by the SDK's `_tracer`, each attempt and each retry, and reading it costs a
fraction of a lookup in the OpenTelemetry context."""

_OPERATIONS = {"/v1/messages": sc.OPERATION_CHAT, "/v1/messages/count_tokens": sc.OPERATION_COUNT_TOKENS}
"""The `POST` operations that claude_otel traces, by the path the SDK's resources ask for (platform clients too);
and the Message Batches routes (`claude_otel._batches.route`)."""

_LEGACY_PROVIDERS = {
    "AnthropicBedrock": sc.PROVIDER_AWS_BEDROCK,
    "AsyncAnthropicBedrock": sc.PROVIDER_AWS_BEDROCK,
    "AnthropicVertex": sc.PROVIDER_GCP_VERTEX_AI,
    "AsyncAnthropicVertex": sc.PROVIDER_GCP_VERTEX_AI,
}
"""The platform of a client of an SDK older than 1.14, whose clients do not say it themselves."""


class Hooks:
    """The hooks, bound to their tracer and settings, and the SDK objects they replace while they are applied."""

    def __init__(self, tracer_provider: trace.TracerProvider | None, propagate: bool, settings: Settings) -> None:
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self._client_tracers: dict[int, tuple[object, Tracer]] = {}
        self._propagate = propagate
        self._settings = settings
        self._provider_by_type: dict[type, str] = {}
        self._originals: list[tuple[object, str, object]] = []
        self._bodies: BodyWrapper | None = None
        self._streams: tuple[type, ...] = ()
        """The SDK's `Stream` and `AsyncStream`."""

    # --- applying ---------------------------------------------------------------------------------------------------

    def apply(self) -> None:
        """Wraps the SDK's funnel. Idempotent; the caller has checked that the SDK has what is wrapped."""
        from anthropic import _base_client, _streaming

        self._bodies = BodyWrapper(_httpx_module(_base_client))
        self._streams = (_streaming.Stream, _streaming.AsyncStream)
        self._wrap(_base_client.SyncAPIClient, "request", self._request)
        self._wrap(_base_client.AsyncAPIClient, "request", self._request_async)
        self._wrap(_base_client.SyncAPIClient, "_attempt_request", self._attempt)
        self._wrap(_base_client.AsyncAPIClient, "_attempt_request", self._attempt_async)
        self._wrap(_base_client.BaseClient, "_calculate_retry_timeout", self._retry_timeout)
        self._wrap(_streaming.Stream, "__stream__", self._stream)
        self._wrap(_streaming.AsyncStream, "__stream__", self._stream_async)
        for stream_type in self._streams:
            if "close" in stream_type.__dict__:
                self._wrap(stream_type, "close", self._stream_close)
        sdk_tracer = _base_client.BaseClient.__dict__.get("_tracer")
        if isinstance(sdk_tracer, property) and sdk_tracer.fget is not None:
            self._replace(_base_client.BaseClient, "_tracer", _without_sdk_span(sdk_tracer))

    def remove(self) -> None:
        """Puts back every object `apply` replaced: the SDK is as it was, to the same function objects."""
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)

    def _wrap(self, owner: type, name: str, wrapper: Callable[..., Any]) -> None:
        original = owner.__dict__[name]
        self._replace(owner, name, wrapt.FunctionWrapper(original, wrapper))

    def _replace(self, owner: type, name: str, replacement: object) -> None:
        self._originals.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    # --- calls ------------------------------------------------------------------------------------------------------

    @never_raises("start the span of an API call", None)
    def _start(self, client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        """The `Call` for a request that claude_otel traces, with its span started; `None` for any other request,
        and for every request made while OpenTelemetry instrumentation is suppressed (`suppress_instrumentation()`,
        as exporters and frameworks use it): no span, no metrics, no trace context sent.

        Never raises: a call that cannot be traced goes on untraced.
        """
        if not is_instrumentation_enabled():
            return None
        options = args[1] if len(args) > 1 else kwargs["options"]
        method = options.method.upper()
        url = options.url
        operation = _OPERATIONS.get(url.partition("?")[0]) if method == "POST" else None
        batch = _batches.route(method, url) if operation is None else None
        if batch is not None:
            operation = batch.operation
        elif operation is None:
            return None
        streams = bool(kwargs.get("stream", False))
        body = options.json_data
        extra_json = getattr(options, "extra_json", None)
        if extra_json and isinstance(body, dict):
            body = {**body, **extra_json}  # `extra_body`, which the SDK merges into the body after this.
        sdk_options = getattr(client, "_open_telemetry", None)  # SDK >= 1.14: the client's resolved option.
        attributes = self._request_attributes(operation, body, streams, batch)
        attributes.update(self._client_attributes(client, options, method, batch, sdk_options))
        headers_beta = beta_header(getattr(client, "_custom_headers", None), options.headers)
        if headers_beta is not None:
            attributes[sc.ANTHROPIC_BETA] = headers_beta
        attribution = current_attribution()
        metric_base = metric_attributes(
            operation, attributes, self._settings.guard.guard(attribution) if attribution else {}
        )
        attributes.update(attribution)  # Spans keep the real values; metrics the guarded ones.
        model = attributes.get(sc.GEN_AI_REQUEST_MODEL)
        request = Request(
            operation=operation,
            model=model if isinstance(model, str) else None,
            streams=streams,
            propagate=self._propagate and _sdk_would_propagate(sdk_options),
            max_retries=_max_retries(client, options),
            attempt_attributes={
                sc.HTTP_REQUEST_METHOD: method,
                sc.SERVER_ADDRESS: attributes[sc.SERVER_ADDRESS],
                sc.SERVER_PORT: attributes[sc.SERVER_PORT],
            },
            metric_base=metric_base,
        )
        tracer = self._tracer_for(sdk_options)
        if batch is None:
            span = tracer.start_span(f"{operation} {model}" if model else operation, kind=SpanKind.CLIENT, attributes=attributes)
            content = self._settings.content
            recorder = content.recorder(span, body, sdk_options) if content is not None and operation == sc.OPERATION_CHAT else None
            return Call(span, tracer, self._settings, request, MessageReader(request, recorder))
        creation = self._settings.batches.creation(batch.batch_id) if batch.batch_id is not None else None
        span = tracer.start_span(
            sc.SPAN_NAME_BATCHES_PREFIX + operation,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            # The results of a batch created in this process link to its creation (another trace, usually).
            links=[Link(creation[0])] if creation is not None and operation == sc.OPERATION_BATCHES_RESULTS else None,
        )
        reader = _batches.BatchReader(operation, batch.batch_id, attribution, self._settings, span.get_span_context())
        return Call(span, tracer, self._settings, request, reader)

    @staticmethod
    def _request_attributes(
        operation: str, body: object, streams: bool, batch: _batches.BatchRoute | None
    ) -> dict[str, AttributeValue]:
        """The attributes the request's body gives the call span."""
        if batch is not None:
            return _batches.request_attributes(operation, body, batch.batch_id)
        if operation == sc.OPERATION_CHAT:
            attributes = chat_request_attributes(body, streams)
            attributes[sc.GEN_AI_OPERATION_NAME] = sc.OPERATION_CHAT
            return attributes
        model = body.get("model") if isinstance(body, dict) else None
        return {sc.GEN_AI_REQUEST_MODEL: model} if isinstance(model, str) else {}

    def _client_attributes(
        self, client: Any, options: Any, method: str, batch: _batches.BatchRoute | None, sdk_options: object
    ) -> dict[str, AttributeValue]:
        base_url = client.base_url
        attributes: dict[str, AttributeValue] = {
            sc.SERVER_ADDRESS: base_url.host,
            sc.SERVER_PORT: base_url.port or (80 if base_url.scheme == "http" else 443),
            sc.GEN_AI_PROVIDER_NAME: self._provider(type(client)),
            sc.HTTP_REQUEST_METHOD: method,
            sc.HTTP_ROUTE: batch.template if batch is not None else getattr(options, "span_route", None) or options.url.partition("?")[0],
        }
        if isinstance(sdk_options, Mapping):
            conversation_id = sdk_options.get("conversation_id")
            if isinstance(conversation_id, str):
                attributes[sc.GEN_AI_CONVERSATION_ID] = conversation_id
        return attributes

    def _provider(self, client_type: type) -> str:
        provider = self._provider_by_type.get(client_type)
        if provider is None:
            provider = getattr(client_type, "_gen_ai_provider_name", None)
            if not isinstance(provider, str):
                names = (cls.__name__ for cls in client_type.__mro__)
                provider = next((_LEGACY_PROVIDERS[n] for n in names if n in _LEGACY_PROVIDERS), sc.PROVIDER_ANTHROPIC)
            self._provider_by_type[client_type] = provider
        return provider

    def _tracer_for(self, sdk_options: object) -> Tracer:
        """Ours, or one of the tracer provider that the application gave the client for the SDK's own spans."""
        provider = sdk_options.get("tracer_provider") if isinstance(sdk_options, Mapping) else None
        if provider is None:
            return self._tracer
        cached = self._client_tracers.get(id(provider))
        if cached is None or cached[0] is not provider:
            cached = (provider, provider.get_tracer(SCOPE, __version__))
            self._client_tracers[id(provider)] = cached
        return cached[1]

    def _request(self, wrapped: Callable[..., Any], client: Any, args: Any, kwargs: Any) -> Any:
        call = self._start(client, args, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = context.attach(trace.set_span_in_context(call.span))
        current = _CURRENT_CALL.set(call)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as err:
            call.end(err)
            raise
        finally:
            _forget_current(current)
            context.detach(token)
        self._returned(call, result)
        return result

    async def _request_async(self, wrapped: Callable[..., Any], client: Any, args: Any, kwargs: Any) -> Any:
        call = self._start(client, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = context.attach(trace.set_span_in_context(call.span))
        current = _CURRENT_CALL.set(call)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as err:
            call.end(err)
            raise
        finally:
            _forget_current(current)
            context.detach(token)
        self._returned(call, result)
        return result

    def _returned(self, call: Call, result: Any) -> None:
        """Hands the result to the call, which ends unless a body remains to be read. A stream whose body was read
        before the call returned (no body left to watch) is adopted: its events end the call. Never raises."""
        try:
            if call.observer.body is None and isinstance(result, self._streams):
                _adopt(call, result)
        except Exception:
            log.debug("claude_otel: could not observe a stream over a body read early", exc_info=True)
        call.returned(result)

    # --- attempts ---------------------------------------------------------------------------------------------------

    def _attempt(self, wrapped: Callable[..., Any], client: Any, args: Any, kwargs: Any) -> Any:
        call = _CURRENT_CALL.get()
        if not isinstance(call, Call):
            return wrapped(*args, **kwargs)
        self._before_attempt(call, args, kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as err:
            call.attempt_failed(err)
            raise
        self._after_attempt(call, result)
        return result

    async def _attempt_async(self, wrapped: Callable[..., Any], client: Any, args: Any, kwargs: Any) -> Any:
        call = _CURRENT_CALL.get()
        if not isinstance(call, Call):
            return await wrapped(*args, **kwargs)
        self._before_attempt(call, args, kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as err:
            call.attempt_failed(err)
            raise
        self._after_attempt(call, result)
        return result

    @never_raises("write the trace context into a request", None)
    def _before_attempt(self, call: Call, args: Any, kwargs: Any) -> None:
        """Records the attempt and writes the trace context into its headers: the call span's for the first attempt,
        for a retry its own span's, started now. Never raises."""
        call.attempt_sent()
        if not call.request.propagate:
            return
        carrier = call.carrier
        if carrier is None:
            # The call span's context (current here) and baggage, the same for every first attempt.
            carrier = call.carrier = {}
            inject(carrier, context=without_attribution())
        if call.attempts > 1 and carrier:
            # A retry: what the API traces of it nests under its own span (`claude_otel._attempts`).
            span = call.start_attempt_span()
            carrier = {}
            inject(carrier, context=trace.set_span_in_context(span, without_attribution() or context.get_current()))
        if carrier:
            # `options` is the SDK's copy for this attempt; its headers are replaced, never mutated, since the
            # mapping can be the application's own `extra_headers`. Before any signing (Bedrock), which then
            # covers them.
            options = args[0] if args else kwargs["options"]
            headers = options.headers
            options.headers = {**headers, **carrier} if isinstance(headers, Mapping) else carrier

    @never_raises("observe the body of a response", None)
    def _after_attempt(self, call: Call, result: Any) -> None:
        """Records the attempt's response; an unread successful body gets a wrapper that ends the call. Never raises."""
        response = result[0]
        call.attempt_returned(response)
        if response.is_success and not response.is_closed and self._bodies is not None:
            call.observer.sink = call.body_sink(response.headers.get("content-type", ""))
            call.observer.body = response.stream = self._bodies.wrap(response.stream, call)

    def _retry_timeout(self, wrapped: Callable[..., Any], client: Any, args: Any, kwargs: Any) -> Any:
        seconds = wrapped(*args, **kwargs)
        call = _CURRENT_CALL.get()
        if isinstance(call, Call):
            call.retry_scheduled(seconds)
        return seconds

    # --- streams ----------------------------------------------------------------------------------------------------

    def _stream(self, wrapped: Callable[..., Any], stream: Any, args: Any, kwargs: Any) -> Any:
        events = wrapped(*args, **kwargs)
        call = _call_of(stream)
        return events if call is None else observe_events(events, call)

    def _stream_close(self, wrapped: Callable[..., Any], stream: Any, args: Any, kwargs: Any) -> Any:
        """The application closed a stream (`AsyncStream.close` too: what it returns is awaited as it is). Of an
        adopted stream, that ends its call: no body wrapper is there to see it."""
        try:
            call = _READ_BODIES.get(stream.response)
            if call is not None:
                call.observer.stream_closed(call)
        except Exception:
            log.debug("claude_otel: could not record the close of a stream", exc_info=True)
        return wrapped(*args, **kwargs)

    def _stream_async(self, wrapped: Callable[..., Any], stream: Any, args: Any, kwargs: Any) -> Any:
        events = wrapped(*args, **kwargs)
        call = _call_of(stream)
        return events if call is None else observe_async_events(events, call)


@never_raises("reset the current call", None)
def _forget_current(token: Token[Call | None]) -> None:
    """Puts `_CURRENT_CALL` back as it was before the call. Never raises: a token from another context (a coroutine
    driven across contexts) leaves the variable as it is, as `context.detach` does for the span."""
    _CURRENT_CALL.reset(token)


def _sdk_would_propagate(sdk_options: object) -> bool:
    """Whether the SDK itself (>= 1.14: its resolved `open_telemetry` option) would send trace context for a client:
    not with `propagation` off, and not with its tracing off (`open_telemetry=False`, `traces` disabled,
    `ANTHROPIC_OPEN_TELEMETRY=false`), which leaves it no span to send. claude_otel still traces such a client, but
    sends the API nothing the SDK would not."""
    if not isinstance(sdk_options, Mapping):
        return True  # Before 1.14: no such option; claude_otel's own `propagate` decides.
    traces = sdk_options.get("traces")
    return sdk_options.get("propagation", True) is not False and not (isinstance(traces, Mapping) and traces.get("enabled") is False)


@never_raises("read the retries allowed", None)
def _max_retries(client: Any, options: Any) -> int | None:
    """How many retries the SDK allows the call: the request's own option, else the client's."""
    return int(options.get_max_retries(client.max_retries))


def _call_of(stream: Any) -> Call | None:
    """The `Call` whose body `stream` parses, unless another stream already parses it.

    Usually the body's wrapper holds it. A stream over a body that was read before the call returned has none: a
    response made from bytes, or one that a middleware put in the place of the response it got (replaying, caching).
    The `Stream` is then made inside the call, which has no body left to watch: it is the call being made, and
    what the application reads of this stream ends it, or its being dropped unread."""
    response = getattr(stream, "response", None)
    call = getattr(getattr(response, "stream", None), CALL_ATTRIBUTE, None)
    if call is None:
        try:
            call = _READ_BODIES.get(response)
            if call is None:
                # The SDKs that parse from `Stream.__init__` (before 2.x) do it inside the call.
                current = _CURRENT_CALL.get()
                if isinstance(current, Call) and current.observer.body is None and not current.handed_over and _adopt(current, stream):
                    call = current
        except Exception:  # A stand-in response that takes no weak reference, say: the stream goes unobserved.
            log.debug("claude_otel: could not find the call of a stream", exc_info=True)
            return None
    return call if isinstance(call, Call) and not call.observer.parsing else None


_READ_BODIES: weakref.WeakKeyDictionary[Any, Call] = weakref.WeakKeyDictionary()
"""The responses whose bodies were read before their call returned, and their calls (`_adopt`)."""


def _adopt(call: Call, stream: Any) -> bool:
    """Makes `stream` (over a body read before the call returned) what ends `call`: its events as the application
    reads them, or its being dropped unread. False when it cannot (then the call ends when it returns)."""
    try:
        weakref.finalize(stream, _dropped_unread, call)
        _READ_BODIES[stream.response] = call
    except (TypeError, AttributeError):
        return False
    call.observer.body = ADOPTED  # Not the stream: a call that held it would keep it from ever being dropped.
    return True


def _dropped_unread(call: Call) -> None:
    """A stream the application dropped; if it read none of it, it abandoned the call (else the call has ended)."""
    call.end(None, Outcome.ABANDONED)


def _without_sdk_span(sdk_tracer: property) -> property:
    """The SDK's `_tracer` property, answering `None` (no span) while claude_otel traces the call."""
    fget = sdk_tracer.fget
    assert fget is not None

    def _tracer(client: Any) -> Any:
        if _CURRENT_CALL.get() is not None:
            return None
        return fget(client)

    return property(_tracer, doc=sdk_tracer.__doc__)


def _httpx_module(base_client: Any) -> Any:
    """The HTTP library of the installed SDK: `httpx2` from 1.0 on, `httpx` before."""
    return getattr(base_client, "httpx2", None) or base_client.httpx
