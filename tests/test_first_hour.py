"""A new user's first hour, as they would meet it: the built package in a fresh venv, zero-code, a quiet stderr,
`instrument()` called twice, settings that claude_otel cannot use, and exit.

The package tests build the sdist and the wheel (`python -m build`), check them with `twine check`, and install the
wheel, alone, into a fresh venv: the venv holds claude-otel and what it depends on, nothing of the `test` extra (no
`opentelemetry-distro`). Applications run as processes of their own against the bundled simulator, exporting over
real OTLP to a receiver the test starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from opentelemetry.sdk.trace import TracerProvider

import claude_otel
from claude_otel import _request_log
from claude_otel.testing import OtlpReceiver

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent(
    """
    import os, sys
    import anthropic
    from claude_otel.testing import SCENARIO_HEADER, Simulator
    {setup}
    with Simulator(retry_after=0.01) as sim, anthropic.Anthropic(api_key="sk-ant-first-hour", base_url=sim.url) as client:
        for steps in sys.argv[1].split(";"):
            try:
                client.messages.create(model=os.environ.get("APP_MODEL", "claude-sonnet-5-5"), max_tokens=16,
                                       messages=[{{"role": "user", "content": "Hi"}}],
                                       extra_headers={{SCENARIO_HEADER: steps}})
            except anthropic.APIStatusError as err:
                print("failed", err.status_code)
            else:
                print("ok")
    """
)


def app(tmp_path: Path, setup: str = "") -> Path:
    """An application script: `setup`, then one call per `;`-separated simulator scenario of its argument."""
    path = tmp_path / "app.py"
    path.write_text(APP.format(setup=setup))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any OTEL_*/CLAUDE_OTEL_* variable of the test run, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "CLAUDE_OTEL_"))}
    return {**env, "OTEL_METRIC_EXPORT_INTERVAL": "60000", **extra}


def run(command: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


# --- the package, built and installed alone ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel `python -m build` makes of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], os.environ.copy(), timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="session")
def package_venv(dist: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel and its dependencies only. Returns its `bin` directory."""
    directory = tmp_path_factory.mktemp("venv")
    venv.create(directory, with_pip=True)
    bin_dir = directory / "bin"
    installed = run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(dist[1])], os.environ.copy(), timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return bin_dir


