"""instrument() / uninstrument(): idempotent, and the SDK restored to the very same objects."""

from __future__ import annotations

import anthropic
import pytest
import wrapt
from anthropic import _base_client, _streaming
from conftest import MESSAGES, MODEL
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import claude_otel

HOOKED = [
    (_base_client.SyncAPIClient, "request"),
    (_base_client.AsyncAPIClient, "request"),
    (_base_client.SyncAPIClient, "_attempt_request"),
    (_base_client.AsyncAPIClient, "_attempt_request"),
    (_base_client.BaseClient, "_calculate_retry_timeout"),
    (_streaming.Stream, "__stream__"),
    (_streaming.AsyncStream, "__stream__"),
    (_base_client.BaseClient, "_tracer"),
]


def sdk_objects() -> list[object]:
    return [owner.__dict__.get(name) for owner, name in HOOKED]


def test_uninstrument_restores_the_same_objects(sim) -> None:
    before = sdk_objects()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    claude_otel.instrument(tracer_provider=provider)
    try:
        hooked = sdk_objects()
        assert [a is b for a, b in zip(before, hooked) if a is not None] == [False] * sum(a is not None for a in before)
        claude_otel.instrument(tracer_provider=provider)  # Idempotent: nothing wrapped twice.
        assert all(a is b for a, b in zip(hooked, sdk_objects()))
        client = anthropic.Anthropic(api_key="sk-ant-test-key", base_url=sim.url)
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
        assert [span.name for span in exporter.get_finished_spans()] == [f"chat {MODEL}"]
    finally:
        claude_otel.uninstrument()
    assert all(a is b for a, b in zip(before, sdk_objects()))
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert len(exporter.get_finished_spans()) == 1  # Nothing traced once uninstrumented.
    claude_otel.uninstrument()  # A second uninstrument is harmless too.


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="unknown option"):
        claude_otel.AnthropicInstrumentor().instrument(capture="everything")
    assert not claude_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry


def test_instrumentor_is_a_base_instrumentor() -> None:
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

    instrumentor = claude_otel.AnthropicInstrumentor()
    assert isinstance(instrumentor, BaseInstrumentor)
    assert list(instrumentor.instrumentation_dependencies()) == ["anthropic >= 0.109.0"]


def test_sdk_without_hooks_is_left_alone_with_a_warning(monkeypatch) -> None:
    request = _base_client.SyncAPIClient.__dict__["_attempt_request"]
    monkeypatch.delattr(_base_client.SyncAPIClient, "_attempt_request")
    with pytest.warns(claude_otel.ConfigurationWarning, match="lacks SyncAPIClient._attempt_request"):
        claude_otel.instrument(tracer_provider=TracerProvider())
    claude_otel.uninstrument()
    monkeypatch.setattr(_base_client.SyncAPIClient, "_attempt_request", request, raising=False)
    assert not isinstance(_base_client.SyncAPIClient.__dict__["request"], wrapt.ObjectProxy)


