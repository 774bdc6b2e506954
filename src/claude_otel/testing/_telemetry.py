"""API tracing, as the simulator emulates it: the Admin API's telemetry destinations, and the server spans it
delivers to them.

`/v1/organizations/telemetry_destinations` (create, list, retrieve, update, delete, `/{id}/test`) in the shapes of
the SDK's `client.beta.organization.telemetry_destinations`, with an admin key (`sk-ant-admin...`). Header values
are write-only: reads show `header_names`. `test` sends one `anthropic.test` span, once, and answers 200 with
`success` or `failure` and the reason.

For each message request it answers, the simulator delivers to every enabled destination whose traces are on what
Anthropic's span reference describes: a SERVER span named after the API method (`anthropic.messages.create`), and
an INTERNAL span per server tool it ran (`anthropic.tool_use web_search`), under resource `service.name`
`claude-platform` and scope `com.anthropic.claude-platform`, with GenAI attributes (token usage too: the trap of
counting it twice, docs/api-tracing.md). Their parent is the request's W3C `traceparent`: one trace with the
client's spans. Deliveries are OTLP/HTTP protobuf to the destination's URL + `/v1/traces` (or `traces.endpoint_url`
as given), with its headers, batched in the background as the API delivers them after the fact; `flush()` waits
for them.

Unlike the API, the simulator takes an `https` URL on any host and port (a test's collector listens on loopback),
and trusts the CA in `ca_file` for it.
"""

from __future__ import annotations

import itertools
import threading
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

PATH = "/v1/organizations/telemetry_destinations"
_RESERVED = ("host", "cookie", "user-agent")
_RESERVED_PREFIXES = ("content-", "proxy-", "x-forwarded-", "anthropic-")
_MAX_DESTINATIONS = 10
_SERVICE = "claude-platform"
_SCOPE = "com.anthropic.claude-platform"
_TRACES_DEFAULTS = {"content_mode": "metadata_only", "enabled": True, "endpoint_url": None, "max_content_bytes": None}


class _Invalid(ValueError):
    """A request the API would refuse: 400 with this message."""


@dataclass
class _Destination:
    id: str
    endpoint_url: str
    headers: dict[str, str]
    display_name: str | None
    traces: dict[str, Any]
    workspaces: dict[str, Any]
    state: dict[str, Any] = field(default_factory=lambda: {"type": "enabled"})
    created_at: str = ""
    updated_at: str = ""
    health: dict[str, Any] = field(default_factory=lambda: {"last_error": None, "last_error_at": None, "last_success_at": None})
    provider: Any = None
    """The OpenTelemetry tracer provider that delivers to it (made at the first delivery)."""

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "type": "telemetry_destination", "created_at": self.created_at, "updated_at": self.updated_at,
                "delivery_health": self.health, "display_name": self.display_name, "endpoint_url": self.endpoint_url,
                "header_names": sorted(self.headers), "state": self.state, "traces": self.traces,
                "workspaces": {"type": self.workspaces.get("type", "all")}}  # fmt: skip

    @property
    def traces_url(self) -> str:
        return self.traces.get("endpoint_url") or self.endpoint_url.rstrip("/") + "/v1/traces"


