"""The tail-sampling buffer under load: `python bench/tail_sampling.py [--quick]`.

Measures the highest rate of claude_otel-shaped spans the shipped `collector-config.yaml` sustains on this machine,
what stops it above that rate, and the memory the tail-sampling buffer takes per 1k spans/s.

The real collector (0.161.0) and Jaeger (2.13.0) of tests/stack.py run on loopback, each on its shipped config
unmodified (a second `--config` moves addresses only). The load is real claude_otel output: one call of each kind
below goes through the Anthropic SDK, instrumented by claude_otel, to `claude_otel.testing.Simulator`, inside an
application span; the exported spans are the templates. The mix, 2.3 spans a trace on average:

    55 %  create, ok                    2 spans         5 %  400, not retried (keep-errors)    3 spans
    30 %  stream, ok                    2 spans         5 %  529 three times (keep-errors)     5 spans
     5 %  529 then ok (keep-retried)    4 spans

Generator processes send the templates over OTLP/gRPC with the bearer token, fresh trace ids patched into the
serialized bytes of every request, paced to the step's rate in spans/s (up to 16 requests in flight each). Before the
steps (not with --quick) single-span traces fill the decision caches, so that each step's memory is that of a
collector that has run a while. Each step holds its rate `--hold` s and is measured over the part after
decision_wait + 3 s, when the buffer holds only that step's traces. A step is SUSTAINED when none of these fail:

    gen       the generator offered less than 98 % of the target (back-pressure, or no CPU left for it)
    refused   the collector refused spans (its memory_limiter), or an export request failed or timed out
    buffer    a trace was dropped too early, or traces on memory reached num_traces (a full buffer evicts
              undecided traces, errors included)
    memory    the Go heap (what the memory_limiter compares) reached the limiter's soft limit
    jaeger    an error trace of the step was not found in Jaeger by id, or an export to Jaeger failed

The run stops after two steps in a row of gen or refused, at the RSS cap or at the time budget; an alarm 60 s
after the budget ends a run that hangs. Every process it starts is stopped at the end, on Ctrl-C and errors too.
Output: a row per step, the highest sustained rate, what limited the next step, and the sizing rule fitted over the
steps taken without loss. `other` is the CPU the rest of the machine used: on a shared machine, lower figures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import stack  # tests/stack.py

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
REQUESTS_PER_S = 20  # per worker; the traces in a request follow the rate (4 to 128)
MAX_IN_FLIGHT = 16
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 2**20
# kind, x-claude-sim scenario (None: a normal answer), streamed, % of the traces
KINDS = [("ok", None, False, 55), ("ok_stream", None, True, 30), ("retried", "529,ok", False, 5),
         ("failed_400", "400", False, 5), ("failed_529", "529", False, 5)]  # fmt: skip
MIX = [(kind, weight) for kind, _, _, weight in KINDS]
ERROR_KINDS = ("failed_400", "failed_529")
# Single-span traces (% of them): errors are all kept, the others 10 % of the time, so 44 % errors fill the sampled and
# the not-sampled decision caches at the same pace.
WARMUP_MIX = [("warm_error", 44), ("warm_ok", 56)]
FULL_STEPS = [1000, 2000, 4000, 6000, 8000, 10000, 11000, 12000, 14000, 17000, 20000, 25000, 30000]
QUICK_STEPS = [1000, 4000]


# --- the load ------------------------------------------------------------------------------------------------------


def capture_templates() -> dict[str, bytes]:
    """A serialized ExportTraceServiceRequest per kind of KINDS and WARMUP_MIX: the spans claude_otel exported for
    one real SDK call to the simulator, inside an application span."""
    import anthropic
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import claude_otel
    from claude_otel.testing import Simulator

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tail-sampling-bench"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=provider, meter_provider=MeterProvider(), request_log=False)
    call = {"model": "claude-sonnet-5-5", "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]}
    templates = {}
    try:
        with Simulator() as sim:
            client = anthropic.Anthropic(api_key="sk-ant-bench", base_url=sim.url, max_retries=2)
            for kind, scenario, streamed, _ in KINDS:
                exporter.clear()
                headers = {"x-claude-sim": scenario} if scenario else {}
                try:
                    with provider.get_tracer("app").start_as_current_span("handle-request"):
                        answer = client.messages.create(**call, stream=streamed, extra_headers=headers)
                        if streamed:
                            for _ in answer:  # read to the end, as an application would
                                pass
                except anthropic.APIError:
                    pass  # recorded on the spans, as an application's error handler would leave it
                templates[kind] = encode_spans(exporter.get_finished_spans()).SerializeToString()
    finally:
        claude_otel.uninstrument()
        provider.shutdown()
    for kind, source, name in (("warm_error", "failed_400", "chat"), ("warm_ok", "ok", "handle-request")):
        request = parse(templates[source])  # the failed call's span alone; the application span alone
        for scope in request.resource_spans[0].scope_spans:
            kept = [span for span in scope.spans if span.name.startswith(name)]
            del scope.spans[:]
            scope.spans.extend(kept)
            for span in scope.spans:
                span.parent_span_id = b""
        templates[kind] = request.SerializeToString()
    return templates


def parse(data: bytes):  # type: ignore[no-untyped-def]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(data)
    return request


def spans_in(data: bytes) -> list:
    return [span for scope in parse(data).resource_spans[0].scope_spans for span in scope.spans]


def build_request(templates: dict[str, bytes], kinds: list[str]) -> tuple:
    """A request of one trace of each of `kinds`, ending now. Returns its bytes, the byte offsets of each trace's
    trace_id (to patch fresh ids in at every send), its span count, and the index of its first error trace (None if
    it has none)."""
    request = parse(templates[kinds[0]])
    for scope in request.resource_spans[0].scope_spans:
        del scope.spans[:]
    scopes = {scope.scope.name: scope for scope in request.resource_spans[0].scope_spans}
    markers = [os.urandom(16) for _ in kinds]
    for kind, marker in zip(kinds, markers, strict=True):
        source = parse(templates[kind]).resource_spans[0].scope_spans
        shift = time.time_ns() - max(span.end_time_unix_nano for scope in source for span in scope.spans)
        for scope in source:
            if scope.scope.name not in scopes:
                scopes[scope.scope.name] = request.resource_spans[0].scope_spans.add(scope=scope.scope)
            for span in scope.spans:
                copy = scopes[scope.scope.name].spans.add()
                copy.CopyFrom(span)
                copy.trace_id = marker
                copy.start_time_unix_nano += shift
                copy.end_time_unix_nano += shift
                for event in copy.events:
                    event.time_unix_nano += shift
    data = request.SerializeToString()
    offsets = [[match.start() for match in re.finditer(re.escape(marker), data)] for marker in markers]
    spans = sum(len(scope.spans) for scope in request.resource_spans[0].scope_spans)
    assert sum(map(len, offsets)) == spans, "a trace id marker is not unique in the request"
    return data, offsets, spans, next((n for n, kind in enumerate(kinds) if kind in ERROR_KINDS), None)


SENT, FAILED = range(2)  # a worker's counters, in spans (a shared array only the worker writes)


def worker(endpoint: str, token: str, templates: dict[str, bytes], shared: tuple, seed: int) -> None:
    """Sends at `rate.value` spans/s (0: idle) until `stop` is set, its parent is gone or an hour has passed; the
    warm-up's mix while `warm.value` is 1. Counts in `counters`; about once a second puts (time, trace id) of an error
    trace it sent on `error_ids`."""
    import grpc

    rate, warm, stop, counters, error_ids = shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent stops us
    parent, rng = os.getppid(), random.Random(seed)
    channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_METHOD)  # bytes in and out: the request is serialized already
    metadata = (("authorization", f"Bearer {token}"),)
    per_trace = sum(len(spans_in(templates[kind])) * weight for kind, weight in MIX) / sum(w for _, w in MIX)
    built_for, in_flight, last_id, sends, next_at = None, [], 0.0, 0, time.monotonic()

    def settle(block: bool) -> None:
        while in_flight and (block or in_flight[0][0].done()):
            future, spans = in_flight.pop(0)
            block = False
            try:
                future.result()
            except grpc.RpcError:
                counters[FAILED] += spans

    deadline = time.monotonic() + 3600
    while not stop.is_set() and os.getppid() == parent and time.monotonic() < deadline:
        target, warming = rate.value, bool(warm.value)
        if target <= 0:
            settle(False)
            time.sleep(0.05)
            next_at = time.monotonic()
            continue
        if built_for != (target, warming):  # a new step: a second's requests, the mix's exact shares in shuffled order
            mix = WARMUP_MIX if warming else MIX
            traces = max(4, min(128, round(target / (1.0 if warming else per_trace) / REQUESTS_PER_S)))
            kinds = [kind for kind, weight in mix for _ in range(round(traces * REQUESTS_PER_S * weight / 100))]
            rng.shuffle(kinds)
            requests = [build_request(templates, kinds[n::REQUESTS_PER_S]) for n in range(REQUESTS_PER_S)]
            built_for = (target, warming)
        data, offsets, spans, first_error = requests[sends % REQUESTS_PER_S]
        sends += 1
        buffer, ids = bytearray(data), [os.urandom(16) for _ in offsets]
        for trace_id, found in zip(ids, offsets, strict=True):
            for offset in found:
                buffer[offset:offset + 16] = trace_id
        if len(in_flight) >= MAX_IN_FLIGHT:
            settle(True)
        in_flight.append((export.future(bytes(buffer), metadata=metadata, timeout=10), spans))
        counters[SENT] += spans
        if not warming and first_error is not None and time.time() - last_id > 1.0:
            last_id = time.time()
            try:
                error_ids.put_nowait((last_id, ids[first_error].hex()))
            except queue.Full:
                pass
        settle(False)
        next_at += spans / target
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.5:  # behind: no burst to catch up, the offered rate shows the shortfall
            next_at = time.monotonic()
    while in_flight:
        settle(True)
    channel.close()


class Generator:
    """`workers` processes running `worker`, sharing the target rate."""

    def __init__(self, workers: int, endpoint: str, token: str, templates: dict[str, bytes]) -> None:
        context = mp.get_context("spawn")  # not fork: this process holds gRPC state
        self.rate, self.warm, self.stop_event = context.RawValue("d", 0.0), context.RawValue("i", 0), context.Event()
        self.counters = [context.RawArray("d", 2) for _ in range(workers)]
        self.error_ids = context.Queue(maxsize=10_000)
        self.processes = [
            context.Process(target=worker, daemon=True, args=(
                endpoint, token, templates, (self.rate, self.warm, self.stop_event, counters, self.error_ids), n))
            for n, counters in enumerate(self.counters)
        ]  # fmt: skip
        for process in self.processes:
            process.start()

    def set_rate(self, spans_per_s: float, warm: bool = False) -> None:
        self.warm.value = int(warm)
        self.rate.value = spans_per_s / len(self.processes)

    def totals(self) -> list[float]:
        return [sum(counters[index] for counters in self.counters) for index in (SENT, FAILED)]

    def error_ids_sent(self) -> list[tuple[float, str]]:
        found: list[tuple[float, str]] = []
        while len(found) < 10_000:
            try:
                found.append(self.error_ids.get_nowait())
            except queue.Empty:
                break
        return found

    def stop(self) -> None:
        self.stop_event.set()
        for process in self.processes:
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join(5)


# --- measurements --------------------------------------------------------------------------------------------------


def collector_metrics(collector: stack.Collector) -> dict[str, float]:
    """The collector's own metrics (its 8888 endpoint), summed over labels, by name without `_total`; the traces
    sampled as `..._global_count_traces_sampled:true`."""
    values: dict[str, float] = {}
    for line in collector.self_metrics().splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, _, value = line.rpartition(" ")
        names = [series.partition("{")[0].removesuffix("_total")]
        if names[0].endswith("_global_count_traces_sampled") and 'sampled="true"' in series:
            names.append(names[0] + ":true")
        for name in names:
            values[name] = values.get(name, 0.0) + float(value)
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sample(collector: stack.Collector, jaeger: stack.Jaeger, generator: Generator) -> dict:
    """One measurement: the collector's counters and gauges, RSS, CPU seconds, the generator's counters."""
    m, tail = collector_metrics(collector), "otelcol_processor_tail_sampling_"
    sent, failed = generator.totals()
    cpu = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return {
        "t": time.monotonic(), "sent": sent, "failed": failed,
        "accepted": m.get("otelcol_receiver_accepted_spans", 0.0),
        "refused": m.get("otelcol_receiver_refused_spans", 0.0) + m.get("otelcol_receiver_failed_spans", 0.0),
        "dropped_early": m.get(tail + "sampling_trace_dropped_too_early", 0.0),
        "on_memory": m.get(tail + "sampling_traces_on_memory", 0.0),
        "new_traces": m.get(tail + "new_trace_id_received", 0.0),
        "decided": m.get(tail + "global_count_traces_sampled", 0.0),
        "sampled": m.get(tail + "global_count_traces_sampled:true", 0.0),
        "export_failed": m.get("otelcol_exporter_send_failed_spans", 0.0)
        + m.get("otelcol_exporter_enqueue_failed_spans", 0.0),
        "heap": m.get("otelcol_process_runtime_heap_alloc_bytes", 0.0),
        "rss": collector.process.rss_bytes(),
        "cpu_collector": cpu_seconds(collector.process.popen.pid),  # type: ignore[union-attr]
        "cpu_jaeger": cpu_seconds(jaeger.process.popen.pid),  # type: ignore[union-attr]
        # The generator's processes and this one (which measures): the load's cost.
        "cpu_generator": sum(cpu_seconds(p.pid) for p in generator.processes if p.pid) + cpu_seconds(os.getpid()),
        "busy": (sum(cpu) - cpu[3] - cpu[4]) / CLK_TCK,  # the machine's, all cores: all but idle and iowait
    }  # fmt: skip


def hold(collector: stack.Collector, jaeger: stack.Jaeger, generator: Generator, seconds: float,
         max_rss: float) -> list[dict]:
    """A sample a second for `seconds`, or until the collector's RSS passes `max_rss`."""
    samples: list[dict] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (samples and samples[-1]["rss"] > max_rss):
        started = time.monotonic()
        if not collector.process.running:
            raise RuntimeError(f"the collector exited:\n{collector.process.output()[-3000:]}")
        samples.append(sample(collector, jaeger, generator))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return samples


