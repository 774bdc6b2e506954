"""The stack (docker-compose.yml, collector-config.yaml, stack/): checked as far as this machine allows.

There is no container engine here, so the containers never run. What is proven instead:
- the collector config is consistent in itself (every pipeline component defined, every defined one used, current
  type names, processors in their order) and with compose (endpoints, service names, published ports);
- compose matches a schema of services, pinned images, ports and mounted files that exist in the repository;
- Grafana's provisioning points at the right uids, URLs and mount paths;
- Prometheus: `promtool check config` on the file compose mounts, and the real (Debian) Prometheus run with that
  file, only its target moved to loopback, scraping a stand-in for the collector's exporter (hand-written
  OpenMetrics of the exporter's shape): it asks for OpenMetrics, keeps the exemplar's trace_id, and keeps `job` =
  the sending service;
- the tail-sampling policies and the content stripping, evaluated as the collector's processors define them, on
  what claude_otel really exports over OTLP (simulator workload): the attribute names and types they rely on are
  the ones claude_otel emits; and its histogram exemplars link to its call spans;
- README "The stack" says what the files do (ports, policies, thresholds, stripped names).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import time
import typing
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import anthropic
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import claude_otel
from claude_otel import _content
from claude_otel.testing import OtlpReceiver, Simulator
from conftest import MODEL, scenario

ROOT = Path(__file__).resolve().parents[1]


def load(path: str | Path) -> typing.Any:
    return yaml.safe_load((ROOT / path).read_text())


COLLECTOR = load("collector-config.yaml")
COMPOSE = load("docker-compose.yml")
ALLOW_CONTENT = load("stack/collector-allow-content.yaml")
ALLOW_CONTENT_COMPOSE = load("stack/allow-content.compose.yml")

# Component types of otelcol-contrib 0.159.0 that a config here may use, and the deprecated names (since 0.144.0)
# it must not (standards §4.1).
CURRENT_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "attributes", "transform", "redaction", "tail_sampling", "batch", "filter"},
    "exporters": {"otlp_grpc", "otlp_http", "prometheus", "prometheusremotewrite", "debug"},
    "connectors": {"span_metrics"},
    "extensions": {"health_check"},
}
DEPRECATED_TYPES = {"otlphttp", "spanmetrics", "resourcedetection", "logging", "jaeger"}  # + exporter `otlp`

# Jaeger v2's all-in-one configuration: OTLP gRPC on 4317, HTTP on 4318, UI and query API on 16686
# (jaegertracing/jaeger: cmd/jaeger/internal/all-in-one.yaml), on every interface with JAEGER_LISTEN_HOST=0.0.0.0.
JAEGER_PORTS = {"otlp_grpc": 4317, "otlp_http": 4318, "ui": 16686}

# The schema compose must match: each service, the image it runs, the container ports it publishes, and the files
# it mounts (repository path → container path), all of which must exist in the repository.
COMPOSE_SCHEMA = {
    "otel-collector": {
        "image": "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib",
        "ports": {4317, 4318, 8889, 13133},
        "mounts": {"./collector-config.yaml": "/etc/otelcol-contrib/config.yaml"},
    },
    "jaeger": {"image": "quay.io/jaegertracing/jaeger", "ports": {16686}, "mounts": {}},
    "prometheus": {
        "image": "quay.io/prometheus/prometheus",
        "ports": {9090},
        "mounts": {"./stack/prometheus/prometheus.yml": "/etc/prometheus/prometheus.yml"},
    },
    "grafana": {
        "image": "grafana/grafana",
        "ports": {3000},
        "mounts": {
            "./stack/grafana/provisioning": "/etc/grafana/provisioning",
            "./dashboards": "/var/lib/grafana/dashboards/claude-otel",
        },
    },
}
SERVICE_KEYS = {"image", "command", "environment", "volumes", "ports", "depends_on", "restart"}


# --- helpers ---------------------------------------------------------------------------------------------------------


def kind(name: str) -> str:
    """`otlp_grpc/jaeger` → `otlp_grpc`."""
    return name.partition("/")[0]


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def host_of(endpoint: str) -> str:
    return endpoint.removeprefix("http://").removeprefix("https://").rsplit(":", 1)[0]


def published(service: dict) -> dict[int, tuple[str, int]]:
    """A service's published ports: container port → (host address, host port)."""
    found = {}
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        assert len(parts) in (2, 3), f"port {entry!r}: use HOST:CONTAINER or ADDRESS:HOST:CONTAINER"
        address = parts[0] if len(parts) == 3 else "0.0.0.0"
        found[int(parts[-1])] = (address, int(parts[-2]))
    return found


