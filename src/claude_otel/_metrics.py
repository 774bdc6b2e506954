"""The metrics of every call, on the meter provider given to or set up by `instrument()`.

The GenAI semantic conventions' client inference metrics (semantic-conventions-genai, the `gen_ai.client.inference.*`
names), with their advisory bucket boundaries, plus claude_otel's own cost and reliability counters:

| metric | instrument | unit | per |
|---|---|---|---|
| `gen_ai.client.inference.duration` | histogram | s | call (with `error.type` when it failed) |
| `gen_ai.client.inference.time_to_first_chunk` | histogram | s | streamed call that got a content delta |
| `gen_ai.client.inference.operation.input_tokens` / `.output_tokens` | histogram | {token} | call with usage |
| `gen_ai.client.inference.usage.input_tokens` / `.output_tokens` / `.cache_read.input_tokens` / `.cache_write.input_tokens` / `.reasoning.output_tokens` | counter | {token} | call (0 when nothing was billed) |
| `claude_otel.cost` | counter | USD | priced call, by `claude_otel.cost.part` (`tokens`, `server_tools`, `surcharge`: the last two when not 0); unpriced calls add 0 with `claude_otel.cost.unpriced=true` |
| `claude_otel.cost.cache_savings` | counter | USD | priced call that read the prompt cache: the reads at the input rate, less their cost |
| `claude_otel.calls` | counter | {call} | call, by stop reason, refusal category, stream outcome, error type and category |
| `claude_otel.attempts` | counter | {attempt} | HTTP attempt, by status code and error type |
| `claude_otel.tool_calls` | counter | {call} | tool call in a response, by `gen_ai.tool.name` and `gen_ai.tool.type` (names only) |
| `claude_otel.batch.results` | counter | {result} | Message Batch result read to the end, by type (and error type, model) |
| `claude_otel.batch.turnaround` | histogram | s | Message Batch seen ended: `created_at` → `ended_at` |
| `claude_otel.rate_limit.remaining` / `.limit` | gauge | {count} | model, by `claude_otel.rate_limit.kind`: the `anthropic-ratelimit-*` headers of the last response |

A batch's results add their tokens to the usage counters (operation `chat`, the result's model) and their cost at
the batch discount to `claude_otel.cost` (`anthropic.response.service_tier="batch"`), under the attribution of the
batch's creation (see `claude_otel._batches`); every batch call counts in `claude_otel.calls`/`.attempts`, with
`gen_ai.operation.name` `batches.create`, `batches.results`, ...

With `legacy_metrics=True`, also the names of the earlier conventions: `gen_ai.client.operation.duration` and
`gen_ai.client.token.usage` (histogram with `gen_ai.token.type`).

Cost of recording: a synchronous instrument record costs the application thread several microseconds (standards
§8a: ~7 µs), so no call pays one, nor any other metric work but one queue append. Each ended call is queued with
its span's final attributes, its attempts' outcomes and its span context (not the span: about 1.7 KB a call), and
the first observable callback of the next collection, on the reader's thread, adds it up: into a sum per attribute
set for each counter (observable instruments, which read those sums), and into the histograms (which have no
observable form), recorded with the call span's context so that exemplars keep their trace. An attribute set is
keyed by its pairs in the order they were added, unsorted; the sums of keys that hold the same set in another order
are added together when they are observed. Beyond `_MAX_PENDING` queued calls (a reader that collects rarely, or
none), each new call works off the oldest one itself, so the queue stays bounded and no call pays for many. The
rate-limit gauges cost a call one dictionary store: the last response's headers, kept per model, are read when the
gauges are observed. Count tokens (`count_tokens`) calls are not inference: only `claude_otel.calls` and `claude_otel.attempts` count them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.trace import NonRecordingSpan, SpanContext, set_span_in_context
from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from ._extract import timestamp
from .version import __version__

log = logging.getLogger("claude_otel")

if TYPE_CHECKING:
    from ._batches import Tally, TallyKey
    from ._call import Call
    from ._prices import Cost

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TURNAROUND_BUCKETS = [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400]
"""Batches: a minute to the 24 hours after which a batch expires (most end within the hour)."""
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

USAGE_COUNTERS = (
    ("input_tokens", sc.METRIC_USAGE_INPUT_TOKENS, "Input tokens billed, cache reads and writes included"),
    ("output_tokens", sc.METRIC_USAGE_OUTPUT_TOKENS, "Output tokens billed"),
    ("cache_read", sc.METRIC_USAGE_CACHE_READ_INPUT_TOKENS, "Input tokens read from the prompt cache"),
    ("cache_write", sc.METRIC_USAGE_CACHE_WRITE_INPUT_TOKENS, "Input tokens written to the prompt cache"),
    ("reasoning", sc.METRIC_USAGE_REASONING_OUTPUT_TOKENS, "Output tokens spent on thinking"),
)
_USAGE_ATTRIBUTES = (
    sc.GEN_AI_USAGE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)
"""The span attribute of each of `USAGE_COUNTERS`, in their order."""

Key = tuple[tuple[str, AttributeValue], ...]
"""An attribute set, as its pairs in the order they were added."""
_TOKENS_PART: Key = ((sc.CLAUDE_OTEL_COST_PART, sc.COST_PART_TOKENS),)
_SERVER_TOOLS_PART: Key = ((sc.CLAUDE_OTEL_COST_PART, sc.COST_PART_SERVER_TOOLS),)
_SURCHARGE_PART: Key = ((sc.CLAUDE_OTEL_COST_PART, sc.COST_PART_SURCHARGE),)

_CALL_KEYS = (
    sc.ERROR_TYPE,
    sc.CLAUDE_OTEL_ERROR_CATEGORY,
    sc.ANTHROPIC_STOP_REASON,
    sc.ANTHROPIC_STOP_DETAILS_CATEGORY,
    sc.CLAUDE_OTEL_STREAM_OUTCOME,
)
"""The span attributes that `claude_otel.calls` adds to a call's metric attributes, when the span has them."""