def check_jaeger(jaeger: stack.Jaeger, ids: list[tuple[float, str]], until: float, count: int = 5) -> tuple[int, int]:
    """How many of `count` error traces, spread over those sent before `until` (time.time()), Jaeger has."""
    eligible = [trace_id for sent, trace_id in ids if sent <= until]
    chosen, found = eligible[:: max(1, len(eligible) // count)][:count], 0
    for trace_id in chosen:
        for _ in range(10):  # the batch processor and Jaeger may take a moment
            try:
                if jaeger.trace(trace_id):
                    found += 1
                    break
            except OSError:
                pass  # no answer in time: counted as not found if it stays so
            time.sleep(0.3)
    return found, len(chosen)


def summarize(target: float, window: list[dict], found: int, checked: int, settings: dict) -> dict:
    """A step's row: rates over the window, medians and peaks of its gauges, and what failed (`reasons`)."""
    a, b = window[0], window[-1]

    def per_s(key: str) -> float:
        return (b[key] - a[key]) / (b["t"] - a["t"])

    row = {"target": target, "offered": per_s("sent"), "accepted": per_s("accepted"),
           "refused": (b["refused"] - a["refused"]) + (b["failed"] - a["failed"]),
           "dropped_early": b["dropped_early"] - a["dropped_early"], "new_traces": per_s("new_traces"),
           "export_failed": b["export_failed"] - a["export_failed"], "found": found, "checked": checked,
           "cpu_collector": per_s("cpu_collector"), "cpu_jaeger": per_s("cpu_jaeger"),
           "cpu_generator": per_s("cpu_generator")}  # fmt: skip
    for key in ("on_memory", "heap", "rss"):
        row[key] = statistics.median(s[key] for s in window)
        row[key + "_peak"] = max(s[key] for s in window)
    row["cpu_other"] = max(0.0, per_s("busy") - row["cpu_collector"] - row["cpu_jaeger"] - row["cpu_generator"])
    row["spans_per_trace"] = row["accepted"] / row["new_traces"] if row["new_traces"] else 0.0
    failed = {
        "gen": row["offered"] < 0.98 * target,
        "refused": row["refused"] > 0,
        "buffer": row["dropped_early"] > 0 or row["on_memory_peak"] >= settings["num_traces"],
        "memory": row["heap_peak"] >= settings["soft_limit"],
        "jaeger": checked == 0 or found < checked or row["export_failed"] > 0,
    }
    row["reasons"] = [reason for reason, bad in failed.items() if bad]
    row["overloaded"] = bool({"gen", "refused"} & set(row["reasons"]))
    return row


# --- the run -------------------------------------------------------------------------------------------------------


def shipped_settings(collector: stack.Collector) -> dict:
    """The shipped tail_sampling settings, and the memory_limiter's limits as the running collector computed them
    from its percentages (of the machine's memory, or the container's limit)."""
    tail = yaml.safe_load(stack.COLLECTOR_CONFIG.read_text())["processors"]["tail_sampling"]
    log = collector.process.output()
    limits = re.search(r'"limit_mib": (\d+), "spike_limit_mib": (\d+)', log)
    total = re.search(r'"total_memory_mib": (\d+), "limit_percentage": (\d+)', log)
    assert limits and total, "the collector did not log its memory_limiter settings"
    return {"decision_wait": float(str(tail["decision_wait"]).removesuffix("s")), "num_traces": tail["num_traces"],
            "cache_size": tail["decision_cache"]["non_sampled_cache_size"], "total_mib": int(total[1]),
            "percentage": int(total[2]), "hard_limit": int(limits[1]) * MIB,
            "soft_limit": (int(limits[1]) - int(limits[2])) * MIB}  # fmt: skip


def run(args: argparse.Namespace) -> None:
    print("templates: one trace of each kind, from claude_otel against the simulator", flush=True)
    templates = capture_templates()
    for kind, data in templates.items():
        print(f"  {kind:11s} {len(data):5,d} B: " + ", ".join(
            f"{s.name} ({len(s.attributes)} attrs{', ERROR' if s.status.code == 2 else ''})" for s in spans_in(data)))
    directory = Path(tempfile.mkdtemp(prefix="tail-sampling-bench-"))
    print(f"stack logs in {directory}", flush=True)
    started: list[stack.Process] = []
    generator = None
    try:
        jaeger = stack.start_jaeger(directory)
        started.append(jaeger.process)
        collector = stack.start_collector(directory, {"jaeger:4317": jaeger.otlp_grpc})
        started.append(collector.process)
        settings, max_rss = shipped_settings(collector), args.max_rss_gib * 2**30
        wait, num_traces = settings["decision_wait"], settings["num_traces"]
        print(f"shipped collector-config.yaml: decision_wait {wait:.0f} s, num_traces {num_traces:,}; memory_limiter "
              f"{settings['percentage']} % of {settings['total_mib']:,} MiB = {settings['hard_limit'] / MIB:,.0f} MiB "
              f"of Go heap, refusing data above {settings['soft_limit'] / MIB:,.0f} MiB (its soft limit)", flush=True)
        generator = Generator(args.workers, collector.address("0.0.0.0:4317"), collector.token, templates)
        time.sleep(2)  # the workers import and connect
        if not args.quick:
            # 80 % of what num_traces holds; single-span traces are about half sampled (WARMUP_MIX).
            rate = 0.8 * num_traces / (wait + 1)
            seconds = min(1.1 * 2 * settings["cache_size"] / rate, args.budget / 4)
            print(f"warm-up: {rate:,.0f} single-span traces/s for {seconds:.0f} s", flush=True)
            before = sample(collector, jaeger, generator)
            generator.set_rate(rate, warm=True)
            hold(collector, jaeger, generator, seconds, max_rss)
            generator.set_rate(0)
            after = hold(collector, jaeger, generator, wait + 3, max_rss)[-1]  # the buffer drains
            print(f"warm-up: {after['sampled'] - before['sampled']:,.0f} sampled and "
                  f"{after['decided'] - after['sampled'] - before['decided'] + before['sampled']:,.0f} not sampled "
                  f"(decision caches of {settings['cache_size']:,} each)", flush=True)
            generator.error_ids_sent()
        idle = sample(collector, jaeger, generator)
        print(f"idle collector: RSS {idle['rss'] / MIB:.0f} MiB, heap {idle['heap'] / MIB:.0f} MiB; "
              f"{os.cpu_count()} cores, 1-min load {os.getloadavg()[0]:.2f}\n\n{HEADER}", flush=True)
        rows, stopped, overloaded = [], "after the last step", 0
        for target in args.steps:
            if time.monotonic() + args.hold + 10 > args.budget_end:
                stopped = "at the time budget"
                break
            step_start = time.time()
            generator.set_rate(target)
            samples = hold(collector, jaeger, generator, args.hold, max_rss)
            window = [s for s in samples if s["t"] - samples[0]["t"] >= wait + 3]
            if samples[-1]["rss"] > max_rss or len(window) < 3:
                stopped = f"at the RSS cap ({args.max_rss_gib} GiB)"
                break
            ids = [(sent, trace_id) for sent, trace_id in generator.error_ids_sent() if sent >= step_start]
            rows.append(summarize(target, window, *check_jaeger(jaeger, ids, time.time() - wait - 2), settings))
            print(format_row(rows[-1]), flush=True)
            overloaded = overloaded + 1 if rows[-1]["overloaded"] else 0
            if overloaded == 2:
                stopped = "after two steps in a row that the collector could not take"
                break
        generator.set_rate(0)
        conclusions(rows, settings, idle, stopped, window_s=args.hold - wait - 3)
    finally:
        if generator is not None:
            generator.stop()
        for process in reversed(started):  # the collector, then Jaeger
            process.stop()


# --- output --------------------------------------------------------------------------------------------------------

HEADER = (f"{'target':>7} {'offered':>7} {'accept':>7} {'refused':>7} {'dropped':>7} {'onMem':>6} {'heap':>5} "
          f"{'peak':>5} {'RSS':>5} {'colCPU':>6} {'jaeCPU':>6} {'genCPU':>6} {'other':>5} {'jaeger':>6}  verdict\n"
          f"{'span/s':>7} {'span/s':>7} {'span/s':>7} {'spans':>7} {'traces':>7} {'peak':>6} {'MiB':>5} {'MiB':>5} "
          f"{'MiB':>5} {'cores':>6} {'cores':>6} {'cores':>6} {'cores':>5} {'found':>6}")


def format_row(row: dict) -> str:
    return (f"{row['target']:7.0f} {row['offered']:7.0f} {row['accepted']:7.0f} {row['refused']:7.0f} "
            f"{row['dropped_early']:7.0f} {row['on_memory_peak']:6.0f} {row['heap'] / MIB:5.0f} "
            f"{row['heap_peak'] / MIB:5.0f} {row['rss'] / MIB:5.0f} {row['cpu_collector']:6.2f} "
            f"{row['cpu_jaeger']:6.2f} {row['cpu_generator']:6.2f} {row['cpu_other']:5.2f} "
            f"{row['found']:>3d}/{row['checked']:<2d}  " + ("no: " + ", ".join(row["reasons"]) if row["reasons"]
                                                           else "SUSTAINED"))  # fmt: skip


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


def limited_by(row: dict, settings: dict) -> str:
    """What stopped a step, from its measurements."""
    cpu = (f"collector {row['cpu_collector']:.2f}, Jaeger {row['cpu_jaeger']:.2f}, generator "
           f"{row['cpu_generator']:.2f}, rest of the machine {row['cpu_other']:.2f} of {os.cpu_count()} cores")
    if {"memory", "refused"} <= set(row["reasons"]):
        return f"memory: the memory_limiter refused data (heap peak {row['heap_peak'] / MIB:,.0f} MiB)"
    if row["overloaded"]:
        return f"CPU: the offered load was not taken on this machine ({cpu})"
    if "buffer" in row["reasons"]:
        return (f"num_traces: {row['new_traces']:,.0f} new traces/s held {row['on_memory'] / row['new_traces']:.1f} "
                f"s fill its {settings['num_traces']:,}; {row['dropped_early']:,.0f} traces were evicted undecided. "
                f"The load itself was taken ({cpu})")
    return ", ".join(row["reasons"])


def conclusions(rows: list[dict], settings: dict, idle: dict, stopped: str, window_s: float) -> None:
    print(f"\noffered: what the generator sent; accept: otelcol_receiver_accepted_spans; refused: spans refused or in "
          f"failed exports; dropped: traces dropped too early; onMem: traces on memory; heap: the Go heap the "
          f"memory_limiter compares (median, peak), RSS (median); CPU in cores, other: the rest of the machine; "
          f"jaeger: error traces found by id. Over each step's last {window_s:.0f} s. Run stopped {stopped}.")
    soft, num_traces, wait = settings["soft_limit"], settings["num_traces"], settings["decision_wait"]
    best = max((row for row in rows if not row["reasons"]), key=lambda row: row["target"], default=None)
    if best:
        print(f"\nSUSTAINED: {best['accepted']:,.0f} spans/s ({best['new_traces']:,.0f} traces/s), collector heap "
              f"{best['heap'] / MIB:,.0f} MiB median, {best['heap_peak'] / MIB:,.0f} MiB peak = "
              f"{100 * best['heap_peak'] / soft:.1f} % of the memory_limiter's soft limit ({soft / MIB:,.0f} MiB); "
              f"RSS {best['rss'] / MIB:,.0f} MiB; collector CPU {best['cpu_collector']:.2f} cores, the rest of the "
              f"machine {best['cpu_other']:.2f}")
    else:
        print("\nSUSTAINED: no step met every criterion")
    failed = next((row for row in rows if row["reasons"] and (best is None or row["target"] > best["target"])), None)
    if failed:
        print(f"first step above it not sustained: {failed['target']:,.0f} spans/s ({', '.join(failed['reasons'])});"
              f" limited by {limited_by(failed, settings)}")
    elif best:
        print("every step was sustained: the limit is above the highest step run")

    usable = [row for row in rows if not ({"buffer", "gen", "refused"} & set(row["reasons"]))]
    if len(usable) < 2:
        print("(the sizing rule needs two steps taken without loss)")
        return
    held = statistics.fmean(row["on_memory"] / row["new_traces"] for row in usable)
    per_trace = statistics.fmean(row["spans_per_trace"] for row in usable)
    buffered = [row["on_memory"] * row["spans_per_trace"] for row in usable]
    heap_per_span, heap_0 = fit(buffered, [row["heap"] for row in usable])
    rss_per_span, rss_0 = fit(buffered, [row["rss"] for row in usable])
    full, capacity = num_traces * per_trace, num_traces / held * per_trace  # spans in a full buffer; spans/s to fill it
    print(f"\nSIZING (least squares over the {len(usable)} steps taken without loss; {per_trace:.2f} spans a trace)")
    print(f"  a trace is held {held:.1f} s (traces on memory / new traces per s): decision_wait {wait:.0f} s, decided "
          f"at the next 1 s tick")
    print(f"  a span held costs {heap_per_span:,.0f} B of heap (median over GC cycles) and {rss_per_span:,.0f} B "
          f"of RSS; idle collector {idle['heap'] / MIB:.0f} MiB heap, {idle['rss'] / MIB:.0f} MiB RSS (intercepts "
          f"{heap_0 / MIB:.0f}, {rss_0 / MIB:.0f} MiB)")
    print(f"  memory per 1k spans/s = 1000 x {held:.1f} s x bytes a span = {1000 * held * heap_per_span / MIB:,.0f} "
          f"MiB heap, {1000 * held * rss_per_span / MIB:,.0f} MiB RSS (in proportion to decision_wait + ~1 s)")
    print(f"  num_traces needed = spans/s / {per_trace:.2f} spans a trace x (decision_wait + 1 s) x margin: "
          f"{1000 / per_trace * (wait + 1) * 1.5:,.0f} per 1k spans/s with a 1.5 margin")
    full_heap, full_rss = heap_0 + full * heap_per_span, rss_0 + full * rss_per_span
    print(f"  shipped num_traces {num_traces:,}: full at {capacity:,.0f} spans/s ({capacity / 1.5:,.0f} with the 1.5 "
          f"margin); full, it holds {full:,.0f} spans = {full_heap / MIB:,.0f} MiB heap, {100 * full_heap / soft:.1f} "
          f"% of the memory_limiter's soft limit here ({full_rss / MIB:,.0f} MiB RSS): "
          + ("num_traces, not the memory_limiter, bounds the buffer" if full_heap < soft else
             "the memory_limiter refuses data before num_traces is reached"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two steps, no warm-up: checks that the script works")
    parser.add_argument("--steps", type=lambda text: [float(x) for x in text.split(",")], help="spans/s: 1000,2000")
    parser.add_argument("--hold", type=float, help="seconds per step (default 30; 22 with --quick)")
    parser.add_argument("--workers", type=int, default=2, help="generator processes (default 2)")
    parser.add_argument("--budget", type=float, help="seconds for the whole run (default 840; 120 with --quick)")
    parser.add_argument("--max-rss-gib", type=float, default=4.0, help="stop when the collector's RSS passes this")
    args = parser.parse_args()
    args.steps = args.steps or (QUICK_STEPS if args.quick else FULL_STEPS)
    args.hold = args.hold or (22.0 if args.quick else 30.0)
    args.budget = args.budget or (120.0 if args.quick else 840.0)
    started = time.monotonic()
    args.budget_end = started + args.budget

    def interrupt(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by {signal.Signals(signum).name}")  # run()'s `finally` stops every process

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(signum, interrupt)
    signal.alarm(int(args.budget) + 60)  # the hard budget: the steps stop at `budget`, this ends a run that hangs
    run(args)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