def mounts(service: dict) -> dict[str, str]:
    """A service's bind mounts: repository path → container path; every one read-only."""
    found = {}
    for entry in service.get("volumes", []):
        source, target, *options = str(entry).split(":")
        assert options == ["ro"], f"{entry!r}: mount configuration read-only"
        found[source] = target
    return found


def service_by_image(compose: dict, image: str) -> str:
    (name,) = [name for name, service in compose["services"].items() if service["image"].startswith(image + ":")]
    return name


def flag(command: list[str], name: str) -> list[str]:
    return [item.split("=", 1)[1] for item in command if item.startswith(name + "=")]


def merge(base: typing.Any, overlay: typing.Any) -> typing.Any:
    """How the collector merges a second --config over the first: maps deep, anything else (lists too) replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(overlay)


DATASOURCES = "stack/grafana/provisioning/datasources/claude-otel.yaml"


def strings(node: typing.Any) -> typing.Iterator[str]:
    """Every string value in a loaded YAML document."""
    if isinstance(node, dict):
        for item in node.values():
            yield from strings(item)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def prometheus_mount() -> tuple[str, str]:
    ((source, target),) = mounts(COMPOSE["services"]["prometheus"]).items()
    return source, target


def prometheus_config_path() -> Path:
    return ROOT / prometheus_mount()[0]


# --- the collector config --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [COLLECTOR, merge(COLLECTOR, ALLOW_CONTENT)], ids=["default", "allow-content"])
def test_every_pipeline_component_is_defined(config: dict) -> None:
    service = config["service"]
    for name in service.get("extensions", []):
        assert name in config["extensions"], name
    assert set(service["pipelines"]) == {"traces", "metrics", "logs"}
    for pipeline_name, pipeline in service["pipelines"].items():
        assert kind(pipeline_name) in ("traces", "metrics", "logs")
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline.get(section, []):
                assert name in config[section], f"{pipeline_name}: {section} {name} is not defined"
        assert pipeline["receivers"] and pipeline["exporters"]


def test_every_defined_component_is_used() -> None:
    service = COLLECTOR["service"]
    assert set(COLLECTOR["extensions"]) == set(service["extensions"])
    for section in ("receivers", "processors", "exporters"):
        used = {name for pipeline in service["pipelines"].values() for name in pipeline.get(section, [])}
        assert set(COLLECTOR[section]) == used, section
    assert "connectors" not in COLLECTOR


def test_component_types_are_the_current_names() -> None:
    for section in ("receivers", "processors", "exporters", "extensions", "connectors"):
        for name in COLLECTOR.get(section, {}):
            assert kind(name) in CURRENT_TYPES[section], f"{section}: {name} is no component type of 0.159.0"
            assert kind(name) not in DEPRECATED_TYPES, f"{section}: {name} is a deprecated name"
    assert "otlp" not in {kind(name) for name in COLLECTOR["exporters"]}, "exporter `otlp` is deprecated: otlp_grpc"


def test_processors_in_their_order() -> None:
    pipelines = COLLECTOR["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", name
        assert pipeline["processors"][-1] == "batch", name
    # Content is gone before tail sampling holds the trace, in traces and in logs.
    assert pipelines["traces"]["processors"] == ["memory_limiter", "attributes/strip_content", "tail_sampling", "batch"]
    assert pipelines["logs"]["processors"] == ["memory_limiter", "attributes/strip_content", "batch"]
    assert pipelines["logs"]["exporters"] == ["debug"]
    assert COLLECTOR["exporters"]["debug"] == {"verbosity": "basic"}  # Counts, never the records' contents.


def test_collector_endpoints_match_compose() -> None:
    services = COMPOSE["services"]
    collector_name = service_by_image(COMPOSE, COMPOSE_SCHEMA["otel-collector"]["image"])
    collector_ports = published(services[collector_name])

    # The OTLP receivers listen on every interface, on the ports compose publishes, on the same host ports (the
    # ones claude_otel's users set in OTEL_EXPORTER_OTLP_ENDPOINT), not only on loopback.
    protocols = COLLECTOR["receivers"]["otlp"]["protocols"]
    assert set(protocols) == {"grpc", "http"}
    for protocol, port in (("grpc", 4317), ("http", 4318)):
        endpoint = protocols[protocol]["endpoint"]
        assert host_of(endpoint) == "0.0.0.0" and port_of(endpoint) == port
        assert collector_ports[port] == ("0.0.0.0", port)

    # Traces go to the compose service that runs Jaeger, on its OTLP/gRPC port, which Jaeger binds on every interface.
    jaeger_name = service_by_image(COMPOSE, COMPOSE_SCHEMA["jaeger"]["image"])
    (exporter_name,) = COLLECTOR["service"]["pipelines"]["traces"]["exporters"]
    endpoint = COLLECTOR["exporters"][exporter_name]["endpoint"]
    assert host_of(endpoint) == jaeger_name
    assert port_of(endpoint) == JAEGER_PORTS[kind(exporter_name)]
    assert "JAEGER_LISTEN_HOST=0.0.0.0" in services[jaeger_name]["environment"]
    assert COLLECTOR["exporters"][exporter_name]["tls"] == {"insecure": True}

    # Prometheus scrapes the collector service on the prometheus exporter's port.
    exporter = COLLECTOR["exporters"]["prometheus"]
    prometheus_config = load(prometheus_config_path())
    (job,) = prometheus_config["scrape_configs"]
    ((target,),) = [group["targets"] for group in job["static_configs"]]
    assert target == f"{collector_name}:{port_of(exporter['endpoint'])}"
    assert host_of(exporter["endpoint"]) == "0.0.0.0"
    assert port_of(exporter["endpoint"]) in collector_ports

    health = COLLECTOR["extensions"]["health_check"]["endpoint"]
    assert port_of(health) in collector_ports and host_of(health) == "0.0.0.0"

    # Grafana reads both, by compose service name and container port.
    datasources = {source["uid"]: source for source in load(DATASOURCES)["datasources"]}
    prometheus_name = service_by_image(COMPOSE, COMPOSE_SCHEMA["prometheus"]["image"])
    assert datasources["prometheus"]["url"] == f"http://{prometheus_name}:9090"
    assert datasources["jaeger"]["url"] == f"http://{jaeger_name}:{JAEGER_PORTS['ui']}"


def test_metrics_keep_exemplars_and_the_classic_names() -> None:
    exporter = COLLECTOR["exporters"]["prometheus"]
    assert exporter["enable_open_metrics"] is True  # Exemplars are exported in OpenMetrics only.
    # The names of README "Metrics, dollars and attribution", which the dashboards query.
    assert exporter["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    # `job` = the service's name: not copied resource attributes, not the scrape job's name.
    assert "resource_to_telemetry_conversion" not in exporter and "resource_constant_labels" not in exporter
    (job,) = load(prometheus_config_path())["scrape_configs"]
    assert job["honor_labels"] is True
    command = COMPOSE["services"]["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in command
    assert not [item for item in command if "otlp" in item]  # Scraped, not pushed: one path (standards §5.3).


def test_tail_sampling_policies() -> None:
    sampling = COLLECTOR["processors"]["tail_sampling"]
    assert {policy["name"]: policy["type"] for policy in sampling["policies"]} == {
        "keep-errors": "status_code",
        "keep-retried": "numeric_attribute",
        "keep-slow": "latency",
        "sample-the-rest": "probabilistic",
    }
    policies = {policy["name"]: policy for policy in sampling["policies"]}
    assert policies["keep-errors"]["status_code"] == {"status_codes": ["ERROR"]}
    assert policies["keep-retried"]["numeric_attribute"] == {"key": "claude_otel.attempts", "min_value": 2}
    assert 0 < policies["sample-the-rest"]["probabilistic"]["sampling_percentage"] < 100
    # Late spans of a decided trace follow its decision rather than start a new one.
    assert sampling["decision_cache"]["sampled_cache_size"] >= sampling["num_traces"]


def test_allow_content_overlay_only_removes_the_stripping() -> None:
    merged = merge(COLLECTOR, ALLOW_CONTENT)
    for name in ("traces", "logs"):
        expected = [p for p in COLLECTOR["service"]["pipelines"][name]["processors"] if p != "attributes/strip_content"]
        assert merged["service"]["pipelines"][name]["processors"] == expected
    merged["service"]["pipelines"] = COLLECTOR["service"]["pipelines"]
    assert merged == COLLECTOR  # Nothing else changed.

    # The compose override mounts the overlay and passes it as a second --config after the first.
    base = COMPOSE["services"]["otel-collector"]
    override = ALLOW_CONTENT_COMPOSE["services"]["otel-collector"]
    assert set(ALLOW_CONTENT_COMPOSE["services"]) == {"otel-collector"} and set(override) == {"command", "volumes"}
    configs = flag(override["command"], "--config")
    assert configs[0] == flag(base["command"], "--config")[0] and len(configs) == 2
    assert mounts(override) == {"./stack/collector-allow-content.yaml": configs[1]}
    assert (ROOT / "stack/collector-allow-content.yaml").is_file()


# --- compose ------------------------------------------------------------------------------------------------------


def test_compose_matches_its_schema() -> None:
    services = COMPOSE["services"]
    assert set(services) == set(COMPOSE_SCHEMA)
    for name, schema in COMPOSE_SCHEMA.items():
        service = services[name]
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        image, _, tag = service["image"].rpartition(":")
        assert image == schema["image"], name
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin a released version, not {tag!r}"
        assert set(published(service)) == schema["ports"], name
        for container, (_, host) in published(service).items():
            assert host == container, f"{name}: publish {container} on the same host port"
        assert mounts(service) == schema["mounts"], name
        for source in mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
        assert set(service.get("depends_on", [])) <= set(services)
    # Versions that have what the configs use: Jaeger v2 (OTLP in, no collector of its own), a collector that knows
    # the new component names (0.144.0 and later).
    jaeger_tag = services["jaeger"]["image"].rpartition(":")[2]
    assert jaeger_tag.startswith("2.")
    collector_tag = services["otel-collector"]["image"].rpartition(":")[2]
    assert tuple(int(part) for part in collector_tag.split(".")) >= (0, 144, 0)

    # Each program reads the file mounted for it.
    collector = services["otel-collector"]
    assert flag(collector["command"], "--config") == [mounts(collector)["./collector-config.yaml"]]
    assert flag(services["prometheus"]["command"], "--config.file") == [prometheus_mount()[1]]


def test_grafana_provisioning() -> None:
    grafana = COMPOSE["services"]["grafana"]
    provisioning = mounts(grafana)["./stack/grafana/provisioning"]
    assert provisioning == "/etc/grafana/provisioning"

    datasources = load(DATASOURCES)
    assert datasources["apiVersion"] == 1
    by_uid = {source["uid"]: source for source in datasources["datasources"]}
    assert {uid: source["type"] for uid, source in by_uid.items()} == {"prometheus": "prometheus", "jaeger": "jaeger"}
    assert [source["uid"] for source in datasources["datasources"] if source.get("isDefault")] == ["prometheus"]
    # Exemplars carry `trace_id` (collector prometheus exporter): the link goes to the Jaeger data source.
    (destination,) = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert destination["name"] == "trace_id" and destination["datasourceUid"] == "jaeger"
    assert by_uid["jaeger"]["jsonData"]["tracesToMetrics"]["datasourceUid"] == "prometheus"
    # Grafana expands $VAR in provisioning values: a `$` meant for Grafana's own templating must be written `$$`.
    for text in strings(datasources):
        assert "$" not in text.replace("$$", ""), f"unescaped $ in {text!r}"

    dashboards = load("stack/grafana/provisioning/dashboards/claude-otel.yaml")
    assert dashboards["apiVersion"] == 1
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == mounts(grafana)["./dashboards"]
    # The provisioning directory holds exactly these two files (Grafana reads every YAML file in them).
    directory = ROOT / "stack/grafana/provisioning"
    found = sorted(path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file())
    assert found == ["dashboards/claude-otel.yaml", "datasources/claude-otel.yaml"]
    # Dashboards, when there are any, are JSON objects whose data sources are the provisioned ones.
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        assert isinstance(dashboard, dict) and dashboard.get("uid"), path.name
        uids = set(re.findall(r'"datasource":\s*\{[^{}]*"uid":\s*"([^"]+)"', path.read_text()))
        assert uids <= {"prometheus", "jaeger", "${datasource}", "$datasource", "-- Grafana --", "grafana"}, (path.name, uids)


# --- Prometheus, for real --------------------------------------------------------------------------------------------


def prometheus_binary(name: str) -> str:
    """Debian's `prometheus` / `promtool`: skipped only when the run says so, a failure when missing otherwise."""
    if os.environ.get("CLAUDE_OTEL_NO_PROMETHEUS"):
        pytest.skip("CLAUDE_OTEL_NO_PROMETHEUS is set: Prometheus is not installed for this run")
    path = shutil.which(name)
    assert path, f"{name} is missing: ./scripts/test installs Debian's prometheus (or set CLAUDE_OTEL_NO_PROMETHEUS=1)"
    return path


