"""Message Batches: a span for each batch call, and the results' outcomes, tokens and cost at the batch rate.

The batch routes go through the same SDK funnel as every call, so a batch call is a `Call` (attempts, retries,
errors, the body read to its end or not) whose responses a `BatchReader` reads:

- `batches.create`: the number of requests, distinct `custom_id`s and models, the request's size in bytes, and
  the new batch's id. The batch is remembered in this process with the attribution active at creation and its span.
- `batches.retrieve` / `cancel` / `list` / `delete`: the batch id, `processing_status`, `request_counts`. When a
  retrieve or cancel shows a batch that has ended, its turnaround (`created_at` → `ended_at`) is recorded, once.
- `batches.results`: the JSON Lines body, read from the HTTP body as the application reads it (the SDK's decoder,
  `with_streaming_response` or raw bytes alike). Each line's outcome and usage are tallied; the span links to the
  create span when it is known here. Token and cost metrics (at the batch discount) are recorded when the results
  are read to their end, once per batch in this process, so that re-reading a batch's results does not count its
  cost twice; a read that stops early leaves its counts on its span only.

Results are attributed to, from the weakest to the strongest: the attribution active when the results are read,
the one active when the batch was created in this process, and what `instrument(batch_attribution=...)` returns for
the batch id and the result's `custom_id` (for results read in another process).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.trace import SpanContext
from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from ._extract import as_int, as_str, field, put, timestamp
from ._observe import Outcome
from ._prices import Cost, round_cost
from ._response import ResponseReader

if TYPE_CHECKING:
    from ._call import Call, Settings

log = logging.getLogger("claude_otel")


PREFIX = "/v1/messages/batches"

# The route templates of the SDK's own spans (`span_route`), which every SDK version's calls are mapped to.
_ROUTE = PREFIX
_ROUTE_BATCH = PREFIX + "/{message_batch_id}"
_ROUTES = {
    ("post", ""): (sc.OPERATION_BATCHES_CREATE, _ROUTE),
    ("get", ""): (sc.OPERATION_BATCHES_LIST, _ROUTE),
    ("get", "retrieve"): (sc.OPERATION_BATCHES_RETRIEVE, _ROUTE_BATCH),
    ("delete", "retrieve"): (sc.OPERATION_BATCHES_DELETE, _ROUTE_BATCH),
    ("post", "cancel"): (sc.OPERATION_BATCHES_CANCEL, _ROUTE_BATCH + "/cancel"),
    ("get", "results"): (sc.OPERATION_BATCHES_RESULTS, _ROUTE_BATCH + "/results"),
}

_REQUEST_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")

_REMEMBERED = 10_000
"""How many batches this process remembers (created ones, and ones whose turnaround or results were recorded)."""


class BatchRoute(NamedTuple):
    """What the method and URL of a Message Batches request say."""

    operation: str
    """`gen_ai.operation.name`: `batches.create`, `batches.results`, ..."""
    template: str
    """The route template (`http.route`), as the SDK's own spans name it."""
    batch_id: str | None
    """The batch the request is about; `None` for create and list."""


def route(method: str, url: str) -> BatchRoute | None:
    """The route of a Message Batches request; `None` for any other request.

    `url` is the SDK's request URL: a path, or the absolute `results_url` the API gave.
    """
    if not url.startswith("/"):
        url = "/" + url.partition("://")[2].partition("/")[2]
    path = url.partition("?")[0]
    if not path.startswith(PREFIX):
        return None
    parts = path[len(PREFIX) :].strip("/").split("/") if path != PREFIX else []
    if len(parts) > 2 or (parts and not parts[0]):
        return None
    action = "" if not parts else parts[1] if len(parts) == 2 else "retrieve"
    found = _ROUTES.get((method.lower(), action))
    if found is None:
        return None
    return BatchRoute(found[0], found[1], parts[0] if parts else None)


