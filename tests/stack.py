"""The real stack on loopback, for the tests: the OpenTelemetry Collector and Jaeger built from their pinned sources
(`scripts/build_stack.py`), and Debian's Prometheus.

Each runs from the file the repository ships, **unmodified**. What a test may change is where things listen and
where they send, and only through the programs' own mechanisms: for the collector and Jaeger a second `--config`
file (they merge the files in order) that `overlay()` derives from the shipped one and that holds nothing but
addresses; for Prometheus, whose config cannot be layered, the shipped file with each scrape target replaced.

Without Go these tests fail with a message that says so, unless CLAUDE_OTEL_NO_STACK=1 asks to skip them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_CONFIG = ROOT / "collector-config.yaml"
ALLOW_CONTENT = ROOT / "stack" / "collector-allow-content.yaml"
API_TRACING = ROOT / "stack" / "collector-api-tracing.yaml"
JAEGER_CONFIG = ROOT / "stack" / "jaeger" / "config.yaml"
PROMETHEUS_CONFIG = ROOT / "stack" / "prometheus" / "prometheus.yml"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
TOKEN_VARIABLE = "CLAUDE_OTEL_COLLECTOR_TOKEN"
"""The environment variable the shipped collector config reads its bearer token from."""

sys.path.insert(0, str(ROOT / "scripts"))
import build_stack  # noqa: E402


def binaries() -> tuple[build_stack.Binary, build_stack.Binary]:
    """The collector and Jaeger, built once per version (scripts/test builds them before the tests run)."""
    if os.environ.get("CLAUDE_OTEL_NO_STACK"):
        pytest.skip("CLAUDE_OTEL_NO_STACK is set: the real collector and Jaeger are not built or run")
    try:
        return build_stack.binaries()
    except build_stack.BuildError as error:
        pytest.fail(f"{error}\n(CLAUDE_OTEL_NO_STACK=1 skips the tests that run the real stack)")


def prometheus_binary(name: str = "prometheus") -> str:
    binary = shutil.which(name)
    if binary is None:
        if os.environ.get("CLAUDE_OTEL_NO_PROMETHEUS"):
            pytest.skip("CLAUDE_OTEL_NO_PROMETHEUS is set: no real Prometheus is run")
        pytest.fail(f"no {name} binary (scripts/test installs Debian's prometheus; CLAUDE_OTEL_NO_PROMETHEUS=1 skips)")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], typing.Any], what: str, timeout: float = 30.0, interval: float = 0.2) -> typing.Any:
    """`condition()`'s first truthy value, polled until `timeout` seconds have passed (then the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- overlays: only addresses move ---------------------------------------------------------------------------------

_LISTENING_HOSTS = {"0.0.0.0", "localhost", "127.0.0.1", "", "[::]"}
_ADDRESS_KEYS = {"endpoint", "host", "port", "hostnames"}


