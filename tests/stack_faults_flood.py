"""Kept traces, many and fast, for the fault tests: `python stack_faults_flood.py TRACES PER_REQUEST`.

Each trace is a copy of what claude_otel exports for a failed call (a 400, not retried) under an application span:
three spans, the call span and its attempt span with status ERROR, so the tail-sampling policy `keep-errors` keeps
every one. The copies are made once, here, by the real instrumentation against the bundled simulator; then each gets
a fresh trace id and timestamps of now, and they are sent `PER_REQUEST` traces to an OTLP/gRPC export, over a bare
gRPC channel (no SDK queue that could drop or delay them), to where OTEL_EXPORTER_OTLP_ENDPOINT says, with the
headers of OTEL_EXPORTER_OTLP_HEADERS (the collector's bearer token).

Prints one JSON object: spans per trace, the serialized bytes of one trace, the trace ids whose export the
collector accepted, and how many requests it refused.
"""

from __future__ import annotations

import json
import os
import sys
import time

import anthropic
import grpc
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.re import parse_env_headers

import claude_otel
from claude_otel.testing import SCENARIO_HEADER, Simulator

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def failed_call_trace() -> ExportTraceServiceRequest:
    """The spans of one failed call, as claude_otel exports them, in one export request."""
    exporter = InMemorySpanExporter()
    service = os.environ.get("OTEL_SERVICE_NAME", "stack-faults-flood")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=provider, meter_provider=MeterProvider(), request_log=False)
    try:
        with Simulator() as sim, anthropic.Anthropic(api_key="sk-ant-flood", base_url=sim.url) as client:
            with provider.get_tracer("stack-faults-flood").start_as_current_span("handle-request"):
                try:
                    client.messages.create(model="claude-sonnet-5-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}],
                                           extra_headers={SCENARIO_HEADER: "400"})  # fmt: skip
                except anthropic.BadRequestError:
                    pass  # Recorded on the spans, as an application's handler would let it be.
    finally:
        claude_otel.uninstrument()
    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1 and len(spans) == 3, spans
    return encode_spans(spans)


def requests(template: ExportTraceServiceRequest, traces: int, per_request: int):
    """(request bytes, its trace ids) for `traces` copies of the template, `per_request` to a request."""
    (resource_spans,) = template.resource_spans
    end = max(span.end_time_unix_nano for scope in resource_spans.scope_spans for span in scope.spans)
    made = 0
    while made < traces:
        request = ExportTraceServiceRequest()
        out = request.resource_spans.add()
        out.resource.CopyFrom(resource_spans.resource)
        scopes = []
        for scope in resource_spans.scope_spans:
            added = out.scope_spans.add()
            added.scope.CopyFrom(scope.scope)
            scopes.append((scope, added))
        ids = []
        shift = time.time_ns() - end  # each trace ended just now
        for _ in range(min(per_request, traces - made)):
            trace_id = os.urandom(16)
            ids.append(trace_id.hex())
            for scope, added in scopes:
                for span in scope.spans:
                    copy = added.spans.add()
                    copy.CopyFrom(span)
                    copy.trace_id = trace_id
                    copy.start_time_unix_nano += shift
                    copy.end_time_unix_nano += shift
                    for event in copy.events:
                        event.time_unix_nano += shift
        made += len(ids)
        yield request.SerializeToString(), ids


def main(traces: int, per_request: int) -> None:
    template = failed_call_trace()
    endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].removeprefix("http://")
    metadata = tuple(parse_env_headers(os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""), liberal=True).items())
    accepted: list[str] = []
    refused = 0
    with grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        export = channel.unary_unary(EXPORT)  # bytes in, bytes out
        for data, ids in requests(template, traces, per_request):
            try:
                export(data, metadata=metadata, timeout=30)
                accepted.extend(ids)
            except grpc.RpcError:
                refused += 1
    print(json.dumps({"spans_per_trace": 3, "trace_bytes": len(template.SerializeToString()), "accepted": accepted, "refused_requests": refused}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
