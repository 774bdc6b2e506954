"""The one-line promise: with no provider configured, `instrument()` exports over real OTLP (gRPC or HTTP) from the
standard environment variables; and the zero-code path, `opentelemetry-instrument python app.py`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from claude_otel.testing import OtlpReceiver, Simulator

WORKLOAD = str(Path(__file__).with_name("workload.py"))


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment.update(env)
    return subprocess.run(args, env=environment, capture_output=True, text=True, timeout=timeout, check=False)


def assert_workload_spans(spans, protocol: str) -> None:
    calls = [span for span in spans if span.scope == "claude_otel" and "claude_otel.attempts" in span.attributes]
    assert [span.name for span in calls] == ["chat claude-sonnet-5-5"] * 3
    # Attempt spans for the failed call only: first-time successes have none.
    attempts = [span for span in spans if span.scope == "claude_otel" and span.name == "POST"]
    assert [span.parent_span_id for span in attempts] == [calls[2].span_id]
    assert {span.protocol for span in spans} == {protocol}
    (parent,) = [span for span in spans if span.name == "handle-request"]
    assert {span.parent_span_id for span in calls} == {parent.span_id}
    assert {span.trace_id for span in calls} == {parent.trace_id}
    plain, streamed, failed = calls
    assert plain.attributes["anthropic.request.id"].startswith("req_sim_")
    assert streamed.attributes["claude_otel.stream.outcome"] == "completed"
    assert failed.attributes["error.type"] == "overloaded_error"
    assert failed.status_code == 2  # STATUS_CODE_ERROR
    assert plain.resource["service.name"] == "checkout"
    assert plain.resource["deployment.environment.name"] == "test"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_instrument_sets_up_otlp_export(sim: Simulator, protocol: str) -> None:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        result = run(
            [sys.executable, WORKLOAD, sim.url, "instrument"],
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
                "OTEL_SERVICE_NAME": "checkout",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            },
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for(lambda spans: len(spans) >= 4)
    assert_workload_spans(spans, protocol)
    assert "sk-ant-secret-key-0000" not in repr(spans)


def test_zero_code_entry_point(sim: Simulator) -> None:
    (entry_point,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.value.startswith("claude_otel")]
    assert entry_point.name == "claude_otel"  # Not `anthropic`, which three other packages claim.
    instrument = shutil.which("opentelemetry-instrument", path=os.path.dirname(sys.executable))
    assert instrument is not None
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_SERVICE_NAME": "checkout",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
        result = run([instrument, sys.executable, WORKLOAD, sim.url], env)
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for(lambda spans: len(spans) >= 4)
        assert_workload_spans(spans, "grpc")

        disabled = run([instrument, sys.executable, WORKLOAD, sim.url], {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "claude_otel"})
        assert disabled.returncode == 0, disabled.stderr
        time.sleep(1)
        later = receiver.wait_for(lambda spans: len(spans) >= 5, timeout=2)
    disabled_spans = later[len(spans):]
    assert "handle-request" in [span.name for span in disabled_spans]
    # None of ours: the application's own span, and on SDK >= 1.14 the SDK's own call spans, as without claude_otel.
    assert [span for span in disabled_spans if span.scope == "claude_otel"] == []


def test_unreachable_collector_does_not_fail_or_block_the_application(sim: Simulator) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    started = time.perf_counter()
    result = run(
        [sys.executable, WORKLOAD, sim.url, "instrument"],
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_TIMEOUT": "2"},
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["failed"] == "529"
    print(f"calls with the collector down: create {lines['create']} s, stream {lines['stream']} s; process {elapsed:.1f} s")