def test_promtool_checks_the_mounted_config() -> None:
    promtool = prometheus_binary("promtool")
    command = [promtool, "check", "config", str(prometheus_config_path())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


class CollectorExporter(BaseHTTPRequestHandler):
    """Answers /metrics as the collector's `prometheus` exporter does with enable_open_metrics: OpenMetrics with
    exemplars to a scraper that asks for it, the classic text format (which has no exemplars) otherwise. The series:
    one call of the service `checkout`, with its labels as the exporter writes them (`job`, `instance`)."""

    accepts: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        accept = self.headers.get("accept", "")
        self.accepts.append(accept)
        labels = 'gen_ai_operation_name="chat",gen_ai_request_model="claude-sonnet-5-5",instance="i-1",job="checkout"'
        name = "gen_ai_client_inference_duration_seconds"
        open_metrics = "application/openmetrics-text" in accept
        exemplar = f' # {{span_id="{SPAN_ID}",trace_id="{TRACE_ID}"}} 0.9 {time.time():.3f}' if open_metrics else ""
        lines = [
            f"# HELP {name} GenAI operation duration.",
            f"# TYPE {name} histogram",
            *([f"# UNIT {name} seconds"] if open_metrics else []),
            f'{name}_bucket{{{labels},le="0.64"}} 0',
            f'{name}_bucket{{{labels},le="1.28"}} 1{exemplar}',
            f'{name}_bucket{{{labels},le="+Inf"}} 1',
            f"{name}_sum{{{labels}}} 0.9",
            f"{name}_count{{{labels}}} 1",
        ]
        if open_metrics:
            lines.append("# EOF")
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
        else:
            content_type = "text/plain; version=0.0.4; charset=utf-8"
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, path: str, **query: str) -> typing.Any:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())["data"]


