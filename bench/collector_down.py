"""What the application pays when the collector is down: `python bench/collector_down.py`.

Runs of the same workload, each in a process of its own set up by the one line, `claude_otel.instrument()`, under
default settings (no OTEL_* variable but the endpoint and the protocol), exporting traces and metrics over OTLP/gRPC
and OTLP/HTTP to: a healthy receiver (`claude_otel.testing.OtlpReceiver`), a port that refuses connections, and a
black hole that accepts connections and never answers. Each run makes plain calls through the real SDK against an
in-process transport (no API): 20,000 as fast as they go, and 2,000 for a short job whose spans all wait in the export
queue at exit. It prints the median and p99 call latency, the RSS after the calls, the spans the healthy
receiver got (one per call, less what the export queue dropped while the calls ran faster than it exports), the lines written on stderr, and how long the process took
to exit after its last call (its exit handler flushes and shuts the providers down, for at most
CLAUDE_OTEL_EXIT_TIMEOUT, 0.5 s by default). Asserts nothing.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

CALLS = 20_000
BACKLOG_CALLS = 2_000
"""A short job: fewer spans than the export queue holds (2,048), all still to send when the process exits."""


def child() -> None:
    sys.path.insert(0, os.path.dirname(__file__))
    from overhead import client, plain  # type: ignore[import-not-found]

    import claude_otel

    claude_otel.instrument()
    c = client(None)
    latencies = []
    for _ in range(int(os.environ["BENCH_CALLS"])):
        started = time.perf_counter()
        plain(c)
        latencies.append((time.perf_counter() - started) * 1e6)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    latencies.sort()
    print(
        json.dumps(
            {
                "median_us": statistics.median(latencies),
                "p99_us": latencies[int(len(latencies) * 0.99)],
                "max_rss_mb": rss_mb,
                "calls_ended_at": time.time(),
            }
        ),
        flush=True,
    )
    # Then the process exits: the exit handlers flush and shut the providers down.


def run(endpoint: str, protocol: str, calls: int = CALLS) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "CLAUDE_OTEL_"))}
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_SERVICE_NAME": "collector-down-bench", "BENCH_CALLS": str(calls)})
    result = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    exited = time.time()
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["exit_s"] = exited - row["calls_ended_at"]
    row["stderr_lines"] = len(result.stderr.splitlines())
    return row


def main() -> None:
    from claude_otel.testing import OtlpReceiver

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        refused_port = unused.getsockname()[1]
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)  # Connections complete in the kernel's backlog; nothing ever reads or answers them.
    results = {}
    for protocol, short in (("grpc", "gRPC"), ("http/protobuf", "HTTP")):
        for calls, name in ((CALLS, f"{short} healthy"), (BACKLOG_CALLS, f"{short} healthy, short")):
            with OtlpReceiver() as receiver:
                row = run(receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint, protocol, calls)
                row["received"] = len(receiver.spans)
                results[name] = row
        results[f"{short} refused"] = run(f"http://127.0.0.1:{refused_port}", protocol)
        results[f"{short} never answers"] = run(f"http://127.0.0.1:{black_hole.getsockname()[1]}", protocol)
    black_hole.close()
    print("plain calls, default settings")
    for name, row in results.items():
        base = results[name.split()[0] + " healthy"]["median_us"]
        calls = BACKLOG_CALLS if name.endswith("short") else CALLS
        received = f"spans received {row['received']:6d}" if "received" in row else " " * 21
        print(
            f"{name:22s} {calls:6d} calls  median {row['median_us']:7.1f} µs (x{row['median_us'] / base:.3f})  p99 {row['p99_us']:7.1f} µs  "
            f"max RSS {row['max_rss_mb']:6.1f} MB  {received}  "
            f"stderr lines {row['stderr_lines']:3d}  exit took {row['exit_s']:5.2f} s"
        )


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