def test_the_sdist_and_the_wheel_pass_twine_check_and_hold_the_data_files(dist: tuple[Path, Path]) -> None:
    sdist, wheel = dist
    checked = run([sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)], os.environ.copy())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    assert {"claude_otel/prices.json", "claude_otel/py.typed", "claude_otel/testing/_simulator.py"} <= wheel_names
    with tarfile.open(sdist) as archive:
        sdist_names = {name.partition("/")[2] for name in archive.getnames()}
    assert {"src/claude_otel/prices.json", "src/claude_otel/py.typed", "README.md", "pyproject.toml"} <= sdist_names
    entry_points = next(name for name in wheel_names if name.endswith(".dist-info/entry_points.txt"))
    assert "claude_otel = claude_otel:AnthropicInstrumentor" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_demo_runs_from_the_installed_wheel(package_venv: Path, tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        result = run([str(package_venv / "claude-otel"), "demo"], clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint), timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        spans = receiver.wait_for(lambda spans: any(span.name.startswith("chat ") for span in spans))
    assert "Failed to export" not in result.stderr
    calls = [span for span in spans if span.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(calls) >= 10 and all("anthropic.request.id" in span.attributes or "error.type" in span.attributes for span in calls)


def test_zero_code_works_in_a_venv_with_only_the_package(package_venv: Path, tmp_path: Path) -> None:
    python = str(package_venv / "python")
    has_distro = run([python, "-c", "import importlib.metadata as m; m.version('opentelemetry-distro')"], clean_env())
    assert has_distro.returncode != 0, "the venv must not hold opentelemetry-distro"
    script = app(tmp_path)
    with OtlpReceiver() as receiver:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint, OTEL_SERVICE_NAME="zero-code")
        result = run([str(package_venv / "opentelemetry-instrument"), python, str(script), "ok;400"], env)
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for(lambda spans: len([s for s in spans if s.name == "chat claude-sonnet-5-5"]) == 2)
    assert result.stdout.split() == ["ok", "failed", "400"]
    ok, failed = sorted((s for s in spans if s.name == "chat claude-sonnet-5-5"), key=lambda span: "error.type" in span.attributes)
    assert ok.attributes["gen_ai.usage.input_tokens"] > 0 and ok.attributes["claude_otel.cost.usd"] > 0
    assert failed.attributes["error.type"] == "invalid_request_error" and failed.attributes["anthropic.request.id"]
    assert result.stderr == ""  # No logging set up: the failed call's request log line is not printed.


def test_a_bad_price_file_under_zero_code_warns_once_and_keeps_the_bundled_prices(package_venv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text("{not json")
    with OtlpReceiver() as receiver:
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint, CLAUDE_OTEL_PRICES=str(bad))
        result = run([str(package_venv / "opentelemetry-instrument"), str(package_venv / "python"), str(app(tmp_path)), "ok"], env)
        assert result.returncode == 0, result.stderr
        (call,) = receiver.wait_for(lambda spans: any(s.name == "chat claude-sonnet-5-5" for s in spans))
    assert call.attributes["claude_otel.cost.usd"] > 0  # Priced from the bundled table.
    warnings = [line for line in result.stderr.splitlines() if "ConfigurationWarning" in line]
    assert len(warnings) == 1 and str(bad) in warnings[0] and "using the bundled prices" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_readme_fits_a_screen_and_its_links_resolve() -> None:
    """The README is the first screen: <= 150 lines, the two set-up commands near its top, every link to docs/ a page
    that exists (`mkdocs build --strict`, run by scripts/test, checks the links between the pages)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    top = "\n".join(lines[:30])
    assert "./scripts/demo" in top and "./scripts/test" in top and "pip install claude-otel" in top
    links = re.findall(r"\]\(([^)#]+)\)", "\n".join(lines))
    assert links and all((ROOT / link).exists() for link in links), [link for link in links if not (ROOT / link).exists()]
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert pages - {"index.md"} <= {Path(link).name for link in links}, "every reference page is linked from the README"


# --- quiet by default ---------------------------------------------------------------------------------------------


def test_an_application_without_logging_sees_nothing_on_stderr(tmp_path: Path) -> None:
    """Failed calls (their request log lines are WARNINGs) of a model without a price (a WARNING of its own)."""
    script = app(tmp_path, "import claude_otel\nclaude_otel.instrument()")
    env = clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", APP_MODEL="claude-unreleased-9")
    result = run([sys.executable, str(script), "ok;400;429,429,429"], env)
    assert result.returncode == 0 and result.stdout.split() == ["ok", "failed", "400", "failed", "429"]
    assert result.stderr == ""


def test_an_application_that_sets_up_logging_gets_the_request_log(tmp_path: Path) -> None:
    setup = "import logging, claude_otel\nlogging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\nclaude_otel.instrument()"
    result = run([sys.executable, str(app(tmp_path, setup)), "ok;400"], clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none"))
    assert result.returncode == 0, result.stderr
    records = [line.split(" ", 1) for line in result.stderr.splitlines() if '"event":"claude_otel.request"' in line]
    assert [(level, json.loads(line)["outcome"]) for level, line in records] == [("INFO", "ok"), ("WARNING", "failed")]


def test_the_request_log_is_written_only_when_a_handler_listens() -> None:
    """Nothing but the package's NullHandler: no record is made (the README's "costs nothing while no one listens").
    A handler's level and `propagate = False` count as `Logger.callHandlers` counts them."""
    logger, root = logging.getLogger("claude_otel"), logging.getLogger()
    saved = (root.handlers[:], logger.handlers[:], logger.propagate, logger.level)
    try:
        root.handlers[:] = []
        assert any(isinstance(handler, logging.NullHandler) for handler in logger.handlers)
        assert not _request_log._python_listens(logging.WARNING)
        warnings_only = logging.StreamHandler()
        warnings_only.setLevel(logging.WARNING)
        root.addHandler(warnings_only)
        logger.setLevel(logging.INFO)
        assert _request_log._python_listens(logging.WARNING) and not _request_log._python_listens(logging.INFO)
        logger.propagate = False
        assert not _request_log._python_listens(logging.WARNING)
    finally:
        root.handlers[:], logger.handlers[:], logger.propagate = saved[0], saved[1], saved[2]
        logger.setLevel(saved[3])


