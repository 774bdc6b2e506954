"""The scale-out profile, really run: two agents (stack/scale-out/agent.yaml) routing by trace id to two gateways
(the shipped collector-config.yaml, unmodified), the gateways sending to the real Jaeger, and the real Prometheus
scraping them all with stack/scale-out/prometheus.yml. Only addresses move to loopback (tests/stack.py), the
gateways' names in the agents' list included.

One trace crosses two services and two agents: service A, a front end, starts it and sends its traceparent to
service B, which makes the Claude call (tests/stack_scale_out_app.py); A exports to agent-1, B to agent-2. When the
call fails, only B's spans say so. Were the halves of a trace to reach different gateways, the one holding A's half
would see no error and drop it (unless the 10 % probabilistic policy keeps it), and the trace would be found cut in
Jaeger. Proven:
- every failed trace arrives whole in Jaeger, with its parent links across the two services;
- no trace was split: the gateways counted, between them, exactly one new trace per trace sent;
- both gateways took a share, and every span accepted by an agent was accepted by a gateway, none failed;
- each process' metrics are exposed by one gateway only, and Prometheus counts every call, once;
- an agent refuses exports without the token; and the bearertokenauth extension cannot send the token to the
  gateways without TLS (why agent.yaml writes the header out);
- the compose override runs the images, names and files that these processes run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import typing
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import stack
from claude_otel._tools.report import Prometheus

pytestmark = pytest.mark.stack

HERE = Path(__file__).resolve().parent
SCALE_OUT = stack.ROOT / "stack" / "scale-out"
AGENT_CONFIG = SCALE_OUT / "agent.yaml"
OVERRIDE = SCALE_OUT / "compose.yml"
PROMETHEUS_CONFIG = SCALE_OUT / "prometheus.yml"
AGENT = yaml.safe_load(AGENT_CONFIG.read_text())
GATEWAY = yaml.safe_load(stack.COLLECTOR_CONFIG.read_text())
TAIL_SAMPLING = GATEWAY["processors"]["tail_sampling"]
DECISION_WAIT = float(TAIL_SAMPLING["decision_wait"].removesuffix("s"))
(SAMPLED_SHARE,) = [policy["probabilistic"]["sampling_percentage"] / 100
                    for policy in TAIL_SAMPLING["policies"] if policy["type"] == "probabilistic"]  # fmt: skip

GATEWAYS = ("gateway-1", "gateway-2")
AGENTS = ("agent-1", "agent-2")
FRONT, BACK = "scale-out-front", "scale-out-back"
PLAN = {"failed": 60, "ok": 40}
"""Requests A sends to B, by kind (tests/stack_scale_out_app.py). If traces were split between the gateways, a
failed one would arrive whole only if its trace id fell in the probabilistic policy's 10 % (the same 10 % on every
gateway): all 60 whole with probability 0.1^60 if every trace were split, 0.55^60 < 3e-16 if each were split on a
coin toss."""
SPANS = {"failed": 4, "ok": 3}
"""Spans of a trace, by kind: A's, B's SERVER span, the call span, and a failed call's one attempt span."""
DECISIONS = "otelcol_processor_tail_sampling_global_count_traces_sampled"
"""A gateway's count of the traces it decided on, by `sampled` (true: sent to Jaeger)."""


# --- the processes ---------------------------------------------------------------------------------------------------


@dataclass
class ScaleOut:
    """The scale-out profile on loopback: collectors by their compose service names."""

    jaeger: stack.Jaeger
    gateways: dict[str, stack.Collector]
    agents: dict[str, stack.Collector]
    prometheus_url: str
    directory: Path

    @property
    def collectors(self) -> dict[str, stack.Collector]:
        return {**self.gateways, **self.agents}

    def app_env(self, agent: str, service: str) -> dict[str, str]:
        """The environment of an application exporting to `agent`. Spans leave 200 ms after they end (not 5 s), so
        that A's and B's halves of a trace reach its gateway well within the decision wait; metrics every second,
        so that B exports them many times; and the exit waits for the last ones, all of which are counted here."""
        return {**self.agents[agent].exporter_env, "OTEL_SERVICE_NAME": service, "OTEL_BSP_SCHEDULE_DELAY": "200",
                "OTEL_METRIC_EXPORT_INTERVAL": "1000", "CLAUDE_OTEL_EXIT_TIMEOUT": "10"}  # fmt: skip


