"""The main job: `claude-otel demo` runs its workload against the simulator and shows each call's telemetry."""

from __future__ import annotations

import os
import subprocess
import sys

from claude_otel.testing import OtlpReceiver


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "ANTHROPIC_"))}
    return subprocess.run(
        [sys.executable, "-m", "claude_otel", "demo"], env={**environment, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_demo_prints_a_row_per_call() -> None:
    result = run_demo({})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["call", "request_id", "model", "stop_reason", "in", "out", "latency", "ttft", "tries", "outcome"]
    rows = {line.split("  ")[0]: line for line in lines[2:] if line.strip() and not line.startswith("19 ")}
    assert len([line for line in lines if "req_sim_" in line]) == 19
    assert rows["chat: overloaded, retried"].split()[-2:] == ["2", "ok"]
    assert rows["chat: rate limited"].endswith("3      failed: rate_limit_error")
    assert rows["chat: error after 200"].endswith("failed: overloaded_error")
    assert rows["chat: truncated stream"].endswith("truncated: api_error")
    assert rows["chat: abandoned stream"].endswith("abandoned")
    assert " refusal " in rows["moderation: refusal"]
    assert rows["nightly: batch create"].endswith("in_progress")
    assert rows["nightly: batch results"].endswith("completed")
    assert "19 calls traced" in result.stdout


def test_demo_exports_over_otlp() -> None:
    with OtlpReceiver() as receiver:
        result = run_demo({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint, "OTEL_METRICS_EXPORTER": "none"})
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for(lambda spans: len([span for span in spans if span.scope == "claude_otel"]) >= 42)
    calls = [span for span in spans if span.scope == "claude_otel" and "claude_otel.attempts" in span.attributes]
    assert len(calls) == 19
    assert {span.attributes.get("claude_otel.feature") for span in calls} >= {"search", "chat", "nightly"}
    assert {span.resource["service.name"] for span in calls} == {"claude-otel-demo"}
    assert f"exported over OTLP to {receiver.grpc_endpoint}" in result.stdout
