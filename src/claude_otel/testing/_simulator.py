"""A local simulator of the Anthropic Messages API: a real HTTP server on loopback that speaks the wire format.

It answers `POST /v1/messages` (JSON, or SSE with the real event sequence when `"stream": true`),
`POST /v1/messages/count_tokens`, `GET /v1/models` (the models of the bundled price table), the Message Batches
routes (`testing/_batches.py`), the Admin API's cost report of what it billed (`testing/_costs.py`), and the Vertex `:rawPredict` / `:streamRawPredict` and Bedrock `/invoke` /
`/invoke-with-response-stream` (AWS event stream) routes, with `request-id` and `anthropic-organization-id` on every
response, and the `anthropic-ratelimit-*` headers on every response of a model route (see `RateLimits`).

What a request gets is scripted by its `x-claude-sim` header (set it with the SDK's `extra_headers` or a client's
`default_headers`): a comma-separated list of steps, one per attempt, picked by the SDK's own
`x-stainless-retry-count` header, the last one repeating. So `"529,ok"` fails the first attempt with 529 and lets the
SDK's retry succeed, with no state in the server, whatever the concurrency. The steps:

    ok                  a normal answer (the default)
    end_turn | max_tokens | stop_sequence | tool_use | pause_turn | refusal | context_window
                        an answer with that stop reason (`refusal` has `stop_details.category` "cyber")
    cache               an answer whose usage has cache reads and 5m/1h cache writes
    web_search          an answer that searched the web once: `server_tool_use` and `web_search_tool_result` blocks
                        before the text, `usage.server_tool_use.web_search_requests` 1
                        (any answer to a request with `thinking` enabled reports thinking tokens)
    batch               an answer billed at the batch tier (`usage.service_tier` "batch")
    malformed           parseable but unexpected: no usage, an unknown stop reason, content block and event type
    400 ... 529         an error response with the API's error body (`retry-after` and `retry-after-ms` on 429 and 529)
    429:spend_limit     the spend-limit 429: `error.details.error_code` set, no `retry-after`
    error_event         HTTP 200, a few events, then an SSE `error` event (overloaded_error)
    drop                the connection closes: mid-stream for a stream, before any response otherwise
    truncate            HTTP 200, a few events, then the stream ends without `message_delta` / `message_stop`
    stall:S             waits S seconds before answering (for read timeouts)
    raw:KEY             the bytes registered with `Simulator.raw(...)`, which returned KEY, exactly as they are

On the Message Batches routes, the status codes, `stall` and (for results) `drop` apply.

A step may end in `+noretry` (adds `x-should-retry: false`). Every request is recorded in `Simulator.requests`.

The `x-claude-sim-usage` header, a JSON object, replaces fields of the answer's usage, for every billed line:
`{"server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 0}, "speed": "fast", "inference_geo": "us",
"iterations": [{"type": "compaction", "input_tokens": 2000, ...}]}` (a stream gets them in `message_start` and
again, as the API repeats its cumulative counts, in `message_delta`). Not an object: HTTP 400.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import _batches, _costs, _telemetry
from ._script import Script

SCENARIO_HEADER = "x-claude-sim"
USAGE_HEADER = "x-claude-sim-usage"
"""A JSON object of usage fields that replace those of the answer (`server_tool_use`, `speed`, `iterations`, ...)."""

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

STOP_REASONS = {
    "ok": "end_turn",
    "cache": "end_turn",
    "batch": "end_turn",
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "context_window": "model_context_window_exceeded",
    "malformed": "quantum_leap",
    "web_search": "end_turn",
}

_SEARCH = {"type": "server_tool_use", "id": "srvtoolu_sim_1", "name": "web_search", "input": {"query": "claude-otel"}}
_SEARCH_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_sim_1",
    "content": [{"type": "web_search_result", "url": "https://example.com/claude-otel", "title": "claude-otel",
                 "encrypted_content": "c2ltdWxhdGVk", "page_age": None}],
}  # fmt: skip
"""The blocks of the `web_search` step: the server's search, and its result, before the answer's text."""

_WORDS = ["Telemetry", "turns", "every", "call", "into", "a", "story", "an", "on-call", "engineer", "can", "read:", "which", "request", "failed,", "how", "often", "it", "was", "retried,", "what", "it", "cost,", "and", "how", "long", "the", "first", "token", "took", "to", "arrive."]


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the simulator received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    request_id: str


@dataclass(frozen=True)
class Step:
    name: str
    argument: str | None = None
    no_retry: bool = False

    @classmethod
    def parse(cls, text: str) -> Step:
        text = text.strip()
        no_retry = text.endswith("+noretry")
        text = text.removesuffix("+noretry")
        name, _, argument = text.partition(":")
        return cls(name or "ok", argument or None, no_retry)


@dataclass(frozen=True)
class RawResponse:
    """A response served byte for byte (the `raw:KEY` step): any status, headers and body, well-formed or not.

    The body goes out in `chunks`, each one HTTP chunk flushed on its own, so that a client reads them as separate
    reads (an SSE event split mid-line, say). `complete=False` closes the connection after the last chunk without the
    chunked encoding's end: the client sees the server hang up mid-body.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[bytes, ...]
    complete: bool


