"""The metrics of every call, on the meter provider given to or set up by `instrument()`.

The GenAI semantic conventions' client inference metrics (semantic-conventions-genai, the `gen_ai.client.inference.*`
names), with their advisory bucket boundaries, plus claude_otel's own cost and reliability counters:

| metric | instrument | unit | per |
|---|---|---|---|
| `gen_ai.client.inference.duration` | histogram | s | call (with `error.type` when it failed) |
| `gen_ai.client.inference.time_to_first_chunk` | histogram | s | streamed call that got a content delta |
| `gen_ai.client.inference.operation.input_tokens` / `.output_tokens` | histogram | {token} | call with usage |
| `gen_ai.client.inference.usage.input_tokens` / `.output_tokens` / `.cache_read.input_tokens` / `.cache_write.input_tokens` / `.reasoning.output_tokens` | counter | {token} | call (0 when nothing was billed) |
| `claude_otel.cost` | counter | USD | priced call; unpriced calls add 0 with `claude_otel.cost.unpriced=true` |
| `claude_otel.calls` | counter | {call} | call, by stop reason, refusal category, stream outcome, error type and category |
| `claude_otel.attempts` | counter | {attempt} | HTTP attempt, by status code and error type |

With `legacy_metrics=True`, also the names of the earlier conventions: `gen_ai.client.operation.duration` and
`gen_ai.client.token.usage` (histogram with `gen_ai.token.type`).

Cost of recording: a synchronous instrument record costs the application thread several microseconds, so the
counters are observable instruments fed by a sum per attribute set that is kept here (a dict update per value) and
read at collection time; only the histograms, which have no observable form, are recorded per call (with the call
span's context, for exemplars). Count tokens (`count_tokens`) calls are not inference: only `claude_otel.calls` and
`claude_otel.attempts` count them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import set_span_in_context
from opentelemetry.util.types import AttributeValue

from . import _semconv as sc
from .version import __version__

if TYPE_CHECKING:
    from ._call import Call

DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

USAGE_COUNTERS = (
    ("input_tokens", "gen_ai.client.inference.usage.input_tokens", "Input tokens billed, cache reads and writes included"),
    ("output_tokens", "gen_ai.client.inference.usage.output_tokens", "Output tokens billed"),
    ("cache_read", "gen_ai.client.inference.usage.cache_read.input_tokens", "Input tokens read from the prompt cache"),
    ("cache_write", "gen_ai.client.inference.usage.cache_write.input_tokens", "Input tokens written to the prompt cache"),
    ("reasoning", "gen_ai.client.inference.usage.reasoning.output_tokens", "Output tokens spent on thinking"),
)
COST = "claude_otel.cost"
CALLS = "claude_otel.calls"
ATTEMPTS = "claude_otel.attempts"

Key = tuple[tuple[str, AttributeValue], ...]


class _Sums:
    """Cumulative sums per attribute set, observed by an observable counter at collection time."""

    def __init__(self) -> None:
        self._values: dict[Key, float] = {}
        self._lock = threading.Lock()

    def add(self, key: Key, value: float) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + value

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = list(self._values.items())
        return [Observation(value, dict(key)) for key, value in items]


class Metrics:
    """Records each call's metrics. `record` never raises."""

    def __init__(self, meter_provider: metrics.MeterProvider | None, legacy: bool) -> None:
        meter = metrics.get_meter("claude_otel", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.inference.duration",
            unit="s",
            description="Duration of a GenAI inference call, its retries and the reading of its stream included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._ttft = meter.create_histogram(
            "gen_ai.client.inference.time_to_first_chunk",
            unit="s",
            description="Time from the start of a streamed call to its first content delta",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._input_histogram = meter.create_histogram(
            "gen_ai.client.inference.operation.input_tokens",
            unit="{token}",
            description="Input tokens of one inference call",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._output_histogram = meter.create_histogram(
            "gen_ai.client.inference.operation.output_tokens",
            unit="{token}",
            description="Output tokens of one inference call",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._sums: dict[str, _Sums] = {}
        for field, name, description in USAGE_COUNTERS:
            self._observable(meter, field, name, "{token}", description)
        self._observable(meter, COST, COST, "USD", "Cost of Claude calls in US dollars, at the prices in use")
        self._observable(meter, CALLS, CALLS, "{call}", "Claude calls, by how they ended")
        self._observable(meter, ATTEMPTS, ATTEMPTS, "{attempt}", "HTTP attempts of Claude calls, by their outcome")
        self._legacy_duration = self._legacy_tokens = None
        if legacy:
            self._legacy_duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration (earlier conventions' name)",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self._legacy_tokens = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Tokens used by a GenAI operation (earlier conventions' name)",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )

    def _observable(self, meter: metrics.Meter, field: str, name: str, unit: str, description: str) -> None:
        sums = self._sums[field] = _Sums()
        meter.create_observable_counter(name, callbacks=[sums.observe], unit=unit, description=description)

    def record(
        self,
        call: Call,
        base: dict[str, AttributeValue],
        attributes: dict[str, AttributeValue],
        duration: float,
        cost: float | None,
    ) -> None:
        """Records one ended call. `base` are its metric attributes (operation, provider, model, server, attribution);
        `attributes` its span's final attributes."""
        error = attributes.get(sc.ERROR_TYPE)
        context = set_span_in_context(call.span)
        sums = self._sums
        calls = dict(base)
        for key in (
            sc.ERROR_TYPE,
            sc.CLAUDE_OTEL_ERROR_CATEGORY,
            sc.ANTHROPIC_STOP_REASON,
            sc.ANTHROPIC_STOP_DETAILS_CATEGORY,
            sc.CLAUDE_OTEL_STREAM_OUTCOME,
        ):
            value = attributes.get(key)
            if value is not None:
                calls[key] = value
        sums[CALLS].add(_key(calls), 1)
        for status, attempt_error in call.attempt_results:
            attempt = dict(base)
            if status is not None:
                attempt[sc.HTTP_RESPONSE_STATUS_CODE] = status
            if attempt_error is not None:
                attempt[sc.ERROR_TYPE] = attempt_error
            sums[ATTEMPTS].add(_key(attempt), 1)
        if call.operation != sc.OPERATION_CHAT:
            return

        timed = dict(base)
        if error is not None:
            timed[sc.ERROR_TYPE] = error
        self._duration.record(duration, timed, context=context)
        if self._legacy_duration is not None:
            self._legacy_duration.record(duration, timed, context=context)
        ttft = attributes.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttft is not None:
            self._ttft.record(ttft, base, context=context)

        usage = {
            "input_tokens": attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS),
            "output_tokens": attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS),
            "cache_read": attributes.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
            "cache_write": attributes.get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS),
            "reasoning": attributes.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
        }
        # The conventions: record for every call, failed ones included, 0 when nothing was received.
        tokens_key = _key({**base, "gen_ai.token.modality": "unknown"})
        for field, _, _ in USAGE_COUNTERS:
            sums[field].add(tokens_key, usage[field] or 0)
        if usage["input_tokens"] is not None:
            self._input_histogram.record(usage["input_tokens"], timed, context=context)
        if usage["output_tokens"] is not None:
            self._output_histogram.record(usage["output_tokens"], timed, context=context)
        if self._legacy_tokens is not None:
            for token_type, value in (("input", usage["input_tokens"]), ("output", usage["output_tokens"])):
                if value is not None:
                    self._legacy_tokens.record(value, {**base, "gen_ai.token.type": token_type}, context=context)

        if cost is not None or attributes.get(sc.CLAUDE_OTEL_COST_UNPRICED):
            costed = dict(base)
            tier = attributes.get(sc.ANTHROPIC_RESPONSE_SERVICE_TIER)
            if tier is not None:
                costed[sc.ANTHROPIC_RESPONSE_SERVICE_TIER] = tier
            if cost is None:
                costed[sc.CLAUDE_OTEL_COST_UNPRICED] = True
            sums[COST].add(_key(costed), cost or 0.0)


def _key(attributes: dict[str, AttributeValue]) -> Key:
    return tuple(sorted(attributes.items()))


def metric_attributes(start: dict[str, Any], attribution: dict[str, str]) -> dict[str, AttributeValue]:
    """The attributes every metric point of a call has: operation, provider, model, server, and the attribution."""
    base: dict[str, AttributeValue] = {
        key: start[key]
        for key in (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL, sc.SERVER_ADDRESS, sc.SERVER_PORT)
        if key in start
    }
    base.update(attribution)
    return base