_MAX_PENDING = 10_000
"""Entries queued for the next collection, at most (see the module's docstring)."""

_MODALITY = ((sc.GEN_AI_TOKEN_MODALITY, "unknown"),)
"""What the usage counters add to a call's metric attributes (the conventions' modality when it is not known)."""


class _Later:
    """Work queued by the application's threads and done on the collecting thread, in order. Thread-safe."""

    def __init__(self) -> None:
        self._pending: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()

    def add(self, work: Callable[..., None], arguments: tuple[Any, ...]) -> None:
        """Queues `work(*arguments)`. Nothing in `arguments` may change afterwards."""
        pending = self._pending
        pending.append((work, arguments))
        if len(pending) > _MAX_PENDING:
            # No collection has drained the queue for a while: this call does the oldest work, about what its own
            # would have cost it without a queue, rather than all of it at once (a pause of seconds).
            self.flush(1)

    def flush(self, limit: int | None = None) -> None:
        """Does the queued work: all of it, or its `limit` oldest. Never raises."""
        pending = self._pending
        done = 0
        while limit is None or done < limit:
            try:
                work, arguments = pending.popleft()
            except IndexError:
                return
            done += 1
            try:
                work(*arguments)
            except Exception:
                log.debug("claude_otel: could not record the metrics of a call", exc_info=True)


class _Sums:
    """Cumulative sums per attribute set, observed by an observable counter at collection time. `lock` guards every
    `_Sums` of a `Metrics`, so that a call's updates take it once."""

    def __init__(self, lock: threading.Lock) -> None:
        self.values: dict[Key, float] = {}
        """The sums by key: a call adds to them directly, holding the lock."""
        self._lock = lock

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self.values.items())
        merged: dict[Key, float] = {}
        for key, value in items:
            # Keys with the same pairs in another order are one attribute set. Sorted by name only: values of
            # different types do not compare.
            canonical = tuple(sorted(key, key=_name))
            merged[canonical] = merged.get(canonical, 0) + value
        return [Observation(value, dict(key)) for key, value in merged.items()]