@dataclass(frozen=True)
class RateLimits:
    """The limits the simulator reports in the `anthropic-ratelimit-*` headers, per model, as the API does: requests,
    input tokens and output tokens per `period` (a minute, the API's), and `tokens`, the most restrictive of the two
    token limits. Each message request the simulator answers takes one request, its input tokens and its
    `max_tokens` (the API's own estimate until the answer is done) from the period that began with the model's first
    request in it; `reset` is that period's end. The simulator reports the limits, it does not enforce them: a request past them is
    answered all the same (script a 429 for a rate-limited answer)."""

    requests: int = 1000
    input_tokens: int = 400_000
    output_tokens: int = 80_000
    period: float = 60.0
    """Seconds."""


class _RateLimitWindows:
    """What each model has used of its `RateLimits` in the current period. Thread-safe."""

    def __init__(self, limits: RateLimits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._used: dict[str, tuple[float, int, int, int]] = {}
        """model -> (start of its period, requests, input tokens, output tokens used in it)."""

    def headers(self, model: str, body: dict[str, Any] | None) -> dict[str, str]:
        """The `anthropic-ratelimit-*` headers of a response for `model`, after taking what `body` uses (nothing
        when it is None: an error answer)."""
        limits, now = self._limits, time.time()
        with self._lock:
            start, requests, input_tokens, output_tokens = self._used.get(model, (now, 0, 0, 0))
            if now - start >= limits.period:
                start, requests, input_tokens, output_tokens = now, 0, 0, 0
            if body is not None:
                requests += 1
                input_tokens += _input_tokens(body)
                output_tokens += int(body.get("max_tokens") or 0)
            self._used[model] = (start, requests, input_tokens, output_tokens)
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + limits.period))
        remaining_input = max(0, limits.input_tokens - input_tokens)
        remaining_output = max(0, limits.output_tokens - output_tokens)
        kinds = {
            "requests": (limits.requests, max(0, limits.requests - requests)),
            "tokens": min((limits.input_tokens, remaining_input), (limits.output_tokens, remaining_output), key=lambda pair: pair[1]),
            "input-tokens": (limits.input_tokens, remaining_input),
            "output-tokens": (limits.output_tokens, remaining_output),
        }
        headers = {}
        for kind, (limit, remaining) in kinds.items():
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset
        return headers