def test_prometheus_scrapes_exemplars_with_the_compose_config(tmp_path: Path) -> None:
    prometheus = prometheus_binary("prometheus")
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), type("Exporter", (CollectorExporter,), {"accepts": []}))
    Thread(target=exporter.serve_forever, daemon=True).start()
    # The compose config, with only its target moved from the collector's container to this exporter.
    text = prometheus_config_path().read_text()
    assert text.count('"otel-collector:8889"') == 1
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace('"otel-collector:8889"', f'"127.0.0.1:{exporter.server_address[1]}"'))
    # The flags compose gives it, but for the paths and the listening address.
    flags = [item for item in COMPOSE["services"]["prometheus"]["command"] if item.startswith("--enable-feature=")]
    port = free_port()
    process = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        exemplars: list = []
        deadline = time.monotonic() + 45  # The first scrape comes within one scrape interval (15 s).
        while time.monotonic() < deadline and not exemplars:
            time.sleep(0.5)
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                exemplars = api(port, "/api/v1/query_exemplars", query="gen_ai_client_inference_duration_seconds_bucket",
                                start=str(time.time() - 600), end=str(time.time() + 60))  # fmt: skip
            except OSError:
                continue
        assert exporter.RequestHandlerClass.accepts, "Prometheus never scraped the exporter"
        assert "application/openmetrics-text" in exporter.RequestHandlerClass.accepts[0]
        assert exemplars, "no exemplar stored"
        ((stored,),) = [series["exemplars"] for series in exemplars]
        assert stored["labels"] == {"trace_id": TRACE_ID, "span_id": SPAN_ID}
        (series,) = api(port, "/api/v1/query", query="gen_ai_client_inference_duration_seconds_count")["result"]
        # honor_labels: the service's name is `job`, as the dashboards query it.
        assert series["metric"]["job"] == "checkout" and series["metric"]["instance"] == "i-1"
        assert not {"exported_job", "exported_instance"} & set(series["metric"])
    finally:
        process.terminate()
        process.wait(timeout=30)
        exporter.shutdown()
        exporter.server_close()


