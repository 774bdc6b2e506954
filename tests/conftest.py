"""Shared fixtures: the simulator, an instrumented SDK whose spans a test reads, and clients for both."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import anthropic
import pytest
from hypothesis import settings
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel
from claude_otel.testing import SCENARIO_HEADER, Simulator
from stack import real_stack  # noqa: F401 - the real stack, one per session, for the tests that use it

# CI replays the same examples every run (`HYPOTHESIS_PROFILE=ci`, set by `.ci/run`); a developer's run explores.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

MODEL = "claude-sonnet-5-5"
MESSAGES = [{"role": "user", "content": "Say hello."}]
SDK_VERSION = tuple(int(part) for part in anthropic.__version__.split(".")[:2])
SDK_TRACES_ITSELF = SDK_VERSION >= (1, 14)


class Spans:
    """The spans the instrumented SDK finished, for one test."""

    def __init__(self, exporter: InMemorySpanExporter, provider: TracerProvider, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.provider = provider
        self.reader = reader

    def points(self, name: str) -> list:
        """The data points of the metric `name` that claude_otel recorded, as the reader collects them now."""
        data = self.reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        found.append(metric)
        return [point for metric in found for point in metric.data.data_points]

    def metric(self, name: str):
        """The metric `name` itself (unit, description, data), or None."""
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        return metric
        return None

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def calls(self) -> list[ReadableSpan]:
        """The call spans claude_otel made (each carries its attempt count)."""
        return [span for span in self.all() if is_call_span(span)]

    def attempts(self, call: ReadableSpan | None = None) -> list[ReadableSpan]:
        """The attempt spans claude_otel made, of one call or of all (in the order of the attempts)."""
        return [
            span
            for span in self.all()
            if span.instrumentation_scope.name == "claude_otel"
            and not is_call_span(span)
            and (call is None or span.parent.span_id == call.context.span_id)
        ]

    def one(self) -> ReadableSpan:
        """The only call span of the test; every other span of the test must be one of its attempts."""
        gc.collect()
        calls = self.calls()
        assert len(calls) == 1, [span.name for span in self.all()]
        attempts = self.attempts(calls[0])
        assert len(self.all()) == 1 + len(attempts), [span.name for span in self.all()]
        # A span per attempt for a call that was retried or failed; none for a first-time success.
        count = calls[0].attributes["claude_otel.attempts"]
        retried_or_failed = count > 1 or "error.type" in calls[0].attributes
        assert len(attempts) == (count if retried_or_failed else 0)
        return calls[0]


def is_call_span(span: ReadableSpan) -> bool:
    return span.instrumentation_scope.name == "claude_otel" and "claude_otel.attempts" in span.attributes


@pytest.fixture(scope="session", autouse=True)
def _global_meter_provider() -> None:
    """A global meter provider that exports nowhere, so that no test makes `instrument()` set up OTLP export."""
    metrics.set_meter_provider(MeterProvider())


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def spans() -> Iterator[Spans]:
    """claude_otel instrumenting the SDK, with a tracer provider of the test's own; uninstrumented afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    claude_otel.instrument(tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[reader]))
    try:
        yield Spans(exporter, provider, reader)
    finally:
        claude_otel.uninstrument()


def scenario(steps: str) -> dict[str, str]:
    """The `extra_headers` that script the simulator's answer to each attempt."""
    return {SCENARIO_HEADER: steps}


@pytest.fixture
def client(sim: Simulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2) as instance:
        yield instance


@pytest.fixture
def async_client(sim: Simulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2)
