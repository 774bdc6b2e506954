"""What the application pays when the collector is down: `python bench/collector_down.py`.

Three runs of the same workload, each in a process of its own set up by the one line, `claude_otel.instrument()`,
exporting traces and metrics over OTLP/gRPC (the defaults) to: a healthy receiver (`claude_otel.testing.OtlpReceiver`),
a port that refuses connections, and a black hole that accepts connections and never answers. Each run makes plain
calls through the real SDK against an in-process transport (no API), and prints the median and p99 call latency,
the RSS after the calls, the spans the export queue dropped, and how long the process took to exit after its last
call (its exit handlers flush and shut the providers down), next to the exporter timeout. Asserts nothing.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

CALLS = 20_000
TIMEOUT_S = 2  # OTEL_EXPORTER_OTLP_TIMEOUT for the runs


def child() -> None:
    sys.path.insert(0, os.path.dirname(__file__))
    import claude_otel
    from overhead import client, plain  # type: ignore[import-not-found]

    dropped = []

    class CountDrops(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "dropping" in record.getMessage():
                dropped.append(1)

    logging.getLogger("opentelemetry").addHandler(CountDrops())
    claude_otel.instrument()
    c = client(None)
    latencies = []
    for _ in range(CALLS):
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
                "dropped": len(dropped),
                "calls_ended_at": time.time(),
            }
        ),
        flush=True,
    )
    # Then the process exits: the exit handlers flush and shut the providers down.


def run(endpoint: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TIMEOUT": str(TIMEOUT_S),
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_SERVICE_NAME": "collector-down-bench",
        }
    )
    result = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["exit_s"] = time.time() - row["calls_ended_at"]
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
    with OtlpReceiver() as receiver:
        results["healthy collector"] = run(receiver.grpc_endpoint)
    results["connection refused"] = run(f"http://127.0.0.1:{refused_port}")
    results["accepts, never answers"] = run(f"http://127.0.0.1:{black_hole.getsockname()[1]}")
    black_hole.close()
    base = results["healthy collector"]["median_us"]
    print(f"{CALLS} plain calls per run, OTLP/gRPC, exporter timeout {TIMEOUT_S} s")
    for name, row in results.items():
        print(
            f"{name:24s} median {row['median_us']:7.1f} µs (x{row['median_us'] / base:.3f})  p99 {row['p99_us']:7.1f} µs  "
            f"max RSS {row['max_rss_mb']:6.1f} MB  dropped spans {row['dropped']:6d}  exit took {row['exit_s']:5.2f} s"
        )


if __name__ == "__main__":
    child() if "--child" in sys.argv else main()