# --- the policies and the stripping, on what claude_otel really exports ------------------------------------------


# Each call of the workload runs in a trace of its own, under the application's span named as the key here.
STEPS = {
    "ok": "ok",
    "streamed": "ok",
    "refusal": "refusal",
    "abandoned stream": "ok",
    "slow": "stall:0.8",
    "retried": "529,ok",
    "failed after retries": "429",
    "rejected": "400",
    "error after 200": "error_event",
    "truncated stream": "truncate",
}
STREAMED = {"streamed", "abandoned stream", "error after 200", "truncated stream"}


@pytest.fixture(scope="module")
def exported() -> typing.Iterator[tuple[OtlpReceiver, str, dict[str, float]]]:
    """The workload above, instrumented with content capture on (span and event), exported over real OTLP/gRPC
    (traces, metrics and logs).

    Yields the receiver, the canary that the prompt, system instructions and tool definitions carry, and the wall
    time of each call as the application saw it."""
    canary = f"canary-{os.urandom(8).hex()}"
    kw = {
        "model": MODEL,
        "max_tokens": 16,
        "system": f"Be brief. {canary}",
        "messages": [{"role": "user", "content": f"Say hello. {canary}"}],
        "tools": [{"name": "lookup", "description": f"Looks up {canary}", "input_schema": {"type": "object"}}],
    }
    walls: dict[str, float] = {}
    with Simulator() as sim, OtlpReceiver() as receiver:
        resource = Resource.create({"service.name": "stack-test"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)))
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True))
        )
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True), export_interval_millis=3_600_000
        )
        meter_provider = MeterProvider(metric_readers=[reader], resource=resource)
        claude_otel.instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider,
            capture_content="SPAN_AND_EVENT",
        )  # fmt: skip
        tracer = tracer_provider.get_tracer("app")
        try:
            with anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url, max_retries=2) as client:
                for label, steps in STEPS.items():
                    with tracer.start_as_current_span(label):
                        start = time.monotonic()
                        headers = scenario(steps)
                        if label == "abandoned stream":
                            stream = client.messages.create(**kw, stream=True, extra_headers=headers)
                            next(iter(stream))
                            stream.close()
                        elif label in STREAMED:
                            try:
                                list(client.messages.create(**kw, stream=True, extra_headers=headers))
                            except anthropic.AnthropicError:
                                assert label == "error after 200"
                        else:
                            try:
                                client.messages.create(**kw, extra_headers=headers)
                            except anthropic.APIStatusError:
                                assert label in ("failed after retries", "rejected")
                        walls[label] = time.monotonic() - start
        finally:
            claude_otel.uninstrument()
            tracer_provider.shutdown()
            meter_provider.shutdown()
            logger_provider.shutdown()
        yield receiver, canary, walls