def test_bad_options_raise_before_anything_is_set_up() -> None:
    import subprocess
    import sys

    script = (
        "import claude_otel\n"
        "from opentelemetry import metrics, trace\n"
        "try:\n"
        "    claude_otel.instrument(batch_attribution='tenant')\n"
        "except TypeError as err:\n"
        "    print(err)\n"
        "print(type(trace.get_tracer_provider()).__name__, type(metrics.get_meter_provider()).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    error, providers = result.stdout.strip().splitlines()
    assert "batch_attribution must be a function" in error
    assert providers == "ProxyTracerProvider _ProxyMeterProvider"  # No exporter set up, nothing to fail at exit.
    assert "Failed to export" not in result.stderr


def test_calls_under_suppressed_instrumentation_are_not_traced(spans, client, sim) -> None:
    """Exporters and frameworks suppress instrumentation around their own calls; a Claude call made there (an
    exporter that asks Claude, say) must not make telemetry, nor send trace context."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    kwargs = {"model": MODEL, "max_tokens": 8, "messages": MESSAGES}
    with suppress_instrumentation():
        quiet = client.messages.create(**kwargs)
        with client.messages.stream(**kwargs) as stream:
            stream.get_final_message()
    assert quiet.content and spans.all() == []
    assert spans.points("claude_otel.calls") == []
    assert [request.headers.get("traceparent") for request in sim.requests[-2:]] == [None, None]
    client.messages.create(**kwargs)  # And traced again outside it.
    assert len(spans.calls()) == 1 and "traceparent" in sim.requests[-1].headers


def test_a_misspelled_propagator_does_not_fail_the_import(sim) -> None:
    """`opentelemetry.propagate` raises at import for an `OTEL_PROPAGATORS` name nothing provides; `import
    claude_otel` must not: it warns, naming it, and propagates with the installed ones."""
    import os
    import subprocess
    import sys

    app = (
        "import anthropic, claude_otel\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "claude_otel.instrument(tracer_provider=TracerProvider(), metrics=False)\n"
        f"anthropic.Anthropic(api_key='k', base_url={sim.url!r}).messages.create(model={MODEL!r}, max_tokens=8,"
        " messages=[{'role': 'user', 'content': 'propagators'}])\n"
    )
    env = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,b3mutli,baggage"}
    result = subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "ConfigurationWarning" in result.stderr and "(b3mutli)" in result.stderr
    assert "propagated with tracecontext, baggage" in result.stderr
    sent = [request for request in sim.requests if request.body and "propagators" in str(request.body)]
    assert sent and sent[-1].headers.get("traceparent", "").startswith("00-")


# --- the options: one model (claude_otel._options.Options), the signature, the docs and the checks follow it -----


def option_docstrings() -> dict[str, str]:
    """The docstring under each field of `Options`, whitespace collapsed, read from the source (Python keeps no
    attribute docstrings)."""
    import ast
    import inspect

    from claude_otel import _options

    (options,) = [node for node in ast.parse(inspect.getsource(_options)).body if isinstance(node, ast.ClassDef) and node.name == "Options"]
    return {
        field.target.id: " ".join(doc.value.value.split())
        for field, doc in zip(options.body, options.body[1:])
        if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
        and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)
    }  # fmt: skip


def test_instrument_has_exactly_the_options_with_their_defaults_and_types() -> None:
    import dataclasses
    import inspect

    from claude_otel._options import NAMES, Options

    parameters = inspect.signature(claude_otel.instrument).parameters
    fields = dataclasses.fields(Options)
    assert list(parameters) == [field.name for field in fields] == list(NAMES)
    for field in fields:
        parameter = parameters[field.name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, field.name
        assert parameter.default == field.default, field.name
        assert parameter.annotation == field.type, field.name  # Both modules' annotations are strings, spelled alike.
    assert set(option_docstrings()) == set(NAMES)  # Every option has its docstring.


def test_the_docs_table_is_the_options_with_their_defaults_and_docstrings() -> None:
    import dataclasses
    from pathlib import Path

    from claude_otel._options import Options

    usage = (Path(__file__).parents[1] / "docs" / "usage.md").read_text(encoding="utf-8")
    section = usage.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|", 2) for line in section.splitlines() if line.startswith("| `")]
    documented = [(name.strip().strip("`"), default.strip().strip("`"), text.strip()) for name, default, text in rows]
    docstrings = option_docstrings()
    assert documented == [(field.name, repr(field.default), docstrings[field.name]) for field in dataclasses.fields(Options)]


def test_every_option_of_the_wrong_type_is_a_type_error_before_anything_is_set_up() -> None:
    from claude_otel._options import NAMES

    for name in NAMES:
        with pytest.raises(TypeError, match=f"claude_otel: {name} must be"):
            claude_otel.instrument(**{name: object()})  # No option's type is a bare object.
        assert not claude_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry
    for options in ({"propagate": 1}, {"max_attribute_values": True}, {"max_attribute_values": 1.5}, {"prices": 7}):
        with pytest.raises(TypeError, match="claude_otel"):
            claude_otel.AnthropicInstrumentor().instrument(**options)


@pytest.mark.parametrize(
    "options",
    [{"max_attribute_values": 0}, {"max_content_bytes": -1}, {"capture_content": "ALL"}, {"capture_content": ""}],
)
def test_a_bad_value_of_the_right_type_is_a_value_error(options) -> None:
    with pytest.raises(ValueError, match="claude_otel") as raised:
        claude_otel.instrument(**options)
    assert type(raised.value) is ValueError
    with pytest.raises(ValueError, match="claude_otel"):
        claude_otel.AnthropicInstrumentor().instrument(**options)
    assert not claude_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry


def test_instrument_loads_the_price_table_once(monkeypatch) -> None:
    from claude_otel._prices import PriceTable

    loads = []
    load = PriceTable.load.__func__

    def counted(cls, *args, **kwargs):
        loads.append(args)
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(PriceTable, "load", classmethod(counted))
    claude_otel.instrument(tracer_provider=TracerProvider(), metrics=False)
    try:
        assert len(loads) == 1
    finally:
        claude_otel.uninstrument()


def test_the_instrumentor_warns_for_a_bad_price_file_from_the_environment_but_raises_for_one_given(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text("[]")
    monkeypatch.setenv("CLAUDE_OTEL_PRICES", str(bad))
    with pytest.raises(claude_otel.PriceTableError):
        claude_otel.instrument(tracer_provider=TracerProvider())  # Where the application's author sees it.
    with pytest.raises(claude_otel.PriceTableError):
        claude_otel.AnthropicInstrumentor().instrument(tracer_provider=TracerProvider(), prices=bad)
    with pytest.warns(claude_otel.ConfigurationWarning, match="using the bundled prices"):
        claude_otel.AnthropicInstrumentor().instrument(tracer_provider=TracerProvider(), metrics=False)
    claude_otel.uninstrument()