@dataclass
class Telemetry:
    """The organization's telemetry destinations, and the deliveries to them. Thread-safe."""

    ca_file: str | None = None
    """A CA certificate (PEM) to trust for the destinations' `https` URLs, besides the system's."""
    _destinations: dict[str, _Destination] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the Admin API --------------------------------------------------------------------------------------------

    def route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and body of an Admin API request under `PATH`."""
        rest = [part for part in path[len(PATH) :].split("/") if part]
        try:
            if not rest and method == "POST":
                return 200, self._create(body).json()
            if not rest and method == "GET":
                with self._lock:
                    found = sorted(self._destinations.values(), key=lambda d: d.created_at + d.id, reverse=True)
                return 200, {"data": [destination.json() for destination in found], "next_page": None}
            with self._lock:
                destination = self._destinations.get(rest[0])
            if destination is None:
                return 404, _error("not_found_error", f"No telemetry destination {rest[0]}.")
            if len(rest) == 1 and method == "GET":
                return 200, destination.json()
            if len(rest) == 1 and method == "POST":
                return 200, self._update(destination, body).json()
            if len(rest) == 1 and method == "DELETE":
                with self._lock:
                    self._destinations.pop(destination.id, None)
                _shutdown(destination)
                return 200, {"id": destination.id, "type": "telemetry_destination_deleted"}
            if rest[1:] == ["test"] and method == "POST":
                return 200, {"type": "telemetry_destination_test", "result": self._test(destination)}
        except _Invalid as err:
            return 400, _error("invalid_request_error", str(err))
        return 404, _error("not_found_error", f"No route for {method} {path}")

    def _create(self, body: dict[str, Any]) -> _Destination:
        url = _url(body.get("endpoint_url"))
        headers = _headers(body.get("headers") or {})
        workspaces = body.get("workspaces")
        if not isinstance(workspaces, dict) or workspaces.get("type") not in ("all", "include", "exclude"):
            raise _Invalid("workspaces: must be {type: all} or {type: include|exclude, workspace_ids: [...]}")
        now = _now()
        with self._lock:
            if len(self._destinations) >= _MAX_DESTINATIONS:
                raise _Invalid(f"an organization can have at most {_MAX_DESTINATIONS} destinations")
            destination = _Destination(f"tdst_sim{next(self._ids):06d}", url, headers, body.get("display_name"),
                                       _traces(body.get("traces"), url), workspaces, created_at=now, updated_at=now)  # fmt: skip
            self._destinations[destination.id] = destination
        return destination

    def _update(self, destination: _Destination, body: dict[str, Any]) -> _Destination:
        with self._lock:
            if "endpoint_url" in body:
                destination.endpoint_url = _url(body["endpoint_url"])
            if "headers" in body:  # Merged by name; null removes a header, a null map removes them all.
                merged = {} if body["headers"] is None else {**destination.headers}
                for name, value in (body["headers"] or {}).items():
                    if value is None:
                        merged.pop(name.lower(), None)
                    else:
                        merged.update(_headers({name: value}))
                destination.headers = merged
            if "traces" in body:
                destination.traces = _traces(body["traces"], destination.endpoint_url)
            if "state" in body:
                kind = (body["state"] or {}).get("type")
                if kind not in ("enabled", "disabled"):
                    raise _Invalid("state: type must be enabled or disabled")
                destination.state = {"type": "enabled"} if kind == "enabled" else {"type": "disabled", "reason": {"type": "caller"}}
            for name in ("display_name", "workspaces"):
                if name in body:
                    setattr(destination, name, body[name])
            destination.updated_at = _now()
        _shutdown(destination)  # The next delivery goes where, and with what, it says now.
        return destination

    def _test(self, destination: _Destination) -> dict[str, Any]:
        """Sends one `anthropic.test` span, once and without retries, and says how it went (the API answers 200
        either way)."""
        import ssl
        import urllib.error
        import urllib.request

        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        spans = InMemorySpanExporter()
        provider = TracerProvider(resource=_resource())
        provider.add_span_processor(SimpleSpanProcessor(spans))
        provider.get_tracer(_SCOPE).start_span("anthropic.test").end()
        body = encode_spans(spans.get_finished_spans()).SerializeToString()
        request = urllib.request.Request(destination.traces_url, body, method="POST",
                                         headers={**destination.headers, "content-type": "application/x-protobuf"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context(cafile=self.ca_file)):
                pass
        except urllib.error.HTTPError as err:
            error = f"HTTP error (status {err.code})"
        except (urllib.error.URLError, OSError) as err:
            error = f"no answer: {getattr(err, 'reason', err)}"
        else:
            destination.health["last_success_at"] = _now()
            return {"type": "success"}
        destination.health.update(last_error=error, last_error_at=_now())
        return {"type": "failure", "error": error}

    # --- deliveries -----------------------------------------------------------------------------------------------

    def deliver(self, request_headers: dict[str, str], request_id: str, model: str, usage: dict[str, Any],
                stop_reason: str | None, started: float, ended: float) -> None:  # fmt: skip
        """The server spans of one answered message request, to every enabled destination with traces on. Never
        raises: a delivery that fails is the destination's health, not the answer's."""
        with self._lock:
            targets = [d for d in self._destinations.values() if d.state.get("type") == "enabled" and d.traces.get("enabled", True)]
        for destination in targets:
            try:
                self._spans(destination, request_headers, request_id, model, usage, stop_reason, started, ended)
            except Exception as err:  # noqa: BLE001 - the simulator keeps answering
                destination.health.update(last_error=str(err), last_error_at=_now())

    def _spans(self, destination: _Destination, request_headers: dict[str, str], request_id: str, model: str,
               usage: dict[str, Any], stop_reason: str | None, started: float, ended: float) -> None:  # fmt: skip
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(request_headers)
        tracer = self._provider(destination).get_tracer(_SCOPE)
        attributes = {
            "gen_ai.provider.name": "anthropic", "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.response.model": model, "anthropic.request.id": request_id,
            "gen_ai.usage.input_tokens": int(usage.get("input_tokens") or 0),
            "gen_ai.usage.output_tokens": int(usage.get("output_tokens") or 0),
        }  # fmt: skip
        if stop_reason:
            attributes["gen_ai.response.finish_reasons"] = [stop_reason]
        span = tracer.start_span("anthropic.messages.create", context=parent, kind=trace.SpanKind.SERVER,
                                 attributes=attributes, start_time=int(started * 1e9))  # fmt: skip
        searches = int(((usage.get("server_tool_use") or {}).get("web_search_requests")) or 0)
        inside = trace.set_span_in_context(span)
        for number in range(searches):
            tool_start = started + (ended - started) * (number + 1) / (searches + 2)
            tool = tracer.start_span("anthropic.tool_use web_search", context=inside, kind=trace.SpanKind.INTERNAL,
                                     attributes={"gen_ai.tool.name": "web_search", "gen_ai.tool.type": "extension",
                                                 "anthropic.request.id": request_id},
                                     start_time=int(tool_start * 1e9))  # fmt: skip
            tool.end(end_time=int((tool_start + (ended - started) / (searches + 2)) * 1e9))
        span.end(end_time=int(ended * 1e9))

    def flush(self) -> None:
        """Waits until every span so far has been delivered (or has failed to be)."""
        with self._lock:
            providers = [d.provider for d in self._destinations.values() if d.provider is not None]
        for provider in providers:
            provider.force_flush()

    def close(self) -> None:
        with self._lock:
            destinations = list(self._destinations.values())
        for destination in destinations:
            _shutdown(destination)

    def _provider(self, destination: _Destination) -> Any:
        with self._lock:
            if destination.provider is None:
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import BatchSpanProcessor

                provider = TracerProvider(resource=_resource())
                exporter = _health_reporting_exporter(destination, self._exporter_arguments(destination))
                provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
                destination.provider = provider
            return destination.provider

    def _exporter_arguments(self, destination: _Destination) -> dict[str, Any]:
        import requests

        # Not the environment's: with REQUESTS_CA_BUNDLE set, requests would verify with it, whatever the exporter's
        # `certificate_file` says (psf/requests#3829).
        session = requests.Session()
        session.trust_env = False
        return {"endpoint": destination.traces_url, "headers": dict(destination.headers), "certificate_file": self.ca_file,
                "session": session}  # fmt: skip



def _health_reporting_exporter(destination: _Destination, arguments: dict[str, Any]) -> Any:
    """An OTLP/HTTP exporter that keeps the destination's `delivery_health` up to date."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    class Exporter(OTLPSpanExporter):
        def export(self, spans: Any) -> Any:
            result = super().export(spans)
            if result.name == "SUCCESS":
                destination.health["last_success_at"] = _now()
            else:
                destination.health.update(last_error="delivery failed", last_error_at=_now())
            return result

    return Exporter(**arguments)


