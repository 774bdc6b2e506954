"""The stack's files (docker-compose.yml, collector-config.yaml, stack/), checked where running them cannot tell.

tests/test_stack.py runs the collector and Jaeger for real on these files; what is left here is what a real run
cannot show: that compose publishes the ports the configs listen on and mounts the files the tests run, that
Grafana's provisioning points at the right uids, URLs and paths (Grafana cannot run here), that the collector
config uses current component names, in their intended order, with nothing defined and unused, that the
allow-content overlay changes nothing but the stripping, that the stripped names are those really emitted,
`promtool check config` on the mounted Prometheus config, and that docs/stack.md says what the files do.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import typing
from pathlib import Path, PurePosixPath

import yaml

import stack
from claude_otel import _content

ROOT = Path(__file__).resolve().parents[1]


def load(path: str | Path) -> typing.Any:
    return yaml.safe_load((ROOT / path).read_text())


COLLECTOR = load("collector-config.yaml")
COMPOSE = load("docker-compose.yml")
ALLOW_CONTENT = load("stack/collector-allow-content.yaml")
ALLOW_CONTENT_COMPOSE = load("stack/allow-content.compose.yml")

JAEGER = load("stack/jaeger/config.yaml")

# The deprecated component names (since 0.144.0) that a config here must not use (standards §4.1): they still
# validate, so the real collector would not say.
DEPRECATED_TYPES = {"otlphttp", "spanmetrics", "resourcedetection", "logging", "jaeger", "loadbalancing"}  # + exporter `otlp`

# The schema compose must match: each service, the image it runs, the container ports it publishes, and the files
# it mounts (repository path → container path), all of which must exist in the repository.
COMPOSE_SCHEMA = {
    "otel-collector": {
        "image": "ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib",
        "ports": {4317, 4318, 8889, 13133},
        "mounts": {"./collector-config.yaml": "/etc/otelcol-contrib/config.yaml"},
    },
    "jaeger": {
        "image": "quay.io/jaegertracing/jaeger",
        "ports": {16686},
        "mounts": {"./stack/jaeger/config.yaml": "/etc/jaeger/config.yaml"},
    },
    "prometheus": {
        "image": "quay.io/prometheus/prometheus",
        "ports": {9090},
        "mounts": {
            "./stack/prometheus/prometheus.yml": "/etc/prometheus/prometheus.yml",
            "./stack/prometheus/alerts.yml": "/etc/prometheus/alerts.yml",
            "./stack/prometheus/targets.yml": "/etc/prometheus/targets.yml",
        },
    },
    "alertmanager": {
        "image": "quay.io/prometheus/alertmanager",
        "ports": {9093},
        "mounts": {"./stack/alertmanager/alertmanager.yml": "/etc/alertmanager/alertmanager.yml"},
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
    """The Prometheus config compose mounts: its path here and in the container."""
    ((source, target),) = [(source, target) for source, target in mounts(COMPOSE["services"]["prometheus"]).items()
                           if source.endswith("/prometheus.yml")]  # fmt: skip
    return source, target


def prometheus_config_path() -> Path:
    return ROOT / prometheus_mount()[0]


# --- the collector config --------------------------------------------------------------------------------------------


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

    # Traces go to the compose service that runs Jaeger, on the OTLP/gRPC port it binds on every interface.
    jaeger_name = service_by_image(COMPOSE, COMPOSE_SCHEMA["jaeger"]["image"])
    (exporter_name,) = COLLECTOR["service"]["pipelines"]["traces"]["exporters"]
    endpoint = COLLECTOR["exporters"][exporter_name]["endpoint"]
    assert kind(exporter_name) == "otlp_grpc"
    assert endpoint == f"{jaeger_name}:{port_of(JAEGER['receivers']['otlp']['protocols']['grpc']['endpoint'])}"
    assert host_of(JAEGER["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]) == "0.0.0.0"
    assert COLLECTOR["exporters"][exporter_name]["tls"] == {"insecure": True}

    # Prometheus scrapes the collector service on the prometheus exporter's port, and its own metrics' port.
    exporter = COLLECTOR["exporters"]["prometheus"]
    (reader,) = COLLECTOR["service"]["telemetry"]["metrics"]["readers"]
    internal = reader["pull"]["exporter"]["prometheus"]
    targets = {job["job_name"]: [t for group in job["static_configs"] for t in group["targets"]]
               for job in load(prometheus_config_path())["scrape_configs"]}  # fmt: skip
    assert targets == {
        "otel-collector": [f"{collector_name}:{port_of(exporter['endpoint'])}"],
        "otel-collector-internal": [f"{collector_name}:{internal['port']}"],
    }
    assert host_of(exporter["endpoint"]) == "0.0.0.0" and internal["host"] == "0.0.0.0"
    assert port_of(exporter["endpoint"]) in collector_ports

    health = COLLECTOR["extensions"]["health_check"]["endpoint"]
    assert port_of(health) in collector_ports and host_of(health) == "0.0.0.0"

    # Grafana reads both, by compose service name and container port.
    datasources = {source["uid"]: source for source in load(DATASOURCES)["datasources"]}
    prometheus_name = service_by_image(COMPOSE, COMPOSE_SCHEMA["prometheus"]["image"])
    assert datasources["prometheus"]["url"] == f"http://{prometheus_name}:9090"
    query = JAEGER["extensions"]["jaeger_query"]["http"]["endpoint"]
    assert host_of(query) == "0.0.0.0" and port_of(query) in published(services[jaeger_name])
    assert datasources["jaeger"]["url"] == f"http://{jaeger_name}:{port_of(query)}"


def test_late_spans_follow_their_trace_decision() -> None:
    """A span that arrives after its trace was decided follows that decision, rather than start a new trace that
    the probabilistic policy might drop: the decision caches hold at least as many traces as the buffer."""
    sampling = COLLECTOR["processors"]["tail_sampling"]
    cache = sampling["decision_cache"]
    assert cache["sampled_cache_size"] >= sampling["num_traces"] and cache["non_sampled_cache_size"] >= sampling["num_traces"]


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


def test_api_tracing_overlay_only_adds_the_apis_receiver() -> None:
    """stack/collector-api-tracing.yaml: a receiver for the API's deliveries, behind TLS and a token of its own, in
    the traces pipeline; nothing else changed. Its compose override mounts it and the certificates, publishes 443."""
    overlay = load("stack/collector-api-tracing.yaml")
    merged = merge(COLLECTOR, overlay)
    receiver = merged["receivers"]["otlp/anthropic-api"]["protocols"]
    assert set(receiver) == {"http"}  # OTLP/HTTP: what the API delivers
    http = receiver["http"]
    assert http["auth"]["authenticator"] == "bearertokenauth/anthropic-api"
    assert merged["extensions"]["bearertokenauth/anthropic-api"]["token"] == "${env:CLAUDE_OTEL_API_TRACING_TOKEN}"
    assert set(http["tls"]) == {"cert_file", "key_file"}
    assert merged["service"]["extensions"] == [*COLLECTOR["service"]["extensions"], "bearertokenauth/anthropic-api"]
    assert merged["service"]["pipelines"]["traces"]["receivers"] == [*COLLECTOR["service"]["pipelines"]["traces"]["receivers"], "otlp/anthropic-api"]
    for section in ("extensions", "receivers"):
        merged[section] = {key: value for key, value in merged[section].items() if key not in overlay[section]}
    merged["service"] = COLLECTOR["service"]
    assert merged == COLLECTOR  # Nothing else changed.

    override = load("stack/api-tracing.compose.yml")["services"]["otel-collector"]
    configs = flag(override["command"], "--config")
    assert configs[0] == flag(COMPOSE["services"]["otel-collector"]["command"], "--config")[0] and len(configs) == 2
    assert mounts(override)["./stack/collector-api-tracing.yaml"] == configs[1]
    assert {f"443:{port_of(http['endpoint'])}"} == set(override["ports"])
    certificates = mounts(override)["./stack/tls"]
    environment = dict(item.split("=", 1) for item in override["environment"])
    assert environment["CLAUDE_OTEL_TLS_CERT_FILE"].startswith(certificates + "/")
    assert environment["CLAUDE_OTEL_TLS_KEY_FILE"].startswith(certificates + "/")


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
    assert flag(services["jaeger"]["command"], "--config") == [mounts(services["jaeger"])["./stack/jaeger/config.yaml"]]
    assert flag(services["prometheus"]["command"], "--config.file") == [prometheus_mount()[1]]
    alertmanager = services["alertmanager"]
    assert flag(alertmanager["command"], "--config.file") == [mounts(alertmanager)["./stack/alertmanager/alertmanager.yml"]]

    # Prometheus finds its rule files next to its config, where compose mounts them, and sends alerts to the
    # Alertmanager compose runs, on its published port.
    config = load(prometheus_mount()[0])
    directory = PurePosixPath(prometheus_mount()[1]).parent
    mounted = set(mounts(services["prometheus"]).values())
    assert {str(directory / name) for name in config["rule_files"]} == mounted - {prometheus_mount()[1]}
    ((target,),) = [group["targets"] for manager in config["alerting"]["alertmanagers"] for group in manager["static_configs"]]
    assert target == f"alertmanager:{next(iter(published(alertmanager)))}"


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


# --- Prometheus ----------------------------------------------------------------------------------------------------


def test_promtool_checks_the_mounted_config() -> None:
    promtool = stack.prometheus_binary("promtool")
    command = [promtool, "check", "config", str(prometheus_config_path())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# --- content ----------------------------------------------------------------------------------------------------------


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


def test_the_stack_page_says_what_the_files_do() -> None:
    """docs/stack.md: its ports table is what compose publishes, its sampling table what the collector does."""
    section = (ROOT / "docs" / "stack.md").read_text()
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