def overlay(config: dict, sends_to: dict[str, str] | None = None) -> tuple[dict, dict[str, str]]:
    """A config to layer over `config` (a second `--config`) that moves every address it listens on to a free
    loopback port, and every address it sends to that `sends_to` names ({"jaeger:4317": "127.0.0.1:40001"}).

    Returns the overlay and where each listening address went ({"0.0.0.0:4317": "127.0.0.1:40002"}). The overlay
    holds only the changed values; a list is given whole, as the collector replaces lists when it merges. Fails the
    test if anything but an address would change."""
    sends_to = sends_to or {}
    moved: dict[str, str] = {}
    changed = copy.deepcopy(config)

    def listening(address: str) -> str:
        if address not in moved:
            moved[address] = f"127.0.0.1:{free_port()}"
        return moved[address]

    def walk(node: typing.Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "endpoint" and isinstance(value, str):
                    if value in sends_to:
                        node[key] = sends_to[value]
                    elif value.rpartition(":")[0] in _LISTENING_HOSTS and value.rpartition(":")[2].isdigit():
                        node[key] = listening(value)
                elif key == "hostnames" and isinstance(value, list):  # the load_balancing exporter's static resolver
                    node[key] = [sends_to.get(item, item) for item in value]
                else:
                    walk(value)
            if {"host", "port"} <= node.keys() and isinstance(node["port"], int):  # the telemetry's Prometheus reader
                host, _, port = listening(f"{node['host']}:{node['port']}").rpartition(":")
                node["host"], node["port"] = host, int(port)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(changed)
    result = _difference(config, changed)
    _assert_only_addresses(config, result)
    return result, moved


def _difference(before: typing.Any, after: typing.Any) -> typing.Any:
    if isinstance(before, dict) and isinstance(after, dict):
        return {key: _difference(before.get(key), value) for key, value in after.items() if before.get(key) != value}
    return after


def _assert_only_addresses(config: typing.Any, change: typing.Any) -> None:
    """Every leaf where `change` differs from `config` is an address (endpoint, host, port)."""
    def leaves(node: typing.Any, path: tuple = ()) -> Iterator[tuple[tuple, typing.Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, (*path, key))
        elif isinstance(node, list):
            for number, item in enumerate(node):
                yield from leaves(item, (*path, number))
        else:
            yield path, node

    def at(node: typing.Any, path: tuple) -> typing.Any:
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    for path, value in leaves(change):
        if at(config, path) != value:
            assert any(step in _ADDRESS_KEYS for step in path if isinstance(step, str)), f"not an address: {path}"


# --- processes -----------------------------------------------------------------------------------------------------


@dataclass
class Process:
    """A program of the stack running on loopback, its output in `log`."""

    name: str
    command: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log.open("a") as out:
            out.write(f"--- {' '.join(self.command)}\n")
            out.flush()
            self.popen = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        """Until `url` answers 2xx; fails the test with the program's output if it exits first."""
        def ready() -> bool:
            assert self.running, f"{self.name} exited ({self.popen and self.popen.returncode}):\n{self.output()[-4000:]}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return 200 <= response.status < 300
            except OSError:
                return False

        wait_for(ready, f"{self.name} at {url}", timeout)

    def rss_bytes(self) -> int:
        """The process' resident memory now, from /proc."""
        assert self.popen is not None
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush anything."""
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.running:
            assert self.popen is not None
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


@dataclass
class Collector:
    """The collector built from stack/otelcol/builder.yaml, running `configs` (shipped files) with an address
    overlay. `address("0.0.0.0:4317")` is where a shipped address listens now."""

    process: Process
    moved: dict[str, str]
    token: str

    def address(self, shipped: str) -> str:
        return self.moved[shipped]

    @property
    def grpc(self) -> str:
        """The OTLP/gRPC receiver, as an exporter's endpoint URL."""
        return f"http://{self.address('0.0.0.0:4317')}"

    @property
    def http(self) -> str:
        return f"http://{self.address('0.0.0.0:4318')}"

    @property
    def exporter_env(self) -> dict[str, str]:
        """What an application sets to export here over OTLP/gRPC: endpoint and the bearer token."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.grpc, "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {self.token}"}

    def restart(self) -> None:
        """Starts the same command again (same addresses) after `process.kill()` or `stop()`."""
        self.process.start()
        self.process.wait_ready(f"http://{self.address('0.0.0.0:13133')}/")

    def self_metrics(self) -> str:
        """The collector's own metrics (its telemetry's Prometheus reader), as text."""
        with urllib.request.urlopen(f"http://{self.address('0.0.0.0:8888')}/metrics", timeout=5) as response:
            return response.read().decode()

    def self_metric(self, name: str, **labels: str) -> float:
        """The sum of one of the collector's own series, over the series whose labels include `labels`."""
        total = 0.0
        for line in self.self_metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            series, _, value = line.rpartition(" ")
            if all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
                total += float(value)
        return total


def start_collector(
    directory: Path,
    sends_to: dict[str, str],
    configs: typing.Sequence[Path] = (COLLECTOR_CONFIG,),
    token: str | None = None,
    name: str = "collector",
    env: dict[str, str] | None = None,
) -> Collector:
    """Starts the collector on `configs` merged in order, plus an overlay moving their addresses to loopback, with
    `env` besides its token. Returns once its health check answers."""
    binary, _ = binaries()
    token = token or f"test-token-{os.urandom(8).hex()}"
    merged: dict = {}
    for path in configs:
        merged = _merge(merged, yaml.safe_load(path.read_text()))
    change, where = overlay(merged, sends_to)
    directory.mkdir(parents=True, exist_ok=True)
    overlay_file = directory / f"{name}-addresses.yaml"
    overlay_file.write_text(yaml.safe_dump(change))
    command = [str(binary.path), *(f"--config={path}" for path in configs), f"--config={overlay_file}"]
    process = Process(name, command, directory / f"{name}.log", {TOKEN_VARIABLE: token, **(env or {})}).start()
    process.wait_ready(f"http://{where['0.0.0.0:13133']}/")
    return Collector(process, where, token)


def _merge(base: typing.Any, layer: typing.Any) -> typing.Any:
    """The collector's merge of two config files: maps merge key by key, anything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(layer, dict):
        return {**base, **{key: _merge(base.get(key), value) for key, value in layer.items()}}
    return layer


@dataclass
class Jaeger:
    """Jaeger v2 on stack/jaeger/config.yaml, addresses moved; its HTTP query API."""

    process: Process
    moved: dict[str, str]

    @property
    def otlp_grpc(self) -> str:
        return self.moved["0.0.0.0:4317"]

    @property
    def query(self) -> str:
        return f"http://{self.moved['0.0.0.0:16686']}"

    def get(self, path: str, **params: str) -> typing.Any:
        """The `data` of a query API answer; None for a 404 (no such trace)."""
        url = f"{self.query}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())["data"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def find(self, service: str, tags: dict[str, str] | None = None, limit: int = 2000) -> list[dict]:
        """Search, as the UI's: the traces of `service` with a span carrying every one of `tags`."""
        params = {"service": service, "limit": str(limit), "lookback": "1h"}
        if tags:
            params["tags"] = json.dumps(tags)
        return self.get("/api/traces", **params) or []

    def trace(self, trace_id: str) -> dict | None:
        found = self.get(f"/api/traces/{trace_id}")
        return found[0] if found else None

    def services(self) -> list[str]:
        return self.get("/api/services") or []


def start_jaeger(directory: Path) -> Jaeger:
    _, binary = binaries()
    change, where = overlay(yaml.safe_load(JAEGER_CONFIG.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    overlay_file = directory / "jaeger-addresses.yaml"
    overlay_file.write_text(yaml.safe_dump(change))
    command = [str(binary.path), f"--config={JAEGER_CONFIG}", f"--config={overlay_file}"]
    process = Process("jaeger", command, directory / "jaeger.log").start()
    jaeger = Jaeger(process, where)
    process.wait_ready(f"{jaeger.query}/api/services")
    return jaeger


def tags(span: dict) -> dict[str, typing.Any]:
    """A Jaeger span's tags (attributes, and status as `otel.status_code`) by key."""
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


# --- Prometheus ----------------------------------------------------------------------------------------------------


def start_prometheus(directory: Path, targets: dict[str, str], config_file: Path = PROMETHEUS_CONFIG) -> tuple[Process, str]:
    """Debian's Prometheus on `config_file` (by default the config compose mounts) and its rule files, each target in
    `targets` (scrape or Alertmanager) moved ({"otel-collector:8889": "127.0.0.1:40003"}), with the flags compose
    gives it but for paths and address. Returns the process and its URL."""
    binary = prometheus_binary()
    text = config_file.read_text()
    for shipped, loopback in targets.items():
        assert text.count(f'"{shipped}"') == 1, f"{shipped} is not one target of {config_file}"
        text = text.replace(f'"{shipped}"', f'"{loopback}"')
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(text)
    for name in yaml.safe_load(text).get("rule_files") or ():  # As compose mounts them: next to the config, unmodified.
        shipped = config_file.parent / name
        shutil.copyfile(shipped if shipped.exists() else PROMETHEUS_CONFIG.parent / name, directory / name)
    flags = [item for item in COMPOSE["services"]["prometheus"]["command"] if item.startswith("--enable-feature=")]
    url = f"http://127.0.0.1:{free_port()}"
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
               f"--web.listen-address={url.removeprefix('http://')}", *flags]  # fmt: skip
    process = Process("prometheus", command, directory / "prometheus.log").start()
    process.wait_ready(f"{url}/-/ready")
    return process, url


# --- the whole stack, once per test session ------------------------------------------------------------------------


@dataclass
class Stack:
    """Jaeger, the collector on the shipped config sending to it, and Prometheus scraping the collector with the
    shipped scrape config, all on loopback."""

    jaeger: Jaeger
    collector: Collector
    prometheus: Process
    prometheus_url: str
    directory: Path

    def app_env(self, service: str) -> dict[str, str]:
        """The environment of an application instrumented with `claude_otel.instrument()` that exports here."""
        return {**os.environ, **self.collector.exporter_env, "OTEL_SERVICE_NAME": service}


@contextlib.contextmanager
def own_metrics(
    directory: Path,
    jaeger: Jaeger,
    config_file: Path = PROMETHEUS_CONFIG,
    targets: dict[str, str] | None = None,
    collector_configs: typing.Sequence[Path] = (COLLECTOR_CONFIG,),
    collector_env: dict[str, str] | None = None,
) -> Iterator[tuple[Collector, str]]:
    """A collector (its traces to `jaeger`) and a Prometheus scraping it, of a test's own: the session's stack
    carries every other test's series. `config_file` and `targets` as `start_prometheus` takes them,
    `collector_configs` and `collector_env` as `start_collector` takes them. Yields the collector and Prometheus'
    URL."""
    started: list[Process] = []
    try:
        collector = start_collector(directory, {"jaeger:4317": jaeger.otlp_grpc}, collector_configs, name="own-collector", env=collector_env)
        started.append(collector.process)
        process, url = start_prometheus(directory / "prometheus", {
            "otel-collector:8889": collector.address("0.0.0.0:8889"),
            "otel-collector:8888": collector.address("0.0.0.0:8888"),
            **(targets or {}),
        }, config_file=config_file)  # fmt: skip
        started.append(process)
        yield collector, url
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("stack")
    started: list[Process] = []
    try:
        jaeger = start_jaeger(directory)
        started.append(jaeger.process)
        collector = start_collector(directory, {"jaeger:4317": jaeger.otlp_grpc})
        started.append(collector.process)
        prometheus, url = start_prometheus(directory, {
            "otel-collector:8889": collector.address("0.0.0.0:8889"),
            "otel-collector:8888": collector.address("0.0.0.0:8888"),
        })  # fmt: skip
        started.append(prometheus)
        yield Stack(jaeger, collector, prometheus, url, directory)
    finally:
        for process in reversed(started):  # Prometheus, then the collector, then Jaeger: each flushes to the next.
            process.stop()
