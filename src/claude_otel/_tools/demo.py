"""`claude-otel demo`: a realistic mixed workload through the real SDK, and the telemetry it produced.

Against the bundled simulator by default (no API key, no network), or the real API with `--live`. Spans are
exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (to a collector, Jaeger, ...); either way, the demo
prints one line per call, read back from the call spans themselves: what an on-call engineer would look up.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from .. import _semconv as sc

MODEL = "claude-sonnet-5-5"
SMALL_MODEL = "claude-haiku-5-5"


class _Collect(SpanProcessor):
    """Keeps claude_otel's finished call spans (not its attempt spans) for the table."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is not None and scope.name == "claude_otel" and sc.CLAUDE_OTEL_ATTEMPTS in (span.attributes or {}):
            self.spans.append(span)


@dataclass
class _Step:
    label: str
    run: Callable[[Any, Any], Any]
    """Given the sync and the async client. May raise: the demo shows failures, it does not hide them."""
    simulated_only: bool = False


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _scenario(steps: str, usage: str | None = None) -> dict[str, str]:
    """The simulator's headers: the steps, and usage fields of the answer (see `claude_otel.testing`)."""
    from ..testing import SCENARIO_HEADER, USAGE_HEADER

    return {SCENARIO_HEADER: steps, USAGE_HEADER: usage} if usage else {SCENARIO_HEADER: steps}


# Invoice lines beyond tokens, for the dashboards' panels of them: an agent's web searches (and a free fetch), and a
# prompt served by US-only inference (1.1x).
_SEARCHED = '{"server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1}}'
_US_ONLY = '{"inference_geo": "us"}'


def _stream_to_end(client: Any, **kwargs: Any) -> None:
    for _ in client.messages.create(**kwargs, stream=True):
        pass


def _helper_text(client: Any) -> str:
    with client.messages.stream(model=MODEL, max_tokens=300, messages=_ask("Hello!")) as stream:
        return "".join(stream.text_stream)


def _abandon_stream(client: Any) -> None:
    with client.messages.stream(model=MODEL, max_tokens=300, messages=_ask("Tell me a long story.")) as stream:
        for _ in stream.text_stream:
            break  # The user closed the tab.


async def _async_stream(client: Any) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=200, messages=_ask("Draft a reply.")) as stream:
        await stream.get_final_message()


def _nightly_batch(client: Any) -> None:
    """The cheap path: a small Message Batch, polled until it ends, and its results read."""
    documents = ("ok-contract", "cache-handbook", "ok-faq", "errored-empty")
    batch = client.messages.batches.create(
        requests=[
            {"custom_id": name, "params": {"model": SMALL_MODEL, "max_tokens": 200, "messages": _ask(f"Summarise {name}.")}}
            for name in documents
        ]
    )
    while client.messages.batches.retrieve(batch.id).processing_status != "ended":
        pass
    for _ in client.messages.batches.results(batch.id):
        pass


def _steps() -> list[_Step]:
    return [
        _Step("search: answer", lambda c, a: c.messages.create(model=SMALL_MODEL, max_tokens=200, messages=_ask("Which plan includes SSO?"))),
        _Step("chat: streamed reply", lambda c, a: _stream_to_end(c, model=MODEL, max_tokens=300, messages=_ask("Summarise this ticket."))),
        _Step("chat: stream helper", lambda c, a: _helper_text(c)),
        _Step("chat: async helper", lambda c, a: asyncio.run(_async_stream(a))),
        _Step("agent: tool call", lambda c, a: c.messages.create(model=MODEL, max_tokens=200, messages=_ask("Weather in Paris?"), extra_headers=_scenario("tool_use", _SEARCHED)), simulated_only=True),
        _Step("summarize: cached prompt", lambda c, a: c.messages.create(model=MODEL, max_tokens=200, messages=_ask("Summarise the handbook."), extra_headers=_scenario("cache", _US_ONLY)), simulated_only=True),
        _Step("search: count tokens", lambda c, a: c.messages.count_tokens(model=SMALL_MODEL, messages=_ask("How long is this?"))),
        _Step("chat: overloaded, retried", lambda c, a: c.messages.create(model=MODEL, max_tokens=200, messages=_ask("Hi"), extra_headers=_scenario("529,ok")), simulated_only=True),
        _Step("chat: rate limited", lambda c, a: c.messages.create(model=MODEL, max_tokens=200, messages=_ask("Hi"), extra_headers=_scenario("429")), simulated_only=True),
        _Step("chat: error after 200", lambda c, a: _stream_to_end(c, model=MODEL, max_tokens=300, messages=_ask("Go on."), extra_headers=_scenario("error_event")), simulated_only=True),
        _Step("chat: truncated stream", lambda c, a: _stream_to_end(c, model=MODEL, max_tokens=300, messages=_ask("Go on."), extra_headers=_scenario("truncate")), simulated_only=True),
        _Step("moderation: refusal", lambda c, a: c.messages.create(model=MODEL, max_tokens=200, messages=_ask("..."), extra_headers=_scenario("refusal")), simulated_only=True),
        _Step("chat: abandoned stream", lambda c, a: _abandon_stream(c)),
        _Step("report: max tokens", lambda c, a: c.messages.create(model=MODEL, max_tokens=8, messages=_ask("Write an essay."), extra_headers=_scenario("max_tokens"))),
        _Step("nightly: batch", lambda c, a: _nightly_batch(c), simulated_only=True),
    ]


TENANTS = ("acme", "globex")
"""The demo's customers: its steps alternate between them."""


