"""Runs the anthropic SDK's own test suite without claude_otel and with it, and compares: `python scripts/sdk_suite.py
VERSION [pytest arguments]` (e.g. `0.121.0`, `2.14.0`).

Downloads the SDK's source distribution (which ships its tests) from the package index, makes a virtualenv in
`.sdk-suite/VERSION` with that SDK, its test dependencies and this checkout of claude_otel, starts the simulator for
the tests of `tests/api_resources` (which expect a mock API server; what the simulator does not serve fails alike in
both runs, with the same message), and runs the suite twice with JUnit reports: plain, then instrumented by
`scripts/sdk_suite_plugin.py`. Prints how many tests have the same outcome and message, each test whose outcome
differs (grouped by module), what claude_otel caught of its own failures, and how many of its spans never ended.
Asserts nothing; needs the package index, and minutes (about 20 for 2.x on two cores).

Last run of the whole suite, 2026-12-02, anthropic 2.14.0, after the restructuring of #19 (typed records, one
reader per API, the observer, the options model): 15,154 tests, 14,647 with the same outcome and message, 507
with another: exactly the modules and counts of the run before it (489 in the SDK's tests of its own tracing,
`tests/test_open_telemetry.py` and `tests/lib/tools/test_open_telemetry.py`, 18 in `tests/lib/tools/test_runners.py`
comparing the exact headers of two runs, `traceparent` included; see docs/tests.md). claude_otel caught 218 failures
of its own, all from the tracer providers those tests make raise ("could not start the span" 198, "could not end"
18, "could not write the trace context" 2). The span count did not reach `spans.log` from the pytest-xdist workers
(only the controller's `0 0`); a run of `tests/test_client.py` alone shows the workers writing theirs (38 and 96
started, none left open).

The run before, the same day, anthropic 2.14.0, `tests/test_open_telemetry.py` (the SDK's tests of its own tracing; the
rest of its suite showed no difference that was not the harness's, issue #20): 886 tests, 432 with the same
outcome and message, 454 that pass plain and fail instrumented. Every one of the 454 looks for the SDK's own spans
(`anthropic.messages.create` and its attributes, the SDK's span count, its calls into OpenTelemetry), which
claude_otel replaces by its call span (`chat MODEL`) and attempt spans by design: one call span per call, never two.
That includes the tests of streams whose body was read before the call returned, which claude_otel now follows to
their end with its own span (tests/test_read_early.py). No test changed through an exception, a return value or a
warning; claude_otel caught 194 failures of its own (the SDK's tests of tracer providers that raise: "could not
start the span of an API call" 182, "could not end" 10, "could not write the trace context" 2) and left none of
its 211 spans unended.
"""

from __future__ import annotations

import collections
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
_NOT_FOR_TESTS = {"pyright", "mypy", "ruff", "boto3-stubs", "griffe"}
"""Development dependencies of the SDK that its tests do not import (type checkers, linters, stubs)."""


def main(version: str, pytest_args: list[str]) -> None:
    work = REPO / ".sdk-suite" / version
    work.mkdir(parents=True, exist_ok=True)
    source = prepare(version, work)
    python = str(work / "venv" / "bin" / "python")
    port = free_port()
    simulator = subprocess.Popen(
        [python, "-c", f"import time\nfrom claude_otel.testing import Simulator\nwith Simulator(port={port}):\n    time.sleep(10**6)"]
    )
    try:
        wait_for(port)
        env = {**os.environ, "TEST_API_BASE_URL": f"http://127.0.0.1:{port}", "CLAUDE_OTEL_SUITE_OUT": str(work)}
        for name in ("failures.log", "spans.log"):
            (work / name).unlink(missing_ok=True)
        for run, extra in (("plain", []), ("instrumented", ["-p", "sdk_suite_plugin"])):
            env["PYTHONPATH"] = str(REPO / "scripts") if extra else ""
            print(f"=== anthropic {version}: {run}", flush=True)
            done = subprocess.run(
                [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={work / run}.xml", *extra, *pytest_args],
                cwd=source, env=env, capture_output=True, text=True,
                check=False,
            )
            print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:], flush=True)
    finally:
        simulator.terminate()
    report(work)


def prepare(version: str, work: Path) -> Path:
    """The SDK's source tree with its tests, and a virtualenv that can run them with claude_otel."""
    source = work / f"anthropic-{version}"
    environment = work / "venv"
    pip = [str(environment / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    ready = work / "ready"  # Written once everything is in place, so that a set-up cut short is done again.
    if not ready.exists():
        venv.create(environment, with_pip=True)
        subprocess.run([*pip, "download", "--no-deps", "--no-binary", ":all:", "-d", str(work), f"anthropic=={version}"], check=True)
        with tarfile.open(work / f"anthropic-{version}.tar.gz") as archive:
            archive.extractall(work, filter="data")
        group = tomllib.loads((source / "pyproject.toml").read_text())["dependency-groups"]["dev"]
        wanted = [requirement for requirement in group if re.split(r"[\s<>=!~;\[]", requirement)[0] not in _NOT_FOR_TESTS]
        subprocess.run([*pip, "install", "-e", str(REPO), f"anthropic[bedrock,vertex]=={version}", *wanted], check=True)
        ready.touch()
    return source


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int) -> None:
    """Returns once the simulator accepts connections on `port` (it starts in well under the 10 s allowed)."""
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the simulator did not start on port {port}")


def outcomes(report_file: Path) -> dict[str, tuple[str, str]]:
    """Each test's outcome (passed, failure, error, skipped) and the first line of its message."""
    found = {}
    for case in ET.parse(report_file).iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, (child.get("message") or "").partition("\n")[0]
                break
        found[f"{case.get('classname')}::{case.get('name')}"] = (outcome, message)
    return found


def report(work: Path) -> None:
    plain, instrumented = outcomes(work / "plain.xml"), outcomes(work / "instrumented.xml")
    differ = sorted(test for test in plain.keys() | instrumented.keys() if plain.get(test, ("missing",))[0] != instrumented.get(test, ("missing",))[0])
    same = sum(1 for test in plain if instrumented.get(test) == plain[test])
    print(f"{len(plain)} tests: {same} with the same outcome and message, {len(differ)} with another outcome")
    for module, count in collections.Counter(test.split("::")[0] for test in differ).most_common():
        print(f"  {count:5d}  {module}")
    for test in differ:
        print(f"    {test}: {plain.get(test)} -> {instrumented.get(test)}")
    failures = (work / "failures.log").read_text().splitlines() if (work / "failures.log").exists() else []
    caught = collections.Counter(line for line in failures if line.startswith("claude_otel:"))
    print(f"claude_otel caught {sum(caught.values())} failures of its own:")
    for line, count in caught.most_common():
        print(f"  {count:5d}  {line}")
    counts = [tuple(map(int, line.split())) for line in (work / "spans.log").read_text().splitlines()] if (work / "spans.log").exists() else []
    print(f"claude_otel spans started: {sum(c[0] for c in counts)}, never ended: {sum(c[1] for c in counts)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
