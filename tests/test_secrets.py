"""No credential ever leaves in telemetry: the API key, bearer tokens and platform credentials are in no exported span,
metric or log record, no line of the `claude_otel` logger and no exception message, in any form.

A varied workload (successes, retries, failures, every way of streaming and of ending a stream, count_tokens, raw
responses, async, Bedrock and Vertex), with everything on, content capture included, exports over real OTLP (traces
and logs over gRPC, metrics over HTTP) to an `OtlpReceiver`; every byte it received is scanned for each secret as it
is, URL-encoded, hex and base64 (standard and URL-safe, at every alignment). A canary in the prompt must be found
the same way, so a scan that sees nothing cannot pass.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from urllib.parse import quote

import anthropic
import pytest
from conftest import MODEL, scenario
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import claude_otel
from claude_otel.testing import OtlpReceiver, Simulator


def encodings(secret: str) -> set[bytes]:
    """`secret` as it is and in every encoding it could be smuggled out in."""
    raw = secret.encode()
    found = {raw, quote(secret, safe="").encode(), raw.hex().encode(), raw.hex().upper().encode()}
    for offset in range(3):  # A secret inside a longer base64 text starts at any of three alignments.
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(b"\0" * offset + raw)[4:-4])  # Without the ends, which depend on what is around it.
    return found


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # With the traceback, for a debug record that has one.


def workload(sim: Simulator, api_key: str, token: str, aws: tuple[str, str], google: str, canary: str) -> list[str]:
    """Calls of every kind; returns the messages of the exceptions the application saw."""
    messages = [{"role": "user", "content": f"Say hello. {canary}"}]
    kw = {"model": MODEL, "max_tokens": 16, "messages": messages}
    errors: list[str] = []

    def expect_error(call) -> None:
        try:
            call()
        except anthropic.AnthropicError as err:
            errors.extend([str(err), repr(err), str(getattr(err, "body", ""))])
        else:
            raise AssertionError("the call was meant to fail")

    for client in (
        anthropic.Anthropic(api_key=api_key, base_url=sim.url, max_retries=2),
        anthropic.Anthropic(auth_token=token, base_url=sim.url, max_retries=2),
    ):
        client.messages.create(**kw)
        client.messages.create(**kw, extra_headers=scenario("529,ok"))
        expect_error(lambda: client.messages.create(**kw, extra_headers=scenario("401")))
        expect_error(lambda: client.messages.create(**kw, extra_headers=scenario("400")))
        expect_error(lambda: client.messages.create(**kw, extra_headers=scenario("529")))
        expect_error(lambda: client.with_options(timeout=0.05, max_retries=0).messages.create(**kw, extra_headers=scenario("stall:1")))
        list(client.messages.create(**kw, stream=True))
        list(client.messages.create(**kw, stream=True, extra_headers=scenario("truncate")))
        expect_error(lambda: list(client.messages.create(**kw, stream=True, extra_headers=scenario("error_event"))))
        with pytest.raises(Exception):
            list(client.messages.create(**kw, stream=True, extra_headers=scenario("drop")))
        with client.messages.stream(**kw) as stream:
            stream.get_final_message()
        stream = client.messages.create(**kw, stream=True)
        next(iter(stream))
        stream.close()
        client.messages.count_tokens(model=MODEL, messages=messages)
        client.messages.with_raw_response.create(**kw).parse()
        with client.messages.with_streaming_response.create(**kw) as response:
            response.read()

    async def run_async() -> None:
        async with anthropic.AsyncAnthropic(api_key=api_key, base_url=sim.url, max_retries=1) as client:
            await client.messages.create(**kw)
            async for _ in await client.messages.create(**kw, stream=True):
                pass
            try:
                await client.messages.create(**kw, extra_headers=scenario("403"))
            except anthropic.PermissionDeniedError as err:
                errors.append(str(err))

    asyncio.run(run_async())

    vertex = anthropic.AnthropicVertex(region="us-east5", project_id="proj", access_token=google, base_url=f"{sim.url}/v1")
    vertex.messages.create(**kw)
    list(vertex.messages.create(**kw, stream=True))
    try:
        import boto3  # noqa: F401 - the Bedrock client signs with it
    except ImportError:
        return errors
    bedrock = anthropic.AnthropicBedrock(aws_access_key=aws[0], aws_secret_key=aws[1], aws_region="us-east-1", base_url=sim.url)
    bedrock.messages.create(**{**kw, "model": f"anthropic.{MODEL}"})
    list(bedrock.messages.create(**{**kw, "model": f"anthropic.{MODEL}"}, stream=True))
    expect_error(lambda: bedrock.messages.create(**{**kw, "model": f"anthropic.{MODEL}"}, extra_headers=scenario("400")))
    return errors


def test_no_secret_in_any_exported_byte(sim: Simulator) -> None:
    api_key = f"sk-ant-api03-{secrets.token_urlsafe(32)}"
    token = f"oat-{secrets.token_urlsafe(32)}"
    aws = (f"AKIA{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30))
    google = f"ya29.{secrets.token_urlsafe(32)}"
    canary = f"canary-{secrets.token_hex(16)}"

    lines = Lines()
    logger = logging.getLogger("claude_otel")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(lines)
    with OtlpReceiver() as receiver:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)))
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{receiver.http_endpoint}/v1/metrics"), export_interval_millis=3_600_000
        )
        meter_provider = MeterProvider(metric_readers=[reader])
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True))
        )
        claude_otel.instrument(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
            capture_content="SPAN_AND_EVENT",
        )
        try:
            errors = workload(sim, api_key, token, aws, google, canary)
        finally:
            claude_otel.uninstrument()
            logger.removeHandler(lines)
            logger.setLevel(level)
            tracer_provider.shutdown()
            meter_provider.shutdown()
            logger_provider.shutdown()
        payloads = list(receiver.payloads)
        assert receiver.spans and receiver.metrics and receiver.logs  # Every signal arrived.

    # The credentials were sent, so the scan is of a workload that had them to leak.
    # (`x-api-key` or `Authorization: Bearer`, as the SDK version has it.)
    sent = "\n".join(str(request.headers) for request in sim.requests)
    assert api_key in sent and f"Bearer {token}" in sent and f"Bearer {google}" in sent
    assert aws[0] in sent or pytest.importorskip("boto3") is None  # In the signature's `Credential=`.

    everything = b"\n".join([*payloads, *(line.encode() for line in lines.lines), *(error.encode() for error in errors)])
    assert canary.encode() in everything, "the scan does not see the content that it should"
    for name, secret in (("api key", api_key), ("bearer token", token), ("Vertex token", google), *zip(("AWS key id", "AWS secret"), aws)):
        leaked = [form for form in encodings(secret) if form in everything]
        assert not leaked, f"the {name} leaked: {leaked}"
