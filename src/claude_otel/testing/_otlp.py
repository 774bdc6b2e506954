"""A minimal OTLP receiver on loopback, gRPC and HTTP/protobuf, that keeps what it receives.

For tests of a telemetry pipeline, claude_otel's own and an application's: point `OTEL_EXPORTER_OTLP_ENDPOINT` at
`grpc_endpoint` or `http_endpoint` and read `spans` (and the `traces`, `metrics` and `logs` export requests, as
protobuf messages) once the exporter has flushed.
`payloads` keeps every export request as the bytes of its protobuf message, uncompressed, to scan for what must never
be sent.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedSpan:
    """A span as it arrived over OTLP, with its resource's and scope's names."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: int
    resource: dict[str, Any]
    scope: str
    protocol: str


@dataclass
class OtlpReceiver:
    """Receives OTLP traces and metrics over gRPC and HTTP on 127.0.0.1. Use as a context manager."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    traces: list[Any] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    _grpc_server: Any = None
    _http_server: ThreadingHTTPServer | None = None
    _grpc_port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        assert self._http_server is not None
        return f"http://127.0.0.1:{self._http_server.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        receiver = self

        class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep(request.SerializeToString(), receiver.traces, request)
                receiver._add_traces(request, "grpc")
                return trace_service_pb2.ExportTraceServiceResponse()

        class MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep(request.SerializeToString(), receiver.metrics, request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class LogsService(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep(request.SerializeToString(), receiver.logs, request)
                return logs_service_pb2.ExportLogsServiceResponse()

        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), self._grpc_server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsService(), self._grpc_server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsService(), self._grpc_server)
        self._grpc_port = self._grpc_server.add_insecure_port("127.0.0.1:0")
        self._grpc_server.start()

        handler = type("Handler", (_HttpHandler,), {"receiver": self})
        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http_server.daemon_threads = True
        threading.Thread(target=self._http_server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()

    def wait_for(self, predicate: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0) -> list[ReceivedSpan]:
        """The spans received, once `predicate` holds for them or `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            time.sleep(0.05)
        with self._lock:
            return list(self.spans)

    def _keep(self, payload: bytes, requests: list[Any] | None = None, request: Any = None) -> None:
        with self._lock:
            self.payloads.append(payload)
            if requests is not None:
                requests.append(request)

    def _add_traces(self, request: Any, protocol: str) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            status_code=span.status.code,
                            resource=resource,
                            scope=scope_spans.scope.name,
                            protocol=protocol,
                        )
                    )
        with self._lock:
            self.spans.extend(received)


class _HttpHandler(BaseHTTPRequestHandler):
    receiver: OtlpReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        data = self.rfile.read(int(self.headers.get("content-length") or 0))
        encoding = (self.headers.get("content-encoding") or "").lower()
        if encoding == "gzip":
            data = gzip.decompress(data)
        elif encoding == "deflate":
            data = zlib.decompress(data)
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(data)
            self.receiver._keep(data, self.receiver.traces, request)
            self.receiver._add_traces(request, "http/protobuf")
        elif self.path == "/v1/metrics":
            metrics_request = ExportMetricsServiceRequest()
            metrics_request.ParseFromString(data)
            self.receiver._keep(data, self.receiver.metrics, metrics_request)
        elif self.path == "/v1/logs":
            logs_request = ExportLogsServiceRequest()
            logs_request.ParseFromString(data)
            self.receiver._keep(data, self.receiver.logs, logs_request)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()


def _attributes(key_values: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in key_values}


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    return getattr(value, kind) if kind else None