class _RateLimits:
    """The `anthropic-ratelimit-*` headers of the last response seen for each model, read when observed."""

    _PREFIX = b"anthropic-ratelimit-"

    def __init__(self) -> None:
        self.last: dict[AttributeValue, Any] = {}
        """The headers (httpx `Headers`) of each model's last response: a call replaces them, without a lock (one
        store, atomic), and nothing else; the headers are read when a gauge is observed."""

    def callback(self, field: bytes) -> Callable[[CallbackOptions], list[Observation]]:
        """The observable gauge's callback for `field` (`remaining` or `limit`)."""
        return lambda options: self.observe(field)

    def observe(self, field: bytes) -> list[Observation]:
        """An observation per model and kind (`requests`, `tokens`, `input_tokens`, `output_tokens`) of `field`
        (`remaining` or `limit`). Past a kind's reset time its limit is replenished: `remaining` is the limit."""
        observations = []
        now = time.time()
        for model, headers in list(self.last.items()):
            try:
                for kind, values in self._kinds(headers).items():
                    value = values.get(field)
                    if field == b"remaining" and b"limit" in values and values.get(b"reset", math.inf) <= now:
                        value = values[b"limit"]
                    if value is not None:
                        observations.append(
                            Observation(value, {sc.GEN_AI_REQUEST_MODEL: model, sc.CLAUDE_OTEL_RATE_LIMIT_KIND: kind})
                        )
            except Exception:
                log.debug("claude_otel: could not read the rate-limit headers of %r", model, exc_info=True)
        return observations

    @classmethod
    def _kinds(cls, headers: Any) -> dict[str, dict[bytes, float]]:
        """`{kind: {b"limit": ..., b"remaining": ..., b"reset": epoch seconds}}` of the headers that parse."""
        kinds: dict[str, dict[bytes, float]] = {}
        for name, value in headers.raw:
            name = name.lower()
            if not name.startswith(cls._PREFIX):
                continue
            kind, _, field = name[len(cls._PREFIX) :].rpartition(b"-")
            if field == b"reset":
                number = timestamp(value.decode("latin-1"))
            elif field in (b"limit", b"remaining"):
                number = _as_float(value)
            else:
                continue
            if number is None:
                continue  # A value that is not what the API documents: no point, rather than a wrong one.
            kinds.setdefault(kind.decode("ascii").replace("-", "_"), {})[field] = number
        return kinds


