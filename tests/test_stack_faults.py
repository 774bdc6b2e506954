"""Faults of the stack, with the real processes: the collector killed in the middle of a workload, and Jaeger down
while the collector runs under a flood of kept traces.

Each test runs a collector and a Jaeger of its own (tests/stack.py: the shipped configs, addresses moved to
loopback), since it kills them. The application is `stack_faults_app.py` (the one line, `claude_otel.instrument()`,
a call every 50 ms, every fifth one failing), the flood `stack_faults_flood.py` (copies of a failed call's three
spans, which tail sampling keeps, sent as fast as the collector takes them). Measured numbers are printed (`-s`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import stack

pytestmark = pytest.mark.stack

HERE = Path(__file__).resolve().parent
DECISION_WAIT_S = 10  # collector-config.yaml: tail_sampling.decision_wait
QUEUE_SPANS = 20_000  # collector-config.yaml: otlp_grpc/jaeger sending_queue.queue_size


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[stack.Jaeger, stack.Collector]]:
    """A Jaeger and a collector sending to it, for one test to break."""
    jaeger = stack.start_jaeger(tmp_path)
    try:
        collector = stack.start_collector(tmp_path, {"jaeger:4317": jaeger.otlp_grpc})
        try:
            yield jaeger, collector
        finally:
            collector.process.stop()
    finally:
        jaeger.process.stop()


class App:
    """stack_faults_app.py running in its own process, exporting to `collector` as `service`."""

    def __init__(self, collector: stack.Collector, service: str, seconds: float) -> None:
        env = {**os.environ, **collector.exporter_env, "OTEL_SERVICE_NAME": service,
               "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}  # fmt: skip
        command = [sys.executable, str(HERE / "stack_faults_app.py"), str(seconds)]
        self.popen = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.popen.stdout is not None
        ready = self.popen.stdout.readline()  # The first call has returned.
        assert ready.strip() == "ready", ready + self.popen.stderr.read() if self.popen.stderr else ""

    def finish(self) -> tuple[list[dict], str]:
        """Stops it between two calls (SIGTERM), and returns its calls and what it wrote on stderr."""
        self.popen.terminate()
        out, err = self.popen.communicate(timeout=60)
        assert self.popen.returncode == 0, err[-3000:]
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")], err

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def latencies_ms(calls: list[dict]) -> tuple[float, float]:
    """Median and 95th percentile of the calls' latencies, in ms."""
    values = sorted(call["latency"] * 1000 for call in calls)
    return statistics.median(values), values[int(len(values) * 0.95)]


def request_ids_in_jaeger(jaeger: stack.Jaeger, service: str) -> set[str]:
    return {
        tag_value
        for found in jaeger.find(service, limit=5000)
        for span in found["spans"]
        for key, tag_value in stack.tags(span).items()
        if key == "anthropic.request.id"
    }


def test_a_collector_killed_mid_workload_costs_the_application_nothing(pair: tuple[stack.Jaeger, stack.Collector]) -> None:
    """SIGKILL the collector 14 s into a steady workload, start it again 5 s later on the same addresses."""
    jaeger, collector = pair
    app = App(collector, "faults-kill", seconds=60)
    try:
        time.sleep(14)
        killed = time.time()
        collector.process.kill()
        time.sleep(5)
        collector.restart()
        restarted = time.time()
        time.sleep(8)
        calls, stderr = app.finish()
    finally:
        app.kill()
    assert calls and all(call["expected"] for call in calls), [call for call in calls if not call["expected"]][:3]
    before = [call for call in calls if call["start"] < killed]
    down = [call for call in calls if killed <= call["start"] < restarted]
    after = [call for call in calls if call["start"] >= restarted]
    (before_median, before_p95), (down_median, down_p95) = latencies_ms(before), latencies_ms(down)
    after_median, after_p95 = latencies_ms(after)
    measured = (f"{len(calls)} calls; latency median/p95 ms: before {before_median:.1f}/{before_p95:.1f}, "
                f"collector down {down_median:.1f}/{down_p95:.1f}, after {after_median:.1f}/{after_p95:.1f}")  # fmt: skip
    print(measured)
    # Export runs on the SDK's threads: an unreachable collector adds nothing to a call. 1.5x and 5 ms of slack for
    # a busy 2-core machine; a call blocked on an export would take a second or more (the exporter's backoff).
    assert down_median <= 1.5 * before_median + 5, measured
    assert down_p95 <= 1.5 * before_p95 + 20, measured

    failed = [call for call in calls if call["to_fail"]]
    time.sleep(DECISION_WAIT_S + 4)  # The last failed calls decided, and sent.
    found = request_ids_in_jaeger(jaeger, "faults-kill")
    # A trace is decided 10 s after its first span: those begun 12 s or more before the kill were in Jaeger already.
    decided_before = [call for call in failed if call["start"] < killed - DECISION_WAIT_S - 2]
    in_the_buffer = [call for call in failed if killed - DECISION_WAIT_S - 2 <= call["start"] < killed]
    exported_while_down = [call for call in failed if killed <= call["start"] < restarted]
    sent_after = [call for call in failed if call["start"] >= restarted + 1]
    share = {name: f"{sum(call['request_id'] in found for call in group)}/{len(group)}"
             for name, group in (("decided before the kill", decided_before), ("in the buffer at the kill", in_the_buffer),
                                 ("made while down", exported_while_down), ("made after the restart", sent_after))}  # fmt: skip
    print("failed calls found in Jaeger:", share)
    assert decided_before and all(call["request_id"] in found for call in decided_before), share
    assert sent_after and all(call["request_id"] in found for call in sent_after), share
    # The application's metrics reach the restarted collector (its counters start again from 0).
    assert collector.self_metric("otelcol_receiver_accepted_metric_points") > 0
    assert collector.self_metric("otelcol_receiver_accepted_spans") > 0
    assert "Traceback" not in stderr


