"""A small application for the export tests: `python workload.py SIM_URL [instrument]`.

With `instrument`, it makes the one-line call; without, it relies on `opentelemetry-instrument`. It makes a plain
call, a streamed one and a failing one, inside a span of its own, and prints how long each call took.
"""

import sys
import time

import anthropic
from opentelemetry import trace

if len(sys.argv) > 2 and sys.argv[2] == "instrument":
    import claude_otel

    claude_otel.instrument()

client = anthropic.Anthropic(api_key="sk-ant-secret-key-0000", base_url=sys.argv[1], max_retries=0)
kw = {"model": "claude-sonnet-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
with trace.get_tracer("workload").start_as_current_span("handle-request"):
    for name, call in [
        ("create", lambda: client.messages.create(**kw)),
        ("stream", lambda: list(client.messages.create(**kw, stream=True))),
    ]:
        started = time.perf_counter()
        call()
        print(f"{name} {time.perf_counter() - started:.4f}")
    try:
        client.messages.create(**kw, extra_headers={"x-claude-sim": "529"})
    except anthropic.APIStatusError as err:
        print(f"failed {err.status_code}")