class Metrics:
    """Records each call's metrics. `record` never raises."""

    def __init__(self, meter_provider: metrics.MeterProvider | None, legacy: bool) -> None:
        meter = metrics.get_meter("claude_otel", __version__, meter_provider=meter_provider)
        self._later = _Later()
        self._lock = threading.Lock()
        self._duration = meter.create_histogram(
            sc.METRIC_INFERENCE_DURATION,
            unit="s",
            description="Duration of a GenAI inference call, its retries and the reading of its stream included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._ttft = meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the start of a streamed call to its first content delta",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._input_histogram = meter.create_histogram(
            sc.METRIC_INPUT_TOKENS,
            unit="{token}",
            description="Input tokens of one inference call",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._output_histogram = meter.create_histogram(
            sc.METRIC_OUTPUT_TOKENS,
            unit="{token}",
            description="Output tokens of one inference call",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._sums: dict[str, _Sums] = {}
        for field, name, description in USAGE_COUNTERS:
            self._observable(meter, field, name, "{token}", description)
        self._observable(meter, sc.METRIC_COST, sc.METRIC_COST, "USD", "Cost of Claude calls in US dollars, at the prices in use")
        self._observable(
            meter, sc.METRIC_CACHE_SAVINGS, sc.METRIC_CACHE_SAVINGS, "USD", "What prompt cache reads saved: their tokens at the input rate, less their cost"
        )
        self._observable(meter, sc.METRIC_CALLS, sc.METRIC_CALLS, "{call}", "Claude calls, by how they ended")
        self._observable(meter, sc.METRIC_TOOL_CALLS, sc.METRIC_TOOL_CALLS, "{call}", "Tool calls the model asked for, by tool name and type")
        self._observable(meter, sc.METRIC_ATTEMPTS, sc.METRIC_ATTEMPTS, "{attempt}", "HTTP attempts of Claude calls, by their outcome")
        self._observable(meter, sc.METRIC_BATCH_RESULTS, sc.METRIC_BATCH_RESULTS, "{result}", "Message Batch results read, by type")
        self._rate_limits = _RateLimits()
        for name, header, description in (
            (sc.METRIC_RATE_LIMIT_REMAINING, b"remaining", "What is left of an Anthropic rate limit, as the last response said"),
            (sc.METRIC_RATE_LIMIT_LIMIT, b"limit", "An Anthropic rate limit, as the last response said"),
        ):
            meter.create_observable_gauge(
                name, callbacks=[self._rate_limits.callback(header)], unit="{count}",
                description=f"{description} (its anthropic-ratelimit-* headers), by model and limit kind",
            )  # fmt: skip
        self._turnaround = meter.create_histogram(
            sc.CLAUDE_OTEL_BATCH_TURNAROUND,
            unit="s",
            description="Time from the creation of a Message Batch to the end of its processing",
            explicit_bucket_boundaries_advisory=TURNAROUND_BUCKETS,
        )
        self._legacy_duration = self._legacy_tokens = None
        if legacy:
            self._legacy_duration = meter.create_histogram(
                sc.METRIC_LEGACY_OPERATION_DURATION,
                unit="s",
                description="GenAI operation duration (earlier conventions' name)",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self._legacy_tokens = meter.create_histogram(
                sc.METRIC_LEGACY_TOKEN_USAGE,
                unit="{token}",
                description="Tokens used by a GenAI operation (earlier conventions' name)",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )

    def _observable(self, meter: metrics.Meter, field: str, name: str, unit: str, description: str) -> None:
        sums = self._sums[field] = _Sums(self._lock)

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            # Collection has begun: the queued histogram values go in now, so that this collection has them.
            self._later.flush()
            return sums.observe(options)

        meter.create_observable_counter(name, callbacks=[observe], unit=unit, description=description)

    def record(
        self,
        call: Call,
        base: dict[str, AttributeValue],
        attributes: dict[str, AttributeValue],
        duration: float,
        cost: Cost | None,
    ) -> None:
        """Records one ended call: queues it, for the next collection to add up (`_record_call`, on the reader's
        thread). `base` are its metric attributes (operation, provider, model, server, attribution); `attributes`
        its span's final attributes, which must not change afterwards. Only the attempts' outcomes are kept of the
        call, not its responses, but for the last response's headers, as its model's latest rate-limit headers."""
        records = call.records
        outcomes = [record.outcome() for record in records]
        if records and (response := records[-1].response) is not None:
            model = base.get(sc.GEN_AI_REQUEST_MODEL)
            if model is not None:
                self._rate_limits.last[model] = response.headers
        trace = call.span.get_span_context()  # Not the span: a queued call holds what it needs, and little else.
        self._later.add(self._record_call, (call.request.operation, trace, base, attributes, outcomes, duration, cost))

    def _record_call(
        self,
        operation: str,
        trace: SpanContext,
        base: dict[str, AttributeValue],
        attributes: dict[str, AttributeValue],
        outcomes: list[tuple[int | None, str | None]],
        duration: float,
        cost: Cost | None,
    ) -> None:
        base_key = tuple(base.items())
        get = attributes.get
        sums = self._sums
        updates: list[tuple[_Sums, Key, float]] = [
            (sums[sc.METRIC_CALLS], base_key + tuple([(key, value) for key in _CALL_KEYS if (value := get(key)) is not None]), 1)
        ]
        attempts = sums[sc.METRIC_ATTEMPTS]
        for status, attempt_error in outcomes:
            attempt = base_key
            if status is not None:
                attempt += ((sc.HTTP_RESPONSE_STATUS_CODE, status),)
            if attempt_error is not None:
                attempt += ((sc.ERROR_TYPE, attempt_error),)
            updates.append((attempts, attempt, 1))
        if operation == sc.OPERATION_CHAT:
            self._record_inference(trace, base, base_key, attributes, duration, cost, updates)
            names = get(sc.CLAUDE_OTEL_TOOL_CALLS_NAMES)
            if names:
                tool_calls = sums[sc.METRIC_TOOL_CALLS]
                for name, kind in zip(names, get(sc.CLAUDE_OTEL_TOOL_CALLS_TYPES) or ()):  # type: ignore[arg-type]
                    updates.append((tool_calls, (*base_key, (sc.GEN_AI_TOOL_NAME, name), (sc.GEN_AI_TOOL_TYPE, kind)), 1))
        self._apply(updates)

    def _record_inference(
        self,
        trace: SpanContext,
        base: dict[str, AttributeValue],
        base_key: Key,
        attributes: dict[str, AttributeValue],
        duration: float,
        cost: Cost | None,
        updates: list[tuple[_Sums, Key, float]],
    ) -> None:
        error = attributes.get(sc.ERROR_TYPE)
        timed = base if error is None else {**base, sc.ERROR_TYPE: error}
        histograms: list[tuple[Histogram, float, dict[str, AttributeValue]]] = [(self._duration, duration, timed)]
        if self._legacy_duration is not None:
            histograms.append((self._legacy_duration, duration, timed))
        ttft = _number(attributes.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK))
        if ttft is not None:
            histograms.append((self._ttft, ttft, base))

        usage = [_number(attributes.get(attribute)) for attribute in _USAGE_ATTRIBUTES]
        # The conventions: record for every call, failed ones included, 0 when nothing was received.
        self._add_usage(base_key, [value or 0 for value in usage], updates)
        input_tokens, output_tokens = usage[0], usage[1]
        if input_tokens is not None:
            histograms.append((self._input_histogram, input_tokens, timed))
        if output_tokens is not None:
            histograms.append((self._output_histogram, output_tokens, timed))
        if self._legacy_tokens is not None:
            for token_type, value in (("input", input_tokens), ("output", output_tokens)):
                if value is not None:
                    histograms.append((self._legacy_tokens, value, {**base, sc.GEN_AI_TOKEN_TYPE: token_type}))
        _record_histograms(trace, histograms)

        if cost is not None or attributes.get(sc.CLAUDE_OTEL_COST_UNPRICED):
            costed = base_key
            tier = attributes.get(sc.ANTHROPIC_RESPONSE_SERVICE_TIER)
            if tier is not None:
                costed += ((sc.ANTHROPIC_RESPONSE_SERVICE_TIER, tier),)
            if cost is None:
                self._add_cost(costed, None, 0.0, updates)
            else:
                tokens = cost.input + cost.cache_write + cost.cache_read + cost.output
                self._add_cost(costed, (tokens, cost.server_tools, cost.surcharge), cost.cache_savings, updates)

    def _add_cost(
        self, costed: Key, parts: tuple[float, float, float] | None, savings: float, updates: list[tuple[_Sums, Key, float]]
    ) -> None:
        """Adds a cost under the attributes `costed` to `updates`: its parts (tokens, server tools, surcharge), each
        as its own `claude_otel.cost.part`, or 0 marked unpriced when `parts` is `None`; and the cache savings."""
        sums = self._sums
        if parts is None:
            updates.append((sums[sc.METRIC_COST], (*costed, (sc.CLAUDE_OTEL_COST_UNPRICED, True)), 0.0))
            return
        tokens, server_tools, surcharge = parts
        updates.append((sums[sc.METRIC_COST], costed + _TOKENS_PART, tokens))
        if server_tools:
            updates.append((sums[sc.METRIC_COST], costed + _SERVER_TOOLS_PART, server_tools))
        if surcharge:
            updates.append((sums[sc.METRIC_COST], costed + _SURCHARGE_PART, surcharge))
        if savings:
            updates.append((sums[sc.METRIC_CACHE_SAVINGS], costed, savings))

    def _add_usage(self, base_key: Key, values: Sequence[float], updates: list[tuple[_Sums, Key, float]]) -> None:
        """Adds the token counts `values` (in the order of `USAGE_COUNTERS`) under the attributes `base_key` to
        `updates`."""
        key = base_key + _MODALITY
        sums = self._sums
        for (field, _, _), value in zip(USAGE_COUNTERS, values):
            updates.append((sums[field], key, value))

    def _apply(self, updates: list[tuple[_Sums, Key, float]]) -> None:
        with self._lock:
            for sums, key, value in updates:
                values = sums.values
                values[key] = values.get(key, 0) + value

    def record_batch_turnaround(self, call: Call, seconds: float, attribution: dict[str, str]) -> None:
        """Records the turnaround of a batch that a call saw ended (the caller records each batch once)."""
        attributes: dict[str, AttributeValue] = {sc.GEN_AI_PROVIDER_NAME: call.request.metric_base[sc.GEN_AI_PROVIDER_NAME]}
        attributes.update(attribution)
        self._later.add(_record_histograms, (call.span.get_span_context(), [(self._turnaround, seconds, attributes)]))

    def record_batch_results(self, call: Call, tallies: Mapping[TallyKey, Tally]) -> None:
        """Records the results of a batch, read to their end: counts by type, and the tokens and cost of each
        succeeded one as the usage and cost of a `chat` at the batch tier."""
        guard = call.settings.guard
        server = {key: call.request.metric_base[key] for key in (sc.GEN_AI_PROVIDER_NAME, sc.SERVER_ADDRESS, sc.SERVER_PORT)}
        sums = self._sums
        updates: list[tuple[_Sums, Key, float]] = []
        for (model, kind, error, attribution), tally in tallies.items():
            base: dict[str, AttributeValue] = {**server, **guard.guard(dict(attribution))}
            counted = {**base, sc.CLAUDE_OTEL_BATCH_RESULT_TYPE: kind}
            if model is not None:
                counted[sc.GEN_AI_REQUEST_MODEL] = model
            if error is not None:
                counted[sc.ERROR_TYPE] = error
            updates.append((sums[sc.METRIC_BATCH_RESULTS], tuple(counted.items()), tally.count))
            if kind != "succeeded":
                continue
            chat = {**base, sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT}
            if model is not None:
                chat[sc.GEN_AI_REQUEST_MODEL] = model
            tokens = [tally.input_tokens, tally.output_tokens, tally.cache_read, tally.cache_write, tally.reasoning]
            self._add_usage(tuple(chat.items()), tokens, updates)
            costed = tuple({**chat, sc.ANTHROPIC_RESPONSE_SERVICE_TIER: "batch"}.items())
            if tally.priced:
                token_cost = tally.cost - tally.server_tools - tally.surcharge if tally.server_tools or tally.surcharge else tally.cost
                self._add_cost(costed, (token_cost, tally.server_tools, tally.surcharge), tally.cache_savings, updates)
            else:
                self._add_cost(costed, None, 0.0, updates)
        self._apply(updates)


def _number(value: AttributeValue | None) -> float | None:
    """`value` when it is a number (an attribute that claude_otel set as one), else `None`."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _record_histograms(trace: SpanContext, records: list[tuple[Histogram, float, dict[str, AttributeValue]]]) -> None:
    """Records each value of `records` (a histogram, a value, its attributes) in the context of the span `trace`
    identifies, so that exemplars point at it."""
    context = set_span_in_context(NonRecordingSpan(trace))
    for histogram, value, attributes in records:
        try:
            histogram.record(value, attributes, context=context)
        except Exception:
            log.debug("claude_otel: could not record a histogram value", exc_info=True)


def _name(pair: tuple[str, AttributeValue]) -> str:
    return pair[0]


def metric_attributes(operation: str, start: dict[str, Any], attribution: dict[str, str]) -> dict[str, AttributeValue]:
    """The attributes every metric point of a call has: operation, provider, model, server, and the attribution."""
    base: dict[str, AttributeValue] = {sc.GEN_AI_OPERATION_NAME: operation}
    for key in (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL, sc.SERVER_ADDRESS, sc.SERVER_PORT):
        if key in start:
            base[key] = start[key]
    base.update(attribution)
    return base


def _as_float(value: bytes) -> float | None:
    """A header's number, or `None` when it is none."""
    try:
        return float(value)
    except ValueError:
        return None
