"""Bedrock and Vertex clients share the resources: their calls are call spans too, naming their platform."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from conftest import MESSAGES, Spans

KW = {"max_tokens": 32, "messages": MESSAGES}


def vertex(sim, cls=anthropic.AnthropicVertex):
    return cls(region="us-east5", project_id="proj", access_token="ya29.token", base_url=f"{sim.url}/v1")


def bedrock(sim):
    pytest.importorskip("boto3")
    return anthropic.AnthropicBedrock(
        aws_access_key="AKIAEXAMPLEKEY", aws_secret_key="example-secret", aws_region="us-east-1", base_url=sim.url
    )


def assert_platform_span(span, provider: str, path: str, *, streamed: bool) -> None:
    assert span.name == f"chat {span.attributes['gen_ai.request.model']}"
    assert span.attributes["gen_ai.provider.name"] == provider
    assert span.attributes["url.path"] == path
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["anthropic.message.stop_reason"] == "end_turn"
    if streamed:
        assert span.attributes["claude_otel.stream.outcome"] == "completed"


def test_vertex(spans: Spans, sim) -> None:
    client = vertex(sim)
    client.messages.create(model="claude-sonnet-5-5", **KW)
    with client.messages.stream(model="claude-sonnet-5-5", **KW) as stream:
        stream.until_done()
    client.beta.messages.create(model="claude-sonnet-5-5", **KW)
    base = "/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-5-5"
    created, streamed, beta = spans.calls()
    assert_platform_span(created, "gcp.vertex_ai", f"{base}:rawPredict", streamed=False)
    assert_platform_span(streamed, "gcp.vertex_ai", f"{base}:streamRawPredict", streamed=True)
    assert_platform_span(beta, "gcp.vertex_ai", f"{base}:rawPredict", streamed=False)
    assert created.attributes["gen_ai.request.model"] == "claude-sonnet-5-5"  # Read before the SDK moves it to the URL.
    assert len(spans.calls()) == 3


def test_async_vertex(spans: Spans, sim) -> None:
    async def main() -> None:
        client = vertex(sim, anthropic.AsyncAnthropicVertex)
        async for _ in await client.messages.create(model="claude-sonnet-5-5", **KW, stream=True):
            pass

    asyncio.run(main())
    (span,) = spans.calls()
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert span.attributes["claude_otel.stream.outcome"] == "completed"


def test_bedrock(spans: Spans, sim) -> None:
    client = bedrock(sim)
    model = "anthropic.claude-sonnet-5-5"
    client.messages.create(model=model, **KW)
    for _ in client.messages.create(model=model, **KW, stream=True):
        pass
    # The beta resources of the Bedrock client copy their methods at import time; the funnel below them sees them.
    client.beta.messages.create(model=model, **KW)
    created, streamed, beta = spans.calls()
    assert_platform_span(created, "aws.bedrock", f"/model/{model}/invoke", streamed=False)
    assert_platform_span(streamed, "aws.bedrock", f"/model/{model}/invoke-with-response-stream", streamed=True)
    assert_platform_span(beta, "aws.bedrock", f"/model/{model}/invoke", streamed=False)
    assert len(spans.calls()) == 3