def request_attributes(operation: str, body: object, batch_id: str | None) -> dict[str, AttributeValue]:
    """The span attributes a batch call starts with. Never reads a request list that is not a list."""
    attributes: dict[str, AttributeValue] = {}
    if batch_id is not None:
        attributes[sc.ANTHROPIC_MESSAGE_BATCH_ID] = batch_id
    if operation != sc.OPERATION_BATCHES_CREATE:
        return attributes
    requests = field(body, "requests")
    if isinstance(requests, (list, tuple)):  # An iterator would be consumed: the SDK serializes lists.
        attributes[sc.ANTHROPIC_MESSAGE_BATCH_REQUEST_COUNT] = len(requests)
        custom_ids = {field(request, "custom_id") for request in requests}
        attributes[sc.CLAUDE_OTEL_BATCH_CUSTOM_ID_COUNT] = len(custom_ids)
        models = {as_str(field(field(request, "params"), "model")) for request in requests}
        attributes[sc.CLAUDE_OTEL_BATCH_MODELS] = sorted(model for model in models if model)
    return attributes


class _Bounded(OrderedDict):  # type: ignore[type-arg]
    """A mapping that forgets its oldest entries beyond `_REMEMBERED`."""

    def remember(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _REMEMBERED:
            self.popitem(last=False)


class BatchRegistry:
    """What this process knows of batches: those it created, and what it has recorded of each. Thread-safe."""

    def __init__(self) -> None:
        self._created = _Bounded()
        self._recorded = _Bounded()
        self._lock = threading.Lock()

    def created(self, batch_id: str, span_context: SpanContext, attribution: dict[str, str]) -> None:
        with self._lock:
            self._created.remember(batch_id, (span_context, attribution))

    def creation(self, batch_id: str) -> tuple[SpanContext, dict[str, str]] | None:
        """The create span's context and the attribution active at creation, of a batch created here."""
        with self._lock:
            return self._created.get(batch_id)

    def first_time(self, what: str, batch_id: str) -> bool:
        """True once per `what` and batch id: so that a batch's turnaround and results are recorded once."""
        with self._lock:
            key = f"{what}:{batch_id}"
            if key in self._recorded:
                return False
            self._recorded.remember(key, True)
            return True


class Tally:
    """The results of one kind (model, result type, error type, attribution) that a results read has seen."""

    __slots__ = ("cache_read", "cache_savings", "cache_write", "cost", "count", "input_tokens", "output_tokens", "priced", "reasoning", "server_tools", "surcharge")

    def __init__(self) -> None:
        self.count = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read = 0
        self.cache_write = 0
        self.reasoning = 0
        self.cost = 0.0
        """In all: the tokens' part is what `server_tools` and `surcharge` leave."""
        self.server_tools = 0.0
        self.surcharge = 0.0
        self.cache_savings = 0.0
        self.priced = True


TallyKey = tuple[str | None, str, str | None, tuple[tuple[str, str], ...]]
"""Model (of a succeeded result), result type, `error.type` (of an errored one), attribution."""


class _JsonLines:
    """Receives a body's bytes as they are read and hands each complete line to `on_line`."""

    __slots__ = ("_on_line", "_partial")

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._partial = b""
        self._on_line = on_line

    def append(self, chunk: bytes) -> None:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self._on_line(line)

    def finish(self) -> None:
        if self._partial.strip():
            self._on_line(self._partial)
        self._partial = b""


class BatchReader(ResponseReader):
    """Reads the responses of a Message Batches call. See the module's docstring for what each operation records."""

    __slots__ = (
        "attribution",
        "batch",
        "batch_id",
        "lines",
        "listed",
        "operation",
        "request_size",
        "settings",
        "span_context",
        "tallies",
        "turnaround",
    )

    def __init__(
        self, operation: str, batch_id: str | None, attribution: dict[str, str], settings: Settings, span_context: SpanContext
    ) -> None:
        self.operation = operation
        self.batch_id = batch_id
        self.attribution = attribution
        self.settings = settings
        self.span_context = span_context
        """The call span's: a batch created here is remembered with it, for its results' spans to link to."""
        self.request_size: int | None = None
        self.batch: dict[str, AttributeValue] = {}
        self.listed: int | None = None
        self.turnaround: float | None = None
        self.tallies: dict[TallyKey, Tally] = {}
        self.lines = 0

    # --- what is sent and received --------------------------------------------------------------------------------

    sees_attempts = True

    def attempt_seen(self, response_or_error: object) -> None:
        """The size of what `batches.create` sent, from its header: a 413 says by how much it was too large."""
        if self.operation != sc.OPERATION_BATCHES_CREATE:
            return
        # httpx's `.request` raises (not AttributeError) when it has no request.
        request = getattr(response_or_error, "request", None)
        if request is None:
            return  # An error raised before any request existed (a platform client refusing the Batch API).
        self.request_size = int(request.headers["content-length"])

    def body_sink(self, content_type: str) -> Any:
        if self.operation != sc.OPERATION_BATCHES_RESULTS:
            return super().body_sink(content_type)
        creation = self.settings.batches.creation(self.batch_id) if self.batch_id else None
        if creation is not None:
            self.attribution = {**self.attribution, **creation[1]}
        return _JsonLines(self._result_line)

    def body_done(self, sink: Any) -> None:
        if isinstance(sink, _JsonLines):
            sink.finish()
        else:
            super().body_done(sink)

    def absorb(self, data: object) -> None:
        """Records a batch (create, retrieve, cancel), a page of batches (list) or a deletion."""
        if data is None or self.operation == sc.OPERATION_BATCHES_RESULTS:
            return
        listed = field(data, "data")
        if self.operation == sc.OPERATION_BATCHES_LIST and isinstance(listed, list):
            self.listed = len(listed)
            return
        batch_id = as_str(field(data, "id"))
        if batch_id is None:
            return
        self.batch_id = batch_id
        if self.operation == sc.OPERATION_BATCHES_DELETE:
            return
        batch: dict[str, AttributeValue] = {}
        status = as_str(field(data, "processing_status"))
        if status is not None:
            batch[sc.ANTHROPIC_MESSAGE_BATCH_PROCESSING_STATUS] = status
        counts = field(data, "request_counts")
        for name in _REQUEST_COUNTS:
            value = as_int(field(counts, name))
            if value is not None:
                batch[f"{sc.ANTHROPIC_MESSAGE_BATCH_REQUEST_COUNTS}.{name}"] = value
        self.batch = batch
        if self.operation == sc.OPERATION_BATCHES_CREATE:
            self.settings.batches.created(batch_id, self.span_context, self.attribution)
        elif status == "ended":
            self.turnaround = _seconds_between(field(data, "created_at"), field(data, "ended_at"))

    def _result_line(self, line: bytes) -> None:
        """Tallies one line of a batch's results. A line that is not a result is counted, and otherwise skipped."""
        self.lines += 1
        try:
            entry = json.loads(line)
            result = field(entry, "result")
            kind = as_str(field(result, "type"))
            if kind is None:
                log.debug("claude_otel: a batch result line without a result type, skipped")
                return
            message = field(result, "message")
            model = as_str(field(message, "model")) if kind == "succeeded" else None
            error = as_str(field(field(field(result, "error"), "error"), "type")) if kind == "errored" else None
            attribution = self._result_attribution(as_str(field(entry, "custom_id")))
            key: TallyKey = (model, kind, error, tuple(sorted(attribution.items())))
            tally = self.tallies.get(key)
            if tally is None:
                tally = self.tallies[key] = Tally()
            tally.count += 1
            usage = field(message, "usage")
            if isinstance(usage, dict):
                self._tally_usage(tally, model, usage)
        except Exception:
            log.debug("claude_otel: could not read a batch result line", exc_info=True)

    def _result_attribution(self, custom_id: str | None) -> dict[str, str]:
        hook = self.settings.batch_attribution
        if hook is None or self.batch_id is None or custom_id is None:
            return self.attribution
        given = hook(self.batch_id, custom_id)
        return {**self.attribution, **given} if given else self.attribution

    def _tally_usage(self, tally: Tally, model: str | None, usage: dict[str, Any]) -> None:
        input_tokens = as_int(usage.get("input_tokens")) or 0
        output_tokens = as_int(usage.get("output_tokens")) or 0
        cache_read = as_int(usage.get("cache_read_input_tokens")) or 0
        cache_write = as_int(usage.get("cache_creation_input_tokens")) or 0
        tally.input_tokens += input_tokens + cache_read + cache_write  # The conventions' rule, as for calls.
        tally.output_tokens += output_tokens
        tally.cache_read += cache_read
        tally.cache_write += cache_write
        tally.reasoning += as_int(field(usage.get("output_tokens_details"), "thinking_tokens")) or 0
        prices = self.settings.prices
        price = prices.price(model or "")
        cost = prices.cost(price, usage, output_tokens, batch=True) if price is not None else None
        if isinstance(cost, Cost):
            tally.cost += cost.total
            tally.server_tools += cost.server_tools
            tally.surcharge += cost.surcharge
            tally.cache_savings += cost.cache_savings
        else:
            tally.priced = False

    # --- the end --------------------------------------------------------------------------------------------------

    def attributes(self, attributes: dict[str, AttributeValue], started: float) -> None:
        put(attributes, sc.ANTHROPIC_MESSAGE_BATCH_ID, self.batch_id)
        put(attributes, sc.HTTP_REQUEST_BODY_SIZE, self.request_size)
        put(attributes, sc.CLAUDE_OTEL_BATCH_LISTED, self.listed)
        attributes.update(self.batch)
        if self.turnaround is not None:
            attributes[sc.CLAUDE_OTEL_BATCH_TURNAROUND] = self.turnaround
        if self.operation != sc.OPERATION_BATCHES_RESULTS:
            return
        counts = dict.fromkeys(RESULT_TYPES, 0)
        totals = Tally()
        for (_, kind, _, _), tally in self.tallies.items():
            counts[kind] = counts.get(kind, 0) + tally.count
            for name in ("input_tokens", "output_tokens", "cache_read", "cache_write", "reasoning", "cost", "server_tools", "surcharge", "cache_savings"):
                setattr(totals, name, getattr(totals, name) + getattr(tally, name))
            totals.priced = totals.priced and tally.priced
        for kind, count in counts.items():
            attributes[f"{sc.CLAUDE_OTEL_BATCH_RESULTS}.{kind}"] = count
        if counts["succeeded"]:
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = totals.input_tokens
            attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = totals.output_tokens
            attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = totals.cache_read
            attributes[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = totals.cache_write
            attributes[sc.CLAUDE_OTEL_COST_USD] = round_cost(totals.cost)
            if totals.cache_savings:
                attributes[sc.CLAUDE_OTEL_COST_CACHE_SAVINGS_USD] = round_cost(totals.cache_savings)
            if not totals.priced:
                attributes[sc.CLAUDE_OTEL_COST_UNPRICED] = True

    def failure_event(
        self, attributes: dict[str, AttributeValue], failure: Exception | None, duration: float
    ) -> dict[str, AttributeValue]:
        return {
            sc.ERROR_TYPE: attributes[sc.ERROR_TYPE],
            sc.CLAUDE_OTEL_BATCH_RESULTS_READ: self.lines,
            sc.CLAUDE_OTEL_ELAPSED: duration,
            sc.EXCEPTION_MESSAGE: str(failure) if failure is not None else "The results ended early.",
        }

    def record_metrics(self, call: Call, attributes: dict[str, AttributeValue], outcome: str | None) -> None:
        """The batch's turnaround, once; and its results' tokens and cost, once, when they were read to their end."""
        metrics = self.settings.metrics
        batches = self.settings.batches
        if metrics is None or self.batch_id is None:
            return
        if self.turnaround is not None and batches.first_time("turnaround", self.batch_id):
            creation = batches.creation(self.batch_id)
            attribution = creation[1] if creation is not None else self.attribution
            metrics.record_batch_turnaround(call, self.turnaround, self.settings.guard.guard(attribution))
        if (
            self.operation == sc.OPERATION_BATCHES_RESULTS
            and outcome == Outcome.COMPLETED
            and batches.first_time("results", self.batch_id)
        ):
            metrics.record_batch_results(call, self.tallies)


def _seconds_between(start: object, end: object) -> float | None:
    begun, ended = timestamp(start), timestamp(end)
    return None if begun is None or ended is None else ended - begun