def traces_by_root(receiver: OtlpReceiver) -> dict[str, list]:
    """The received spans (protobuf) of each trace, by the name of the application's span at its root."""
    spans = [span for request in receiver.traces for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    by_trace: dict[bytes, list] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    roots = {}
    for trace in by_trace.values():
        (root,) = [span for span in trace if not span.parent_span_id]
        roots[root.name] = trace
    return roots


def value(any_value: typing.Any) -> typing.Any:
    return getattr(any_value, any_value.WhichOneof("value"))


STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}


def keeps(policies: list[dict], trace: list) -> set[str]:
    """The policies that keep `trace`, evaluated as tailsamplingprocessor/README.md defines them. `probabilistic`
    decides by trace id: it is left out (it may keep any trace). A policy type without an evaluator here fails."""
    kept = set()
    for policy in policies:
        settings = policy.get(policy["type"])
        if policy["type"] == "status_code":
            if any(span.status.code in {STATUS[code] for code in settings["status_codes"]} for span in trace):
                kept.add(policy["name"])
        elif policy["type"] == "numeric_attribute":
            low, high = settings.get("min_value", -(2**63)), settings.get("max_value", 2**63 - 1)
            for span in trace:
                for attribute in span.attributes:
                    # Only an int attribute counts: the processor reads the value as int64.
                    if attribute.key == settings["key"] and attribute.value.WhichOneof("value") == "int_value":
                        if low <= attribute.value.int_value <= high:
                            kept.add(policy["name"])
        elif policy["type"] == "latency":
            duration_ms = (max(s.end_time_unix_nano for s in trace) - min(s.start_time_unix_nano for s in trace)) / 1e6
            if duration_ms >= settings["threshold_ms"]:
                kept.add(policy["name"])
        elif policy["type"] != "probabilistic":
            raise AssertionError(f"no evaluator for the policy type {policy['type']}: add one")
    return kept