def run_workload(
    client: Any, async_client: Any, simulated: bool = True, after_step: Callable[[str], None] | None = None
) -> None:
    """Runs the demo's steps once through the given (instrumented) clients: a call or a few of every kind, each under
    the attribution `feature=<its feature>, tenant=<one of TENANTS>`, so that every dashboard panel has data (cache
    reads and writes, a Message Batch, 429s and 529s, failures after a 200, a refusal, streams with a first token).
    `simulated=False` leaves out the steps that only the simulator can script. API errors are part of the workload
    and are swallowed; `after_step(label)` is called after each step that ran."""
    import anthropic

    import claude_otel

    for number, step in enumerate(_steps()):
        if step.simulated_only and not simulated:
            continue
        try:
            # Each call counts for the product feature it served and the customer it served it to.
            with claude_otel.attributes(feature=step.label.partition(":")[0], tenant=TENANTS[number % len(TENANTS)]):
                step.run(client, async_client)
        except anthropic.APIError:
            pass
        if after_step is not None:
            after_step(step.label)


def run_demo(argv: Sequence[str] = (), out: TextIO = sys.stdout) -> int:
    """Runs the workload and prints the table. Returns the process exit code."""
    import anthropic

    import claude_otel

    live = "--live" in argv
    if live and not os.environ.get("ANTHROPIC_API_KEY"):
        print("claude-otel demo --live needs ANTHROPIC_API_KEY in the environment.", file=sys.stderr)
        return 2

    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    collect = _Collect()
    if exporting:
        os.environ.setdefault("OTEL_SERVICE_NAME", "claude-otel-demo")
        claude_otel.instrument()  # The one line: OTLP export set up from the environment.
        provider = trace.get_tracer_provider()
    else:
        from opentelemetry.sdk.metrics import MeterProvider

        # Nothing to export to: keep the spans in the process for the table only, and the metrics nowhere.
        provider = TracerProvider()
        claude_otel.instrument(tracer_provider=provider, meter_provider=MeterProvider())
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(collect)

    simulator = None
    if not live:
        from ..testing import RateLimits, Simulator

        # Tier 1's limits per minute, so that the rate-limit headroom panel moves with the demo's few calls.
        limits = RateLimits(requests=50, input_tokens=30_000, output_tokens=8_000)
        simulator = Simulator(event_delay=0.004, first_byte_delay=0.03, retry_after=0.2, rate_limits=limits).start()
    base_url = None if simulator is None else simulator.url
    key = os.environ.get("ANTHROPIC_API_KEY", "sk-ant-demo-not-a-real-key") if live else "sk-ant-demo-not-a-real-key"
    client = anthropic.Anthropic(api_key=key, base_url=base_url)
    async_client = anthropic.AsyncAnthropic(api_key=key, base_url=base_url)

    labels: list[str] = []
    try:
        with trace.get_tracer("claude-otel-demo").start_as_current_span("demo workload"):
            def label(step: str) -> None:  # The call spans the step added are its rows.
                labels.extend([step] * (len(collect.spans) - len(labels)))

            run_workload(client, async_client, simulated=not live, after_step=label)
    finally:
        if simulator is not None:
            simulator.stop()
        if isinstance(provider, TracerProvider):
            provider.force_flush()
    _print_table(labels, collect.spans, out)
    where = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    print(
        f"\n{len(collect.spans)} calls traced, one call span each"
        + (f", exported over OTLP to {where}." if where else ". Set OTEL_EXPORTER_OTLP_ENDPOINT to export them."),
        file=out,
    )
    return 0


_COLUMNS = ("call", "request_id", "model", "stop_reason", "in", "out", "latency", "ttft", "tries", "outcome")


def _print_table(labels: list[str], spans: list[ReadableSpan], out: TextIO) -> None:
    rows = [_COLUMNS]
    for label, span in zip(labels, spans):
        attributes = span.attributes or {}
        duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        ttft = attributes.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if span.name.startswith(sc.SPAN_NAME_BATCHES_PREFIX + "batches."):
            label = f"{label} {span.name.rsplit('.', 1)[1]}"
        rows.append(
            (
                label,
                str(attributes.get(sc.ANTHROPIC_REQUEST_ID, "-")),
                str(attributes.get(sc.GEN_AI_REQUEST_MODEL) or ",".join(_strings(attributes.get(sc.CLAUDE_OTEL_BATCH_MODELS))) or "-"),
                str(attributes.get(sc.ANTHROPIC_STOP_REASON, "-")),
                str(attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, attributes.get(sc.ANTHROPIC_COUNT_TOKENS_INPUT_TOKENS, "-"))),
                str(attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, "-")),
                f"{duration * 1000:.0f} ms",
                f"{float(ttft) * 1000:.0f} ms" if isinstance(ttft, (int, float)) else "-",
                str(attributes.get(sc.CLAUDE_OTEL_ATTEMPTS, "-")),
                _outcome(span),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
        if number == 0:
            print("  ".join("-" * width for width in widths), file=out)


def _strings(value: object) -> list[str]:
    """The items of a sequence attribute as strings; none for anything else."""
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else []


def _outcome(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    error = attributes.get(sc.ERROR_TYPE)
    outcome = attributes.get(sc.CLAUDE_OTEL_STREAM_OUTCOME)
    if error:
        return f"{outcome or 'failed'}: {error}"
    return str(outcome or attributes.get(sc.ANTHROPIC_MESSAGE_BATCH_PROCESSING_STATUS) or "ok")