@dataclass
class Simulator:
    """The simulator server. Use it as a context manager, or `start()` and `stop()` it.

    `retry_after` is the `retry-after` (seconds) sent with 429 and 529, `event_delay` the pause between SSE events
    and `first_byte_delay` the pause before a response (both in seconds), `reply_words` the length of answers.
    A Message Batch ends at its `batch_polls`-th retrieve, `batch_turnaround` seconds after its `created_at`; a batch
    create request over `max_batch_bytes` gets the API's 413. `script` says what requests without the `x-claude-sim`
    header get (`testing/_script.py`; `claude-otel simulate --script FILE`). `rate_limits` are the limits its
    `anthropic-ratelimit-*` headers report.
    """

    host: str = "127.0.0.1"
    port: int = 0
    retry_after: float = 0.01
    event_delay: float = 0.0
    first_byte_delay: float = 0.0
    reply_words: int = 12
    batch_polls: int = 2
    batch_turnaround: float = 1830.0
    max_batch_bytes: int = 256 * 1024 * 1024
    script: Script | None = None
    rate_limits: RateLimits = RateLimits()
    telemetry_ca: str | None = None
    """A CA certificate (PEM) to trust for the telemetry destinations' https URLs (a test collector's own)."""
    ledger: _costs.Ledger = field(default_factory=_costs.Ledger)
    """What the simulator billed, for its cost report (`testing/_costs.py`)."""
    telemetry: _telemetry.Telemetry = field(default_factory=_telemetry.Telemetry)
    """API tracing: the telemetry destinations, and the server spans delivered to them (`testing/_telemetry.py`)."""
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _raw: dict[str, RawResponse] = field(default_factory=dict, repr=False)
    _billed_batches: set[str] = field(default_factory=set, repr=False)

    @property
    def url(self) -> str:
        """The base URL to give the SDK client (`base_url=`)."""
        assert self._server is not None, "the simulator is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> Simulator:
        self.batches = _batches.BatchStore(self.batch_polls, self.batch_turnaround, self.max_batch_bytes)
        self.rate_limit_windows = _RateLimitWindows(self.rate_limits)
        self.telemetry.ca_file = self.telemetry_ca
        handler = type("Handler", (_Handler,), {"simulator": self})
        self._server = _Server((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="claude-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.telemetry.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def next_request_id(self) -> str:
        with self._lock:
            return f"req_sim_{next(self._ids):06d}"

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def raw(
        self,
        chunks: bytes | list[bytes],
        *,
        status: int = 200,
        content_type: str = "text/event-stream; charset=utf-8",
        headers: dict[str, str] | None = None,
        complete: bool = True,
    ) -> str:
        """Registers a response to serve as it is, and returns the key of its step: `scenario(f"raw:{key}")`.

        The simulator adds only `request-id` (unless `headers` has one) and the chunked encoding around `chunks`.
        """
        response_headers = {"content-type": content_type, **(headers or {})}
        response = RawResponse(
            status,
            tuple(response_headers.items()),
            (chunks,) if isinstance(chunks, bytes) else tuple(chunks),
            complete,
        )
        with self._lock:
            key = f"{next(self._ids):x}"
            self._raw[key] = response
        return key

    def forget(self, key: str) -> None:
        """Drops the response registered under `key`."""
        with self._lock:
            self._raw.pop(key, None)


class _Server(ThreadingHTTPServer):
    # Hundreds of clients may connect at once (a test of concurrency); the default backlog of 5 would make most of
    # them wait a second for their SYN to be sent again.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (an abandoned stream, a test's dropped connection) is no error of the simulator's.
        pass


class _Handler(BaseHTTPRequestHandler):
    simulator: Simulator
    protocol_version = "HTTP/1.1"
    server_version = "claude-sim/1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body waits for the client's delayed
    # ACK of the headers, some 40 ms per response on Linux loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # Quiet: tests and the demo print what matters.

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    rate_limit_headers: dict[str, str]
    """The `anthropic-ratelimit-*` headers of the response being sent; none until the request's model is known."""

    def _handle(self, method: str) -> None:
        sim = self.simulator
        self.rate_limit_headers = {}
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        received = time.time()
        request_id = sim.next_request_id()
        headers = {key.lower(): value for key, value in self.headers.items()}
        sim.record(RecordedRequest(method, self.path, headers, body, request_id))

        usage_fields = headers.get(USAGE_HEADER)
        if SCENARIO_HEADER not in headers and sim.script is not None:
            scripted, usage = sim.script.answer_for(self.path.partition("?")[0], headers, body, raw)
            step = Step.parse(scripted)
            if usage is not None and usage_fields is None:
                usage_fields = json.dumps(usage)
        else:
            steps = [Step.parse(text) for text in headers.get(SCENARIO_HEADER, "ok").split(",")]
            attempt = int(headers.get("x-stainless-retry-count", "0") or 0)
            step = steps[min(attempt, len(steps) - 1)]

        if step.name == "stall":
            time.sleep(float(step.argument or 5))
            step = Step("ok")
        elif sim.first_byte_delay:
            time.sleep(sim.first_byte_delay)

        if step.name == "raw":
            self._send_raw(sim._raw.get(step.argument or ""), request_id)
            return
        if not isinstance(body, dict):
            self._send_json(400, _error_body("invalid_request_error", "The request body is not valid JSON."), request_id)
            return
        path, _, query = self.path.partition("?")
        if path in (_costs.PATH, _costs.USAGE_PATH) or path.startswith(_telemetry.PATH):
            key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not key.startswith("sk-ant-admin"):  # The SDK sends an admin route's key as a bearer token.
                self._send_json(401, _error_body("authentication_error", "The Admin API needs an admin API key (sk-ant-admin...)."), request_id)
            elif path == _costs.PATH:
                self._send_json(*sim.ledger.report(urllib.parse.parse_qs(query), time.time()), request_id)
            elif path == _costs.USAGE_PATH:
                self._send_json(*sim.ledger.usage(urllib.parse.parse_qs(query), time.time()), request_id)
            else:
                self._send_json(*sim.telemetry.route(method, path, body), request_id)
            return
        if method == "GET" and (path == _MODELS or path.startswith(_MODELS + "/")):
            self._models(path, request_id)
            return
        if path.startswith(_batches.PREFIX):
            if step.name.isdigit():
                self._send_error(int(step.name), request_id, step)
            else:
                self._batch(method, path, body, len(raw), step, request_id)
            return
        model, streams = self._route(path, body) if method == "POST" else (None, False)
        if model is None:
            self._send_json(404, _error_body("not_found_error", f"No route for {method} {path}"), request_id)
            return

        answered = step.name != "drop" and not step.name.isdigit() and not path.endswith("/count_tokens")
        self.rate_limit_headers = sim.rate_limit_windows.headers(model, body if answered else None)
        if step.name.isdigit():
            self._send_error(int(step.name), request_id, step)
            return
        if step.name == "drop" and not streams:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if path.endswith("/count_tokens"):
            self._send_json(200, {"input_tokens": _input_tokens(body)}, request_id)
            return
        usage = _usage_override(usage_fields)
        if usage is None:
            self._send_json(400, _error_body("invalid_request_error", f"{USAGE_HEADER} must be a JSON object."), request_id)
        elif streams:
            self._send_stream(model, body, step, request_id, usage, headers, received)
        else:
            message = _message(model, body, step, sim.reply_words, complete=True, usage=usage)
            sim.ledger.bill(model, message.get("usage"))
            self._send_json(200, message, request_id)
            sim.telemetry.deliver(headers, request_id, model, message.get("usage") or {}, message.get("stop_reason"), received, time.time())

    def _batch(self, method: str, path: str, body: dict[str, Any], size: int, step: Step, request_id: str) -> None:
        """Answers the Message Batches routes (`testing/_batches.py`)."""
        store, base_url = self.simulator.batches, self.simulator.url
        rest = path[len(_batches.PREFIX) :].strip("/").split("/")
        batch_id, action = rest[0], (rest[1] if len(rest) > 1 else "")
        if method == "POST" and not batch_id:
            status, payload = store.create(body, size, base_url)
        elif method == "GET" and not batch_id:
            status, payload = store.list(base_url)
        elif method == "GET" and not action:
            status, payload = store.retrieve(batch_id, base_url)
        elif method == "POST" and action == "cancel":
            status, payload = store.cancel(batch_id, base_url)
        elif method == "DELETE" and not action:
            status, payload = store.delete(batch_id)
        elif method == "GET" and action == "results":
            reply_words = self.simulator.reply_words

            with self.simulator._lock:
                first_read = batch_id not in self.simulator._billed_batches
                self.simulator._billed_batches.add(batch_id)

            def answer(params: dict[str, Any], name: str) -> dict[str, Any]:
                model = str(params.get("model", "claude-unknown"))
                message = _message(model, params, Step(name), reply_words, complete=True, batch=True)
                if first_read:  # A batch's results are billed once, however often they are read.
                    self.simulator.ledger.bill(model, message.get("usage"), batch=True)
                return message

            status, payload = store.results(batch_id, answer)
            if status == 200:
                self._send_lines(payload, step, request_id)
                return
        else:
            status, payload = 404, _error_body("not_found_error", f"No route for {method} {path}")
        self._send_json(status, payload, request_id)

    def _models(self, path: str, request_id: str) -> None:
        """`GET /v1/models` (every model of the bundled price table, newest first, as one page) and
        `GET /v1/models/{id}`, in the API's shape."""
        models = _model_infos()
        if path == _MODELS:
            page = {"data": models, "has_more": False, "first_id": models[0]["id"] if models else None,
                    "last_id": models[-1]["id"] if models else None}  # fmt: skip
            self._send_json(200, page, request_id)
            return
        wanted = path[len(_MODELS) + 1 :]
        found = next((model for model in models if model["id"] == wanted), None)
        if found is None:
            self._send_json(404, _error_body("not_found_error", f"model: {wanted}"), request_id)
        else:
            self._send_json(200, found, request_id)

    def _send_lines(self, lines: list[bytes], step: Step, request_id: str) -> None:
        """A JSON Lines body, a line per chunk; `drop` closes the connection after the first line."""
        self.send_response(200)
        for key, value in self._headers(request_id, "application/binary").items():
            self.send_header(key, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index, line in enumerate(lines):
            if step.name == "drop" and index == 1:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._chunk(line)
        self.wfile.write(b"0\r\n\r\n")

    def _route(self, path: str, body: dict[str, Any]) -> tuple[str | None, bool]:
        """The model and whether to stream, for a route the simulator answers; `(None, False)` otherwise."""
        if path in ("/v1/messages", "/v1/messages/count_tokens"):
            return str(body.get("model", "claude-unknown")), bool(body.get("stream"))
        if "/publishers/anthropic/models/" in path:  # Vertex: the model is in the path, not the body.
            model_and_method = path.rsplit("/models/", 1)[1]
            model, _, method = model_and_method.partition(":")
            return model, method == "streamRawPredict"
        if path.startswith("/model/"):  # Bedrock: JSON, or the AWS event stream for `invoke-with-response-stream`.
            _, _, model, method = path.split("/", 3)
            if method in ("invoke", "invoke-with-response-stream"):
                return model, method == "invoke-with-response-stream"
        return None, False

    def _headers(self, request_id: str, content_type: str) -> dict[str, str]:
        return {
            "content-type": content_type,
            "request-id": request_id,
            "anthropic-organization-id": "org_sim",
            **self.rate_limit_headers,
        }

    def _send_json(self, status: int, payload: Any, request_id: str, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {**self._headers(request_id, "application/json"), **(extra or {})}.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, request_id: str, step: Step) -> None:
        extra: dict[str, str] = {}
        spend_limit = status == 429 and step.argument == "spend_limit"
        if status in (429, 529) and not spend_limit:
            # The API's header, and the SDK's finer-grained one, which the SDK reads first.
            extra["retry-after"] = f"{self.simulator.retry_after:g}"
            extra["retry-after-ms"] = f"{self.simulator.retry_after * 1000:g}"
        if step.no_retry:
            extra["x-should-retry"] = "false"
        error_type = ERROR_TYPES.get(status, "api_error")
        payload = _error_body(error_type, f"Simulated {status} {error_type}")
        if spend_limit:
            # The monthly spend cap: a 429 that no wait cures, so it comes without `retry-after`.
            payload["error"]["details"] = {"error_code": "enforced_spend_limit_reached"}
        payload["request_id"] = request_id
        self._send_json(status, payload, request_id, extra)

    def _send_raw(self, response: RawResponse | None, request_id: str) -> None:
        if response is None:
            self._send_json(500, _error_body("api_error", "No raw response is registered under this key."), request_id)
            return
        self.send_response(response.status)
        headers = dict(response.headers)
        if not any(key.lower() == "request-id" for key in headers):
            headers["request-id"] = request_id
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in response.chunks:
            if chunk:  # An empty chunk would be the end of the body.
                self._chunk(chunk)
        if response.complete:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send_stream(
        self, model: str, body: dict[str, Any], step: Step, request_id: str, usage: dict[str, Any], headers: dict[str, str], received: float
    ) -> None:
        bedrock = self.path.startswith("/model/")
        content_type = "application/vnd.amazon.eventstream" if bedrock else "text/event-stream; charset=utf-8"
        self.send_response(200)
        for key, value in self._headers(request_id, content_type).items():
            self.send_header(key, value)
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        events = list(_events(model, body, step, self.simulator.reply_words, usage))
        billed: dict[str, Any] = {}  # The usage the stream has delivered: what it is billed, however it ends.
        stop_reason = None
        try:
            for index, (name, data) in enumerate(events):
                if step.name == "drop" and index == 4:
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if index and self.simulator.event_delay:
                    time.sleep(self.simulator.event_delay)
                if bedrock:
                    self._chunk(_aws_event_stream_message(data))
                else:
                    self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                if name == "message_start":
                    billed.update(data["message"].get("usage") or {})
                elif name == "message_delta":
                    billed.update(data.get("usage") or {})
                    stop_reason = data["delta"].get("stop_reason")
            self.wfile.write(b"0\r\n\r\n")
        finally:
            self.simulator.ledger.bill(model, billed)
            self.simulator.telemetry.deliver(headers, request_id, model, billed, stop_reason, received, time.time())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


_MODELS = "/v1/models"


def _model_infos() -> list[dict[str, Any]]:
    """The models of the bundled price table as the API lists them (`anthropic.types.ModelInfo`), newest first."""
    from .._prices import PriceTable

    rows = PriceTable.load(environment=False).rows
    infos = [
        {
            "type": "model",
            "id": model,
            "display_name": " ".join(part.capitalize() for part in model.split("-")),
            "created_at": f"{_date(price.effective_date)}T00:00:00Z",
        }
        for model, price in rows.items()
    ]
    return sorted(infos, key=lambda info: (info["created_at"], info["id"]), reverse=True)


def _date(text: str) -> str:
    """`text` if it is a date (YYYY-MM-DD), else one that is: `created_at` must parse."""
    return text if len(text) == 10 and text[4] == text[7] == "-" and text.replace("-", "").isdigit() else "2024-01-01"


def _aws_event_stream_message(data: dict[str, Any]) -> bytes:
    """One message of the AWS event stream that Bedrock streams in: a `chunk` event whose payload holds the
    Anthropic event as base64 bytes. Framing: total and headers lengths, prelude CRC, headers, payload, message CRC."""
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(data).encode()).decode()}).encode()
    headers = b""
    for name, value in ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")):
        encoded = value.encode()
        headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(encoded)) + encoded
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _input_tokens(body: dict[str, Any]) -> int:
    text = json.dumps([body.get("system"), body.get("messages"), body.get("tools")])
    return max(1, len(text) // 4)


def _usage(body: dict[str, Any], step: Step, output_tokens: int, batch: bool = False) -> dict[str, Any]:
    cached = step.name == "cache"
    usage: dict[str, Any] = {
        "input_tokens": _input_tokens(body),
        "cache_creation_input_tokens": 300 if cached else 0,
        "cache_read_input_tokens": 2000 if cached else 0,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 200 if cached else 0,
            "ephemeral_1h_input_tokens": 100 if cached else 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "batch" if batch or step.name == "batch" else "standard",
    }
    if step.name == "web_search":
        usage["server_tool_use"] = {"web_search_requests": 1, "web_fetch_requests": 0}
    if isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in ("enabled", "adaptive"):
        usage["output_tokens_details"] = {"thinking_tokens": output_tokens // 2}
    return usage


def _delta_usage(step: Step) -> dict[str, Any]:
    """What a step adds to the cumulative usage of `message_delta`, beyond the output count."""
    return {"server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0}} if step.name == "web_search" else {}


def _usage_override(header: str | None) -> dict[str, Any] | None:
    """The usage fields of the `x-claude-sim-usage` header (none: `{}`); `None` when it is not a JSON object."""
    if header is None:
        return {}
    try:
        usage = json.loads(header)
    except ValueError:
        return None
    return usage if isinstance(usage, dict) else None


def _reply(body: dict[str, Any], words: int) -> list[str]:
    max_tokens = body.get("max_tokens")
    count = min(words, max_tokens) if isinstance(max_tokens, int) and max_tokens > 0 else words
    return [_WORDS[i % len(_WORDS)] + " " for i in range(count)]


def _content(step: Step, words: list[str]) -> list[dict[str, Any]]:
    if step.name == "tool_use":
        return [{"type": "tool_use", "id": "toolu_sim_1", "name": "get_weather", "input": {"city": "Paris"}}]
    if step.name == "refusal":
        return []
    text = [{"type": "text", "text": "".join(words)}]
    return [_SEARCH, _SEARCH_RESULT, *text] if step.name == "web_search" else text


def _message(
    model: str,
    body: dict[str, Any],
    step: Step,
    reply_words: int,
    complete: bool,
    batch: bool = False,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    words = _reply(body, reply_words)
    stop_reason = STOP_REASONS.get(step.name, "end_turn")
    message: dict[str, Any] = {
        "id": f"msg_sim_{abs(hash((model, json.dumps(body, sort_keys=True)))) % 10**12:012d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content(step, words) if complete else [],
        "stop_reason": stop_reason if complete else None,
        "stop_sequence": ("\n\nHuman:" if stop_reason == "stop_sequence" else None) if complete else None,
        "usage": {**_usage(body, step, len(words) + 1 if complete else 1, batch), **(usage or {})},
    }
    if complete and stop_reason == "refusal":
        message["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": None}
    if step.name == "malformed":
        del message["usage"]
        message["content"] = [{"type": "hologram", "frames": 3}] if complete else []
    return message


def _events(
    model: str, body: dict[str, Any], step: Step, reply_words: int, usage: dict[str, Any] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events of a streamed answer, as the API sends them, cut short where the step says."""
    words = _reply(body, reply_words)
    stop_reason = STOP_REASONS.get(step.name, "end_turn")
    yield "message_start", {"type": "message_start", "message": _message(model, body, step, reply_words, False, usage=usage)}
    if step.name == "tool_use":
        block = {"type": "tool_use", "id": "toolu_sim_1", "name": "get_weather", "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in ('{"city": ', '"Paris"}')]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": word} for word in (words if stop_reason != "refusal" else words[:3])]
    index = 0
    if step.name == "web_search":
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {**_SEARCH, "input": {}}}
        partial = {"type": "input_json_delta", "partial_json": json.dumps(_SEARCH["input"])}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": partial}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        yield "content_block_start", {"type": "content_block_start", "index": 1, "content_block": _SEARCH_RESULT}
        yield "content_block_stop", {"type": "content_block_stop", "index": 1}
        index = 2
    yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
    yield "ping", {"type": "ping"}
    if step.name == "malformed":
        yield "future_event", {"type": "future_event", "detail": {"nested": True}}
    for number, delta in enumerate(deltas):
        if number == 2 and step.name == "error_event":
            yield "error", _error_body("overloaded_error", "Overloaded")
            return
        if number == 2 and step.name == "truncate":
            return
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}
    delta_body: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": None}
    if stop_reason == "refusal":
        delta_body["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": None}
    # Cumulative, as the API sends it: the whole output count, not what came since `message_start`.
    # The usage override too: the API repeats the cumulative counts (server tools, iterations) in `message_delta`.
    final = {} if step.name == "malformed" else {"output_tokens": len(words) + 1, **_delta_usage(step), **(usage or {})}
    yield "message_delta", {"type": "message_delta", "delta": delta_body, "usage": final}
    yield "message_stop", {"type": "message_stop"}