def _shutdown(destination: _Destination) -> None:
    provider, destination.provider = destination.provider, None
    if provider is not None:
        provider.shutdown()


def _resource() -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": _SERVICE})


def _url(value: object) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise _Invalid("endpoint_url: a URL of at most 2,048 characters is required")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise _Invalid("endpoint_url: must be an https URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise _Invalid("endpoint_url: must not have a query string, a fragment, or a username and password")
    return value


def _headers(headers: object) -> dict[str, str]:
    if not isinstance(headers, dict) or len(headers) > 20:
        raise _Invalid("headers: at most 20 headers")
    found = {}
    for name, value in headers.items():
        lowered = str(name).lower().replace("_", "-")
        if lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIXES):
            raise _Invalid(f"headers: {name!r} is a reserved name")
        if not isinstance(value, str) or value != value.strip() or not value.isprintable():
            raise _Invalid(f"headers: the value of {name!r} must be printable ASCII, not starting or ending with a space")
        found[str(name).lower()] = value
    return found


def _traces(value: object, url: str) -> dict[str, Any]:
    traces = {**_TRACES_DEFAULTS, **(value if isinstance(value, dict) else {})}
    own = traces.get("endpoint_url")
    if own is not None:
        base, mine = urllib.parse.urlsplit(url), urllib.parse.urlsplit(_url(own))
        if (base.scheme, base.hostname, base.port) != (mine.scheme, mine.hostname, mine.port):
            raise _Invalid("traces.endpoint_url: must have the scheme, host and port of endpoint_url")
    return traces


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