def test_sampling_keeps_every_failed_and_retried_call_and_samples_the_rest(exported) -> None:
    receiver, _, _ = exported
    policies = COLLECTOR["processors"]["tail_sampling"]["policies"]
    traces = traces_by_root(receiver)
    assert set(traces) == set(STEPS)
    decided = {label: keeps(policies, trace) for label, trace in traces.items()}
    for label in ("failed after retries", "rejected", "error after 200", "truncated stream"):
        assert "keep-errors" in decided[label], label
    for label in ("retried", "failed after retries"):
        assert "keep-retried" in decided[label], label
    # Successes, a refusal, an abandoned stream: left to the probabilistic sample, not all kept.
    for label in ("ok", "streamed", "refusal", "abandoned stream", "slow"):
        assert decided[label] == set(), label
    # What the retried policy reads: the call span's attempt count, exported as an int.
    (call,) = [s for s in traces["retried"] if any(a.key == "claude_otel.attempts" for a in s.attributes)]
    (attempts,) = [a.value for a in call.attributes if a.key == "claude_otel.attempts"]
    assert attempts.WhichOneof("value") == "int_value" and attempts.int_value == 2


def test_latency_policy_sees_the_whole_call(exported) -> None:
    receiver, _, walls = exported
    traces = traces_by_root(receiver)
    # The trace lasts as long as the application waited for the call: a call slower than the threshold is kept.
    for label, wall in walls.items():
        trace = traces[label]
        duration = (max(s.end_time_unix_nano for s in trace) - min(s.start_time_unix_nano for s in trace)) / 1e9
        assert duration >= wall * 0.95, label
    # With the threshold at the slow call's 0.8 s (the configured one, 20 s, is longer than this test should take),
    # the slow call is kept, a quick one is not.
    (latency,) = [p for p in COLLECTOR["processors"]["tail_sampling"]["policies"] if p["type"] == "latency"]
    lowered = [{**latency, "latency": {**latency["latency"], "threshold_ms": 800}}]
    assert walls["slow"] >= 0.8 and keeps(lowered, traces["slow"]) == {"keep-slow"}
    assert walls["ok"] < 0.8 and keeps(lowered, traces["ok"]) == set()


def strip(requests: list, config: dict, pipeline: str) -> list:
    """Copies of OTLP export requests after the `attributes` processors of `pipeline`, as that processor's `delete`
    action works: the attribute named by `key`, or every attribute whose name matches `pattern`."""
    stripped = [copy.deepcopy(request) for request in requests]
    for name in config["service"]["pipelines"][pipeline]["processors"]:
        if kind(name) != "attributes":
            continue
        actions = config["processors"][name]["actions"]
        assert {action["action"] for action in actions} == {"delete"}
        keys = {action["key"] for action in actions if "key" in action}
        patterns = [re.compile(action["pattern"]) for action in actions if "pattern" in action]
        for request in stripped:
            for record in records(request):
                kept = [a for a in record.attributes if a.key not in keys and not any(p.search(a.key) for p in patterns)]
                del record.attributes[:]
                record.attributes.extend(kept)
    return stripped


def records(request: typing.Any) -> list:
    """The spans of a traces request, the log records of a logs request."""
    if hasattr(request, "resource_spans"):
        return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    return [record for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]


def keys(requests: list) -> set[str]:
    return {attribute.key for request in requests for record in records(request) for attribute in record.attributes}


def test_content_is_stripped_unless_allowed(exported) -> None:
    receiver, canary, _ = exported
    spans, logs = list(receiver.traces), list(receiver.logs)
    content = set(_content._KEYS)
    # What claude_otel sends with content capture on: these exact names, on spans and on the content events.
    assert content == {
        "gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"
    }  # fmt: skip
    assert content <= keys(spans) and content <= keys(logs)
    for requests in (spans, logs):
        assert canary.encode() in b"".join(request.SerializeToString() for request in requests)

    for pipeline, requests in (("traces", spans), ("logs", logs)):
        stripped = strip(requests, COLLECTOR, pipeline)
        assert not content & keys(stripped), pipeline
        sent = b"".join(request.SerializeToString() for request in stripped)
        assert canary.encode() not in sent, f"{pipeline}: content left after the collector's stripping"
        assert b"anthropic.request.id" in sent  # The rest is still there.
        # Allowed (the overlay): the content goes through as the application recorded it.
        allowed = strip(requests, merge(COLLECTOR, ALLOW_CONTENT), pipeline)
        assert content <= keys(allowed), pipeline