@pytest.fixture(scope="module")
def scale_out(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[ScaleOut]:
    """Jaeger; two gateways on collector-config.yaml sending to it; two agents on agent.yaml, whose gateway list
    names the gateways' loopback addresses; Prometheus scraping the gateways' exporters and all four collectors' own
    metrics. One token for all, as compose gives."""
    directory = tmp_path_factory.mktemp("scale-out")
    token = f"test-token-{os.urandom(8).hex()}"
    started: list[stack.Process] = []
    try:
        jaeger = stack.start_jaeger(directory)
        started.append(jaeger.process)
        gateways = {}
        for name in GATEWAYS:
            gateways[name] = stack.start_collector(directory, {"jaeger:4317": jaeger.otlp_grpc}, token=token, name=name)
            started.append(gateways[name].process)
        routes = {f"{name}:4317": gateway.address("0.0.0.0:4317") for name, gateway in gateways.items()}
        agents = {}
        for name in AGENTS:
            agents[name] = stack.start_collector(directory, routes, configs=[AGENT_CONFIG], token=token, name=name)
            started.append(agents[name].process)
        targets = {f"{name}:8889": gateway.address("0.0.0.0:8889") for name, gateway in gateways.items()}
        targets |= {f"{name}:8888": collector.address("0.0.0.0:8888") for name, collector in {**gateways, **agents}.items()}
        prometheus, url = stack.start_prometheus(directory, targets, PROMETHEUS_CONFIG)
        started.append(prometheus)
        yield ScaleOut(jaeger, gateways, agents, url, directory)
    finally:
        for process in reversed(started):  # Prometheus, the agents, the gateways, Jaeger: each flushes to the next.
            process.stop()


# --- the workload: one trace, two services, two agents ----------------------------------------------------------------


class Counts:
    """The collectors' own metrics at one moment: `counts(collector, metric, **labels)` is the sum of the series of
    `metric` whose labels include `labels`, as stack.Collector.self_metric reads them live."""

    def __init__(self, scale_out: ScaleOut) -> None:
        self.text = {name: collector.self_metrics() for name, collector in scale_out.collectors.items()}

    def __call__(self, collector: str, metric: str, **labels: str) -> float:
        total = 0.0
        for line in self.text[collector].splitlines():
            if line.startswith((metric + "{", metric + " ")):
                series, _, value = line.rpartition(" ")
                if all(f'{key}="{wanted}"' in series for key, wanted in labels.items()):
                    total += float(value)
        return total


@dataclass
class Workload:
    calls: list[dict]
    """A's requests, as A printed them: kind, trace id, A's span id, B's request id and whether its call failed."""
    kept: dict[str, dict]
    """trace id → the trace Jaeger holds, for every call whose trace was kept."""
    before: Counts
    after: Counts

    def delta(self, collector: str, metric: str, **labels: str) -> float:
        """How much a collector's counter grew over the workload, up to every trace's decision."""
        return self.after(collector, metric, **labels) - self.before(collector, metric, **labels)

    def of(self, kind: str) -> list[dict]:
        return [call for call in self.calls if call["kind"] == kind]


@pytest.fixture(scope="module")
def workload(scale_out: ScaleOut) -> Workload:
    """Runs B (exporting to agent-2), then A (exporting to agent-1) against it; stops B (it flushes at exit); waits
    until the gateways have decided every trace and Jaeger holds every failed one."""
    before = Counts(scale_out)
    port = stack.free_port()
    app = str(HERE / "stack_scale_out_app.py")
    back = stack.Process("back", [sys.executable, app, "back", str(port)], scale_out.directory / "back.log",
                         scale_out.app_env("agent-2", BACK))  # fmt: skip
    try:
        back.start().wait_ready(f"http://127.0.0.1:{port}/")
        plan = ",".join(f"{kind}={count}" for kind, count in PLAN.items())
        front = subprocess.run([sys.executable, app, "front", f"http://127.0.0.1:{port}/", plan], capture_output=True, text=True,
                               timeout=180, env={**os.environ, **scale_out.app_env("agent-1", FRONT)}, check=False)  # fmt: skip
        assert front.returncode == 0, front.stderr[-4000:]
    finally:
        back.stop()
    assert back.popen is not None and back.popen.returncode == 0, back.output()[-4000:]
    calls = [json.loads(line) for line in front.stdout.splitlines()]
    assert sorted(call["kind"] for call in calls) == sorted(kind for kind, count in PLAN.items() for _ in range(count))
    assert all(call["failed"] == (call["kind"] == "failed") for call in calls)

    def decided(counts: Counts) -> float:
        return sum(counts(name, DECISIONS) for name in GATEWAYS)

    stack.wait_for(lambda: decided(Counts(scale_out)) - decided(before) >= len(calls), "the gateways' decisions on every trace",
                   timeout=DECISION_WAIT + 60, interval=1)  # fmt: skip
    failed = [call["trace_id"] for call in calls if call["failed"]]
    stack.wait_for(lambda: all(scale_out.jaeger.trace(trace_id) for trace_id in failed), "every failed trace in Jaeger",
                   timeout=30, interval=1)  # fmt: skip
    time.sleep(2)  # The gateways' batch processor's 200 ms, and Jaeger's own batch, twice over.
    kept = {call["trace_id"]: found for call in calls if (found := scale_out.jaeger.trace(call["trace_id"]))}
    return Workload(calls, kept, before, Counts(scale_out))


def parent(span: dict) -> str | None:
    """A Jaeger span's parent span id; None for a root span."""
    references = span.get("references") or []
    assert len(references) <= 1 and all(reference["refType"] == "CHILD_OF" for reference in references), references
    return references[0]["spanID"] if references else None


# --- traces ------------------------------------------------------------------------------------------------------------


def test_every_failed_trace_arrives_whole(workload: Workload) -> None:
    """A's span (service A, no error), B's SERVER span its child (service B), B's call span (ERROR, B's request id)
    and its attempt span: the whole trace, though its halves entered through different agents."""
    # The test's power: were each trace split on a coin toss, all would arrive whole by this chance at most.
    assert ((1 + SAMPLED_SHARE) / 2) ** PLAN["failed"] < 1e-12
    for call in workload.of("failed"):
        trace = workload.kept.get(call["trace_id"])
        assert trace is not None, call
        services = {key: process["serviceName"] for key, process in trace["processes"].items()}
        spans = {span["operationName"]: span for span in trace["spans"]}
        assert len(trace["spans"]) == SPANS["failed"] and set(spans) == {"front-end", "back-end", "chat claude-sonnet-5-5", "POST"}, call
        front, back, chat, attempt = spans["front-end"], spans["back-end"], spans["chat claude-sonnet-5-5"], spans["POST"]
        assert front["spanID"] == call["span_id"] and parent(front) is None and services[front["processID"]] == FRONT
        assert "otel.status_code" not in stack.tags(front)  # The error is only on B's side.
        assert parent(back) == front["spanID"] and services[back["processID"]] == BACK
        assert parent(chat) == back["spanID"] and parent(attempt) == chat["spanID"]
        assert stack.tags(chat)["otel.status_code"] == "ERROR" and stack.tags(chat)["anthropic.request.id"] == call["request_id"]
        assert {services[span["processID"]] for span in (chat, attempt)} == {BACK}
    # A successful trace is kept (or not) as a whole too.
    for call in workload.of("ok"):
        if trace := workload.kept.get(call["trace_id"]):
            assert {span["operationName"] for span in trace["spans"]} == {"front-end", "back-end", "chat claude-sonnet-5-5"}
            assert len(trace["spans"]) == SPANS["ok"]
    print(f"failed traces whole in Jaeger: {len(workload.of('failed'))} of {PLAN['failed']}; "
          f"successful traces kept: {sum(c['trace_id'] in workload.kept for c in workload.of('ok'))} of {PLAN['ok']}")  # fmt: skip


def test_no_trace_is_split_between_gateways(workload: Workload) -> None:
    """Each gateway's tail sampler counts a trace id as new when it first sees it. Had any trace's spans reached both
    gateways, both would have counted it: between them they counted each trace exactly once, and decided each once,
    keeping exactly the traces Jaeger holds."""
    new = {name: workload.delta(name, "otelcol_processor_tail_sampling_new_trace_id_received") for name in GATEWAYS}
    decided = {name: workload.delta(name, DECISIONS) for name in GATEWAYS}
    sampled = {name: workload.delta(name, DECISIONS, sampled="true") for name in GATEWAYS}
    print(f"traces sent {len(workload.calls)}; new per gateway {new}; kept per gateway {sampled}; in Jaeger {len(workload.kept)}")
    assert sum(new.values()) == sum(decided.values()) == len(workload.calls)
    assert sum(sampled.values()) == len(workload.kept)


def test_the_load_is_spread_and_nothing_is_dropped(workload: Workload) -> None:
    """Each agent took exactly its service's spans, and every span the agents accepted, the gateways accepted: both
    took a share, none was refused. The count is the proof that nothing was lost on the way: the agents' failure
    counters show a span refused or not queued for a gateway, not one dropped after its retries (the load balancer
    gives its per-gateway exporters no metrics of their own; they only log)."""
    spans = {kind: count * SPANS[kind] for kind, count in PLAN.items()}
    accepted = {name: workload.delta(name, "otelcol_receiver_accepted_spans") for name in GATEWAYS + AGENTS}
    print(f"spans sent {sum(spans.values())}; accepted {accepted}")
    assert accepted["agent-1"] == len(workload.calls)  # A: one span a trace.
    assert accepted["agent-2"] == sum(spans.values()) - len(workload.calls)
    assert accepted["gateway-1"] + accepted["gateway-2"] == sum(spans.values())
    assert accepted["gateway-1"] > 0 and accepted["gateway-2"] > 0
    for name in AGENTS:
        assert workload.delta(name, "otelcol_exporter_send_failed_spans") == 0
        assert workload.delta(name, "otelcol_loadbalancer_backend_outcome", success="false") == 0
        assert workload.delta(name, "otelcol_receiver_refused_spans") == 0
    for name in GATEWAYS:
        assert workload.delta(name, "otelcol_receiver_refused_spans") == 0


# --- metrics ------------------------------------------------------------------------------------------------------------


def test_each_process_metrics_come_from_one_gateway(scale_out: ScaleOut, workload: Workload) -> None:
    """B exported its metrics every second through agent-2: every series of it is on one gateway's exporter, none
    on the other's. Prometheus scrapes both (and every collector's own metrics) and counts each call once."""
    def exposition(gateway: stack.Collector) -> str:
        with urllib.request.urlopen(f"http://{gateway.address('0.0.0.0:8889')}/metrics", timeout=5) as response:
            return response.read().decode()

    series = {name: [line for line in exposition(gateway).splitlines() if f'job="{BACK}"' in line]
              for name, gateway in scale_out.gateways.items()}  # fmt: skip
    print({name: len(lines) for name, lines in series.items()}, "series of B per gateway")
    assert sorted(len(lines) > 0 for lines in series.values()) == [False, True]

    prometheus = Prometheus(scale_out.prometheus_url)
    expected = {("otel-collector", gateway.address("0.0.0.0:8889")) for gateway in scale_out.gateways.values()}
    expected |= {("otel-collector-internal", collector.address("0.0.0.0:8888")) for collector in scale_out.collectors.values()}
    calls = f'sum(gen_ai_client_inference_duration_seconds_count{{job="{BACK}"}})'

    def scraped() -> tuple[dict, float] | None:
        """Each target's `up` and the calls of B that Prometheus counts, once it has scraped every target since B's
        last export (its first scrapes come up to one interval after a target is found)."""
        up = {(r["metric"]["job"], r["metric"]["instance"]): r["value"][1] for r in prometheus.instant("up", time.time())}
        counted = sum(float(r["value"][1]) for r in prometheus.instant(calls, time.time()))
        return (up, counted) if set(up) == expected and counted >= len(workload.calls) else None

    up, counted = stack.wait_for(scraped, "Prometheus to scrape every collector, and B's calls", timeout=60, interval=1)
    assert up == dict.fromkeys(expected, "1")
    assert counted == len(workload.calls)


# --- authentication -------------------------------------------------------------------------------------------------------


def export_one_span(exporter: typing.Any, service: str) -> str:
    """Exports one span of `service`; the exporter's result, SUCCESS or FAILURE."""
    span = TracerProvider(resource=Resource.create({"service.name": service})).get_tracer("auth-test").start_span("write")
    span.end()
    try:
        return exporter.export([span]).name
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_an_export_to_an_agent_without_the_token_is_refused(scale_out: ScaleOut, protocol: str) -> None:
    """Without the token, or with another, the agent refuses the export before any pipeline sees it: its accepted
    count does not move, so nothing of it can reach a gateway. With the token, the same export is accepted."""
    agent = scale_out.agents["agent-1"]

    def exporter(token: str | None) -> typing.Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if protocol == "grpc":
            return GrpcSpanExporter(endpoint=agent.grpc, insecure=True, headers=headers, timeout=5)
        return HttpSpanExporter(endpoint=f"{agent.http}/v1/traces", headers=headers, timeout=5)

    def accepted() -> float:
        return agent.self_metric("otelcol_receiver_accepted_spans")

    before = accepted()
    assert export_one_span(exporter(None), "intruder-none") == "FAILURE"
    assert export_one_span(exporter("not-the-token"), "intruder-wrong") == "FAILURE"
    assert accepted() == before
    assert export_one_span(exporter(agent.token), "authorized") == "SUCCESS"
    stack.wait_for(lambda: accepted() == before + 1, "the agent to count the authorized span", timeout=10)


def test_the_auth_extension_cannot_send_the_token_without_tls(scale_out: ScaleOut, tmp_path: Path) -> None:
    """Why agent.yaml writes the authorization header out: with `auth: {authenticator: bearertokenauth}` instead,
    and `tls: insecure` as inside the compose network, the collector validates the config but cannot make the
    exporters to the gateways, and every span sent to the agent fails."""
    config = yaml.safe_load(AGENT_CONFIG.read_text())
    for name in ("load_balancing/traces", "load_balancing/metrics"):
        otlp = config["exporters"][name]["protocol"]["otlp"]
        otlp.pop("headers", None)  # Found once: the two exporters share one mapping (the file's `&to-gateways`).
        otlp["auth"] = {"authenticator": "bearertokenauth"}
    variant = tmp_path / "agent-with-authenticator.yaml"
    variant.write_text(yaml.safe_dump(config))
    binary, _ = stack.binaries()
    result = subprocess.run([str(binary.path), "validate", f"--config={variant}"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, stack.TOKEN_VARIABLE: "t"}, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    routes = {f"{name}:4317": gateway.address("0.0.0.0:4317") for name, gateway in scale_out.gateways.items()}
    agent = stack.start_collector(tmp_path, routes, configs=[variant], token=scale_out.agents["agent-1"].token, name="agent-authenticator")
    try:
        exporter = GrpcSpanExporter(endpoint=agent.grpc, insecure=True, headers={"authorization": f"Bearer {agent.token}"}, timeout=5)
        assert export_one_span(exporter, "through-the-authenticator") == "FAILURE"
        assert "the credentials require transport level security" in agent.process.output()
    finally:
        agent.process.stop()


# --- the files ------------------------------------------------------------------------------------------------------------


def test_the_agent_config_validates_and_needs_a_token() -> None:
    """The real collector accepts agent.yaml, and refuses to start it without a token rather than run it open."""
    binary, _ = stack.binaries()
    command = [str(binary.path), "validate", f"--config={AGENT_CONFIG}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env={**os.environ, stack.TOKEN_VARIABLE: "t"}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    env = {key: value for key, value in os.environ.items() if key != stack.TOKEN_VARIABLE}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode != 0 and "bearertokenauth: no bearer token provided" in result.stdout + result.stderr


def test_the_agent_config_routes_by_trace_and_by_resource() -> None:
    """Every component defined is used, memory_limiter first; spans (and logs) by trace id, metrics by resource,
    both to the same gateways with the same token; the exporter's current name (`load_balancing`)."""
    service = AGENT["service"]
    assert set(AGENT["extensions"]) == set(service["extensions"])
    for section in ("receivers", "processors", "exporters"):
        assert set(AGENT[section]) == {name for pipeline in service["pipelines"].values() for name in pipeline[section]}, section
    pipelines = service["pipelines"]
    assert all(pipeline["processors"][0] == "memory_limiter" for pipeline in pipelines.values())
    assert pipelines["traces"]["exporters"] == pipelines["logs"]["exporters"] == ["load_balancing/traces"]
    assert pipelines["metrics"]["exporters"] == ["load_balancing/metrics"]
    traces, metrics = AGENT["exporters"]["load_balancing/traces"], AGENT["exporters"]["load_balancing/metrics"]
    assert (traces["routing_key"], metrics["routing_key"]) == ("traceID", "resource")
    assert traces["protocol"] == metrics["protocol"] and traces["resolver"] == metrics["resolver"]
    assert traces["protocol"]["otlp"]["headers"] == {"authorization": f"Bearer ${{env:{stack.TOKEN_VARIABLE}}}"}
    assert AGENT["receivers"] == GATEWAY["receivers"]  # The same door, with the same lock, as the single collector's.


class Override(list):
    """A sequence tagged `!override` in a compose file: it replaces the base file's instead of being added to it."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!override", lambda loader, node: Override(loader.construct_sequence(node)))


def compose_merge(base: typing.Any, layer: typing.Any, key: str = "") -> typing.Any:
    """Compose's merge of an override over a base file, as far as these files use it: mappings merge, `command` is
    replaced, `volumes` merge by container path, other sequences are appended to, `!override` replaces."""
    if isinstance(layer, Override) or key == "command":
        return list(layer)
    if isinstance(base, dict) and isinstance(layer, dict):
        return {**base, **{name: compose_merge(base.get(name), value, name) for name, value in layer.items()}}
    if isinstance(base, list) and isinstance(layer, list):
        if key == "volumes":
            return list({entry.split(":")[1]: entry for entry in base + layer}.values())
        return base + [entry for entry in layer if entry not in base]
    return layer


def test_the_compose_override_runs_these_files(tmp_path: Path) -> None:
    """Without a container engine (`docker compose config` cannot run here), what merging the override over
    docker-compose.yml gives: the services that run, their images and mounts, the names the agents send to, the
    ports they publish, and Prometheus' targets."""
    merged = compose_merge(stack.COMPOSE, yaml.load(OVERRIDE.read_text(), Loader=ComposeLoader))
    running = {name: service for name, service in merged["services"].items() if "profiles" not in service}
    assert set(running) == {*GATEWAYS, *AGENTS, "jaeger", "prometheus", "alertmanager", "grafana"}
    for name, service in running.items():
        assert set(service.get("depends_on", [])) <= set(running), name
        for entry in service.get("volumes", []):
            assert (stack.ROOT / entry.split(":")[0]).exists(), entry

    collector = stack.COMPOSE["services"]["otel-collector"]
    mounts = {name: {entry.split(":")[1]: entry.split(":")[0] for entry in running[name]["volumes"]} for name in (*GATEWAYS, *AGENTS)}
    for name in (*GATEWAYS, *AGENTS):
        assert running[name]["image"] == collector["image"] and running[name]["command"] == collector["command"]
        assert running[name]["environment"] == collector["environment"]
    config_path = collector["command"][0].removeprefix("--config=")
    for name in GATEWAYS:
        assert mounts[name] == {config_path: "./collector-config.yaml"} and "ports" not in running[name]
    for name in AGENTS:
        assert mounts[name] == {config_path: "./stack/scale-out/agent.yaml"}

    # The agents send to the gateway services, on the port their OTLP/gRPC receiver listens on.
    grpc_port = GATEWAY["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rpartition(":")[2]
    assert AGENT["exporters"]["load_balancing/traces"]["resolver"]["static"]["hostnames"] == [f"{name}:{grpc_port}" for name in GATEWAYS]
    # agent-1 takes the single collector's OTLP ports; no host port is published twice.
    published = [entry.rsplit(":", 1)[0] for service in running.values() for entry in service.get("ports", [])]
    assert len(published) == len(set(published))
    assert {entry for entry in running["agent-1"]["ports"] if entry.endswith(("4317", "4318"))} == {"4317:4317", "4318:4318"}
    assert {entry.rpartition(":")[2] for entry in running["agent-2"]["ports"]} == {"4317", "4318", "13133"}

    # Prometheus runs the scale-out scrape config: both gateways' exporters, and every collector's own metrics.
    assert set(running["prometheus"]["volumes"]) == {
        "./stack/scale-out/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        *(entry for entry in stack.COMPOSE["services"]["prometheus"]["volumes"] if not entry.startswith("./stack/prometheus/prometheus.yml")),
    }  # The alert rules of docker-compose.yml stay mounted beside it, where its rule_files name them.
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    default = {job["job_name"]: job for job in yaml.safe_load(stack.PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    assert set(jobs) == set(default) and jobs["otel-collector"]["honor_labels"] is True
    (exporter,) = jobs["otel-collector"]["static_configs"]
    (internal,) = jobs["otel-collector-internal"]["static_configs"]
    def telemetry_port(config: dict) -> int:
        (reader,) = config["service"]["telemetry"]["metrics"]["readers"]
        return reader["pull"]["exporter"]["prometheus"]["port"]

    exporter_port = GATEWAY["exporters"]["prometheus"]["endpoint"].rpartition(":")[2]
    assert exporter["targets"] == [f"{name}:{exporter_port}" for name in GATEWAYS]
    assert internal["targets"] == [f"{name}:{telemetry_port(GATEWAY)}" for name in GATEWAYS] + [f"{name}:{telemetry_port(AGENT)}" for name in AGENTS]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == yaml.safe_load(stack.PROMETHEUS_CONFIG.read_text())["rule_files"]
    assert config["alerting"] == yaml.safe_load(stack.PROMETHEUS_CONFIG.read_text())["alerting"]
    mounted = tmp_path / "prometheus.yml"  # As compose mounts it: the rule files beside it.
    shutil.copyfile(PROMETHEUS_CONFIG, mounted)
    for name in config["rule_files"]:
        shutil.copyfile(stack.PROMETHEUS_CONFIG.parent / name, tmp_path / name)
    result = subprocess.run([stack.prometheus_binary("promtool"), "check", "config", str(mounted)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