# --- instrument() twice -------------------------------------------------------------------------------------------


@pytest.fixture
def instrumented() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    claude_otel.instrument(tracer_provider=provider, capture_content="NO_CONTENT")
    try:
        yield provider
    finally:
        claude_otel.uninstrument()


def test_instrument_twice_with_the_same_options_is_silent(instrumented: TracerProvider, recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        claude_otel.instrument(capture_content="NO_CONTENT")
        claude_otel.instrument(tracer_provider=instrumented, capture_content="NO_CONTENT")
    assert [str(warning.message) for warning in recwarn] == []
    assert caplog.records == []  # Not OpenTelemetry's "Attempting to instrument while already instrumented" either.


def test_instrument_twice_with_other_options_names_each_one_ignored(instrumented: TracerProvider, sim, tmp_path: Path) -> None:
    with pytest.warns(claude_otel.ConfigurationWarning) as warned:
        claude_otel.instrument(capture_content="SPAN_ONLY", request_log=False)
    (message,) = [str(warning.message) for warning in warned]
    assert "capture_content='SPAN_ONLY' (in effect: 'NO_CONTENT')" in message
    assert "request_log=False (in effect: True)" in message
    assert "uninstrument()" in message and "propagate" not in message
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    instrumented.add_span_processor(SimpleSpanProcessor(exporter))
    with anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url) as client:
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    (call,) = [span for span in exporter.get_finished_spans() if span.name.startswith("chat ")]
    assert "gen_ai.input.messages" not in (call.attributes or {})  # The options in effect are unchanged.


def test_instrument_after_uninstrument_applies_the_new_options(sim) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    claude_otel.instrument(tracer_provider=TracerProvider())
    claude_otel.uninstrument()
    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=provider, capture_content="SPAN_ONLY")
    try:
        with anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url) as client:
            client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    finally:
        claude_otel.uninstrument()
    (call,) = [span for span in exporter.get_finished_spans() if span.name.startswith("chat ")]
    assert "Hi" in str((call.attributes or {})["gen_ai.input.messages"])


# --- settings claude_otel cannot use ------------------------------------------------------------------------------


def test_an_unknown_otlp_protocol_warns_once_and_exports_over_grpc(tmp_path: Path) -> None:
    script = app(tmp_path, "import claude_otel\nclaude_otel.instrument()")
    with OtlpReceiver() as receiver:
        # Only the receiver's gRPC port is given: spans arrive only if the fallback is grpc, the documented default.
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="bogus", OTEL_METRIC_EXPORT_INTERVAL="500")
        result = run([sys.executable, str(script), "ok"], env)
        assert result.returncode == 0, result.stderr
        receiver.wait_for(lambda spans: any(span.name == "chat claude-sonnet-5-5" for span in spans))
        assert receiver.metrics, "metrics arrive over gRPC too"
    warnings = [line for line in result.stderr.splitlines() if "ConfigurationWarning" in line]
    assert len(warnings) == 1 and "OTEL_EXPORTER_OTLP_PROTOCOL='bogus'" in warnings[0] and "using grpc" in warnings[0]


def test_a_bad_price_file_names_the_public_error(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text("[]")
    result = run([sys.executable, "-c", f"import claude_otel; claude_otel.instrument(prices={str(bad)!r})"], clean_env(OTEL_TRACES_EXPORTER="none"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("claude_otel.PriceTableError: ")
    assert claude_otel.PriceTableError.__module__ == "claude_otel" and claude_otel.ConfigurationWarning.__module__ == "claude_otel"


# --- exit ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_healthy_collector_gets_every_span_and_the_metrics_at_exit(tmp_path: Path, protocol: str) -> None:
    """A short job: 40 calls, then exit at once (no export happened yet: the batch delay is 5 s, the metric
    interval 60 s). The exit handler's bounded flush must deliver all of it."""
    script = app(tmp_path, "import claude_otel\nclaude_otel.instrument()")
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
        result = run([sys.executable, str(script), ";".join(["ok"] * 30 + ["400"] * 10)], env)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        calls = [span for span in receiver.spans if span.name == "chat claude-sonnet-5-5"]
        assert len(calls) == 40  # Already there: the process has exited.
        names = {metric.name for request in receiver.metrics for rm in request.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics}
    assert "gen_ai.client.inference.duration" in names, names