def test_stripped_names_are_the_ones_really_emitted() -> None:
    """Every name the collector deletes is one something really emits: claude_otel (above), the Anthropic SDK's own
    tracing on the spans claude_otel leaves to it, or the GenAI conventions' tool result."""
    deleted = {action["key"] for action in COLLECTOR["processors"]["attributes/strip_content"]["actions"]}
    sdk = {"gen_ai.tool.call.arguments", "anthropic.tool_result.content"}
    assert deleted == set(_content._KEYS) | sdk | {"gen_ai.tool.call.result"}
    try:
        from anthropic.lib._tracing._attributes import AttributeName  # anthropic >= 1.14: the SDK traces itself
    except ImportError:
        return
    assert sdk <= set(typing.get_args(AttributeName))


def test_any_request_id_finds_its_trace(exported) -> None:
    """Jaeger's tag search `anthropic.request.id=<id>` finds a trace by any of its calls' request ids: each one is
    the string value of that attribute on a span of the trace (the call's, or its attempt's), under a service name."""
    receiver, _, _ = exported
    traces = traces_by_root(receiver)
    for label in ("ok", "retried", "failed after retries"):
        trace = traces[label]
        tagged = {value(a.value) for span in trace for a in span.attributes if a.key == "anthropic.request.id"}
        assert all(isinstance(tag, str) and tag.startswith("req_") for tag in tagged)
        (call,) = [span for span in trace if any(a.key == "claude_otel.attempts" for a in span.attributes)]
        ids = [value(a.value) for a in call.attributes if a.key == "claude_otel.request_ids"]
        if ids:  # Every attempt's id, in order (absent only when no attempt got a response).
            every = [value(item) for item in ids[0].values]
        else:
            every = [value(a.value) for a in call.attributes if a.key == "anthropic.request.id"]
        assert len(every) == {"ok": 1, "retried": 2, "failed after retries": 3}[label]
        assert set(every) <= tagged, label
    resources = [rs.resource for request in receiver.traces for rs in request.resource_spans]
    services = {value(a.value) for resource in resources for a in resource.attributes if a.key == "service.name"}
    assert services == {"stack-test"}


def test_readme_says_what_the_files_do() -> None:
    """README "The stack": its ports table is what compose publishes, its sampling table what the collector does."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The stack: collector, Jaeger, Prometheus, Grafana", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([\w-]+) \|", section, re.MULTILINE)
    documented = {(int(port), service) for port, service in rows}
    compose = {(host, name.removeprefix("otel-")) for name, s in COMPOSE["services"].items() for _, host in published(s).values()}
    assert documented == compose
    sampling = COLLECTOR["processors"]["tail_sampling"]
    policies = {policy["name"]: policy for policy in sampling["policies"]}
    assert set(re.findall(r"^\| `([\w-]+)` \|", section, re.MULTILINE)) == set(policies)
    assert f"longer than {policies['keep-slow']['latency']['threshold_ms'] // 1000} s" in section
    assert f"{policies['sample-the-rest']['probabilistic']['sampling_percentage']} % of the others" in section
    assert f"decided {sampling['decision_wait'].removesuffix('s')} s after a trace's first span" in section
    for name in COLLECTOR["processors"]["attributes/strip_content"]["actions"]:
        assert f"`{name['key']}`" in section
    assert "docker compose -f docker-compose.yml -f stack/allow-content.compose.yml up -d" in section


def test_histogram_points_carry_the_trace_of_their_call(exported) -> None:
    """The first link of the exemplar path (README "Exemplars"): claude_otel's duration histogram, as exported over
    OTLP, has exemplars whose trace and span ids are a call span of the workload, failed calls' included (their
    traces are always kept, so those links resolve in Jaeger)."""
    receiver, _, _ = exported
    calls = {
        (span.trace_id, span.span_id): root
        for root, trace in traces_by_root(receiver).items()
        for span in trace
        if any(a.key == "claude_otel.attempts" for a in span.attributes)
    }
    points = [
        point
        for request in receiver.metrics
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "gen_ai.client.inference.duration"
        for point in metric.histogram.data_points
    ]
    exemplars = [exemplar for point in points for exemplar in point.exemplars]
    assert exemplars, "no exemplar on the duration histogram"
    linked = {calls[(exemplar.trace_id, exemplar.span_id)] for exemplar in exemplars}  # KeyError: not a call span
    # The histogram keeps the last exemplar of each bucket: failures have a series of their own (error.type).
    assert {"failed after retries", "rejected"} <= linked