def test_jaeger_down_keeps_the_collector_bounded_and_the_application_unaffected(pair: tuple[stack.Jaeger, stack.Collector]) -> None:
    """Jaeger killed; 36,000 kept spans flood the collector (its queue to Jaeger holds 20,000); Jaeger comes back."""
    jaeger, collector = pair
    env = {**os.environ, **collector.exporter_env, "OTEL_SERVICE_NAME": "faults-flood"}
    app = App(collector, "faults-jaeger-down", seconds=120)
    samples: list[tuple[float, int, float]] = []  # (time, RSS, queue size)
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.5):
            try:
                samples.append((time.time(), collector.process.rss_bytes(), collector.self_metric("otelcol_exporter_queue_size")))
            except Exception:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        time.sleep(4)
        rss_before = collector.process.rss_bytes()
        killed = time.time()
        jaeger.process.kill()
        flood = subprocess.run([sys.executable, str(HERE / "stack_faults_flood.py"), "12000", "100"], env=env,
                               capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
        sent = json.loads(flood.stdout)
        # Decided after decision_wait, then queued for Jaeger, which is not there: the queue fills, then overflows.
        stack.wait_for(lambda: collector.self_metric("otelcol_exporter_enqueue_failed_spans") > 0, "the queue to overflow", timeout=60)
        time.sleep(3)
        peak_while_down = max(rss for _, rss, _ in samples)
        queued = collector.self_metric("otelcol_exporter_queue_size")
        capacity = collector.self_metric("otelcol_exporter_queue_capacity")
        dropped = collector.self_metric("otelcol_exporter_enqueue_failed_spans")
        restarted = time.time()
        jaeger.process.start()
        jaeger.process.wait_ready(f"{jaeger.query}/api/services")
        # The queue drains into the new Jaeger (a retry at least every 10 s).
        stack.wait_for(lambda: collector.self_metric("otelcol_exporter_queue_size") == 0, "the queue to drain", timeout=60)
        calls, stderr = app.finish()
    finally:
        sampling.set()
        app.kill()
    flooded = len(sent["accepted"]) * sent["spans_per_trace"]
    sent_to_jaeger = collector.self_metric("otelcol_exporter_sent_spans", exporter="otlp_grpc/jaeger")
    failed_sends = collector.self_metric("otelcol_exporter_send_failed_spans", exporter="otlp_grpc/jaeger")
    measured = (f"flood: {flooded} spans accepted ({sent['refused_requests']} requests refused), "
                f"{sent['trace_bytes']} bytes a trace; RSS before {rss_before / 2**20:.0f} MiB, peak with Jaeger down "
                f"{peak_while_down / 2**20:.0f} MiB; queue {queued:.0f} of {capacity:.0f} spans, "
                f"{dropped:.0f} spans refused by the full queue; after Jaeger's restart: {sent_to_jaeger:.0f} spans sent "
                f"in all, {failed_sends:.0f} failed; queue max seen {max(q for _, _, q in samples):.0f}")  # fmt: skip
    print(measured)
    assert sent["refused_requests"] == 0 and flooded == 36_000, measured  # The collector took the flood.
    assert capacity == QUEUE_SPANS and max(q for _, _, q in samples) <= capacity, measured
    # What did not fit was refused by the queue, counted, and dropped, rather than held in memory.
    assert dropped >= flooded - QUEUE_SPANS - 8192, measured
    # Bounded: the queue's 20,000 spans (about 3 KB each on the heap) and what tail sampling holds, doubled by Go's
    # garbage collector, well under the memory_limiter's 80 % of the machine.
    assert peak_while_down - rss_before < 400 * 2**20, measured
    # The queue was delivered to the new Jaeger: everything queued, none failed; a sample of the kept traces is there.
    assert sent_to_jaeger >= queued and failed_sends == 0, measured
    stored = jaeger.find("faults-flood", limit=30000)
    print(f"traces of the flood in the restarted Jaeger: {len(stored)} of {len(sent['accepted'])}")
    assert len(stored) * sent["spans_per_trace"] >= queued - 8192, measured
    # The application noticed nothing.
    before = [call for call in calls if call["start"] < killed]
    during = [call for call in calls if killed <= call["start"] < restarted]
    assert all(call["expected"] for call in calls)
    (before_median, _), (during_median, _) = latencies_ms(before), latencies_ms(during)
    print(f"application latency median ms: before {before_median:.1f}, Jaeger down {during_median:.1f}")
    assert during_median <= 1.5 * before_median + 5
    assert "Traceback" not in stderr
