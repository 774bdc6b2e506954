"""Cost per call, against hand-computed expectations, and the price table's rules."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import anthropic
import pytest
from conftest import MESSAGES, Spans, scenario
from opentelemetry.sdk.trace import TracerProvider

import claude_otel
from claude_otel._prices import PriceTable
from claude_otel.testing import USAGE_HEADER

# claude-sonnet-5-5, USD per million tokens: input 2, 5m cache write 2.50, 1h cache write 4, cache read 0.10, output 10.
SONNET = "claude-sonnet-5-5"


def call(client, steps: str = "ok", model: str = SONNET, **extra):
    return client.messages.create(model=model, max_tokens=64, messages=MESSAGES, extra_headers=scenario(steps), **extra)


def test_plain(spans: Spans, client: anthropic.Anthropic) -> None:
    message = call(client)
    span = spans.one()
    expected_input = message.usage.input_tokens * 2 / 1e6
    expected_output = message.usage.output_tokens * 10 / 1e6
    assert span.attributes["claude_otel.cost.input_usd"] == pytest.approx(expected_input)
    assert span.attributes["claude_otel.cost.output_usd"] == pytest.approx(expected_output)
    assert span.attributes["claude_otel.cost.usd"] == pytest.approx(expected_input + expected_output)
    assert "claude_otel.cost.unpriced" not in span.attributes
    # No cache written or read: those parts, zero, are left out.
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 0
    assert "claude_otel.cost.cache_read_usd" not in span.attributes
    assert "claude_otel.cost.cache_write_usd" not in span.attributes


def test_cached_5m_and_1h(spans: Spans, client: anthropic.Anthropic) -> None:
    message = call(client, "cache")  # 2000 cache reads; 300 cache writes, of which 200 for 5 minutes, 100 for 1 hour
    span = spans.one()
    assert span.attributes["claude_otel.cost.cache_read_usd"] == pytest.approx(2000 * 0.10 / 1e6)
    assert span.attributes["claude_otel.cost.cache_write_usd"] == pytest.approx((200 * 2.50 + 100 * 4) / 1e6)
    # Not part of the cost: what the 2000 reads would have cost at the input rate, less what they cost.
    assert span.attributes["claude_otel.cost.cache_savings_usd"] == pytest.approx(2000 * (2 - 0.10) / 1e6)
    savings = spans.points("claude_otel.cost.cache_savings")
    assert [point.value for point in savings] == [pytest.approx(2000 * 1.90 / 1e6)]
    total = (message.usage.input_tokens * 2 + 2000 * 0.10 + 200 * 2.50 + 100 * 4 + message.usage.output_tokens * 10) / 1e6
    assert span.attributes["claude_otel.cost.usd"] == pytest.approx(total)


def test_no_cache_reads_no_savings(spans: Spans, client: anthropic.Anthropic) -> None:
    call(client)
    assert "claude_otel.cost.cache_savings_usd" not in spans.one().attributes
    assert spans.points("claude_otel.cost.cache_savings") == []


def test_cache_writes_without_breakdown_cost_the_5m_rate() -> None:
    table = PriceTable.load()
    price = table.price(SONNET)
    cost = table.cost(price, {"input_tokens": 0, "cache_creation_input_tokens": 1_000_000}, 0, batch=False)
    assert cost.cache_write == pytest.approx(2.50)


def test_batch_tier_is_half_price(spans: Spans, client: anthropic.Anthropic) -> None:
    message = call(client, "batch")
    span = spans.one()
    expected = (message.usage.input_tokens * 2 + message.usage.output_tokens * 10) / 1e6 * 0.5
    assert span.attributes["anthropic.response.service_tier"] == "batch"
    assert span.attributes["claude_otel.cost.usd"] == pytest.approx(expected)
    (point,) = spans.points("claude_otel.cost")
    assert point.attributes["anthropic.response.service_tier"] == "batch"


def test_prompt_length_tier() -> None:
    table = PriceTable.load()
    price = table.price("claude-sonnet-4-5-20250929")  # 3 / 15 per MTok; 6 / 22.50 above 200K prompt tokens
    assert table.cost(price, {"input_tokens": 100_000}, 1_000_000, batch=False).total == pytest.approx(0.3 + 15)
    assert table.cost(price, {"input_tokens": 300_000}, 1_000_000, batch=False).total == pytest.approx(1.8 + 22.5)


def test_unknown_model_is_unpriced_never_guessed(spans: Spans, client: anthropic.Anthropic, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="claude_otel"):
        call(client, model="claude-opus-4-9")
        call(client, model="claude-opus-4-9")
    warnings = [record for record in caplog.records if "no price for model" in record.getMessage()]
    assert len(warnings) == 1  # One warning per model.
    for span in spans.calls():
        assert span.attributes["claude_otel.cost.unpriced"] is True
        assert "claude_otel.cost.usd" not in span.attributes
        assert span.attributes["gen_ai.usage.input_tokens"] > 0  # Tokens still counted.
    (point,) = spans.points("claude_otel.cost")
    assert point.value == 0 and point.attributes["claude_otel.cost.unpriced"] is True
    assert spans.points("gen_ai.client.inference.usage.input_tokens")[0].value > 0


@pytest.mark.parametrize(
    ("model", "row"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-opus-4-20250514", "claude-opus-4-0"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-9", None),
    ],
)
def test_model_ids_resolve(model: str, row: str | None) -> None:
    price = PriceTable.load().price(model)
    assert (price.model if price else None) == row


def test_the_table_covers_every_model_the_sdk_lists() -> None:
    from typing import get_args

    from anthropic.types import model_param

    listed = [name for name in get_args(get_args(model_param.ModelParam)[0]) if isinstance(name, str)]
    table = PriceTable.load()
    unpriced = [name for name in listed if table.price(name) is None and "preview" not in name]
    assert unpriced == [], "add these to the price table"


def test_override_file(tmp_path, sim) -> None:
    prices = tmp_path / "negotiated.json"
    prices.write_text(json.dumps({"models": {"claude-sonnet-5-5": {"input": 1, "output": 5, "source": "contract 42"}}}))
    table = PriceTable.load(prices)
    assert table.price(SONNET).source == "contract 42"
    assert table.price(SONNET).rates.cache_read == pytest.approx(0.1 / 1e6)  # The official 0.1x, when left out.
    assert table.price("claude-opus-4-5") is not None  # The bundled rows stay.


def test_override_by_environment(tmp_path, monkeypatch) -> None:
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"models": {"claude-private-1": {"input": 1, "output": 2}}}))
    monkeypatch.setenv("CLAUDE_OTEL_PRICES", str(prices))
    assert PriceTable.load().price("claude-private-1-20260101").model == "claude-private-1"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"models": []}', "expected an object"),
        ('{"models": {"m": {"input": "two", "output": 1}}}', "input must be a price"),
        ('{"models": {"m": {"input": 1}}}', "output must be a price"),
        ('{"batch_discount": 2, "models": {}}', "batch_discount"),
    ],
)
def test_malformed_file_fails_at_instrument_time(tmp_path, content: str, message: str) -> None:
    prices = tmp_path / "bad.json"
    prices.write_text(content)
    with pytest.raises(claude_otel.PriceTableError, match=message):
        claude_otel.instrument(tracer_provider=TracerProvider(), prices=prices)
    assert not claude_otel.AnthropicInstrumentor().is_instrumented_by_opentelemetry


def test_prices_command() -> None:
    result = subprocess.run([sys.executable, "-m", "claude_otel", "prices"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["model", "input", "cache_write_5m", "cache_write_1h", "cache_read", "output"]
    (sonnet,) = [line for line in lines if line.startswith("claude-sonnet-5-5 ")]
    assert sonnet.split()[1:6] == ["2", "2.5", "4", "0.1", "10"]
    assert "genai-prices" in sonnet
    assert "batch discount: 0.5" in result.stdout


def test_model_names_from_responses_never_grow_the_table_without_bound(caplog) -> None:
    from claude_otel._prices import _MAX_MODELS

    table = PriceTable.load()
    with caplog.at_level(logging.WARNING, logger="claude_otel"):
        for number in range(_MAX_MODELS * 2):
            assert table.price(f"claude-imaginary-{number}") is None
    assert len(table._resolved) <= _MAX_MODELS
    assert len([r for r in caplog.records if "no price for model" in r.getMessage()]) == _MAX_MODELS
    assert table.price(SONNET) is not None  # Known models still resolve once the cache is full.


# --- the price table is a contract --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"input": NaN, "output": 1}', "NaN is not a price"),
        ('{"input": 1, "output": Infinity}', "Infinity is not a price"),
        ('{"input": 1e999, "output": 1}', "input must be a price"),
        ('{"input": -1, "output": 1}', "input must be a price"),
        ('{"input": 1, "output": 1, "cahce_read": 0.1}', "models.claude-sonnet-5-5: unknown field 'cahce_read'"),
        ('{"input": 1, "output": 1, "fast": {"input": 2, "outptu": 4}}', "models.claude-sonnet-5-5.fast: unknown field 'outptu'"),
        ('{"input": 1, "output": 1, "tiers": [{"above_prompt_tokens": 1000, "inptu": 2}]}', r"tiers\[0\]: unknown field 'inptu'"),
        ('{"input": 1, "output": 1, "inference_geo": {"us": -1.1}}', "inference_geo"),
        ('{"input": 1, "output": 1, "web_search_per_1k": "ten"}', "web_search_per_1k"),
        ('{"input": 1, "output": 1, "replace": "yes"}', "replace must be true or false"),
    ],
)
def test_a_bad_value_is_refused_naming_file_model_and_field(tmp_path, row: str, message: str) -> None:
    prices = tmp_path / "contract.json"
    prices.write_text('{"models": {"claude-sonnet-5-5": ' + row + "}}")
    with pytest.raises(claude_otel.PriceTableError, match=message) as raised:
        PriceTable.load(prices)
    assert str(prices) in str(raised.value)


def test_an_unknown_top_level_field_is_refused(tmp_path) -> None:
    prices = tmp_path / "p.json"
    prices.write_text('{"batch_discunt": 0.4, "models": {}}')
    with pytest.raises(claude_otel.PriceTableError, match="unknown field 'batch_discunt'"):
        PriceTable.load(prices)


def test_an_override_row_merges_onto_the_bundled_one(tmp_path) -> None:
    prices = tmp_path / "negotiated.json"
    prices.write_text(json.dumps({"source": "contract 7", "models": {
        "claude-haiku-5-5": {"input": 0.08, "output": 0.4},
        "claude-opus-5-5": {"input": 3, "output": 15, "replace": True},
    }}))  # fmt: skip
    table = PriceTable.load(prices)
    haiku = table.price("claude-haiku-5-5")
    assert haiku.rates.input == pytest.approx(0.08 / 1e6) and haiku.source == "contract 7"
    assert [above for above, _ in haiku.tiers] == [100_000]  # The bundled long-context tier stays.
    assert haiku.inference_geo == {"us": 1.1}
    opus = table.price("claude-opus-5-5")
    assert opus.fast is None and opus.inference_geo is None  # Replaced whole: nothing of the bundled row.
    assert opus.rates.cache_read == pytest.approx(0.3 / 1e6)  # The official 0.1x, when left out.


def test_instrument_again_with_other_prices_names_the_ignored_option(tmp_path) -> None:
    prices = tmp_path / "p.json"
    prices.write_text('{"models": {}}')
    claude_otel.instrument(tracer_provider=TracerProvider())
    try:
        with pytest.warns(claude_otel.ConfigurationWarning, match="prices"):
            claude_otel.instrument(tracer_provider=TracerProvider(), prices=prices)
    finally:
        claude_otel.uninstrument()


# --- model ids as they arrive ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "row"),
    [
        ("Claude-Sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("eu.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("claude-opus-5-2026-11-01", "claude-opus-5"),
        ("claude-2.1", "claude-2"),
        ("claude-2.0", "claude-2"),
        ("claude-v1", "claude-v1"),
        ("claude-instant-1.2", None),
    ],
)
def test_model_ids_as_they_arrive(model: str, row: str | None) -> None:
    price = PriceTable.load(environment=False).price(model)
    assert (price.model if price else None) == row


def test_prices_check_says_which_row_and_why() -> None:
    def check(model: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "claude_otel", "prices", "--check", model], capture_output=True, text=True, check=False)

    found = check("us.anthropic.claude-opus-4-6-v1")
    assert found.returncode == 0
    assert found.stdout.splitlines()[0] == "us.anthropic.claude-opus-4-6-v1 -> claude-opus-4-6: 'us.anthropic.claude-opus-4-6-v1' without its routing and date"
    assert [line.split()[0] for line in found.stdout.splitlines()[1:3]] == ["model", "claude-opus-4-6"]
    retired = check("claude-instant-1.2")
    assert retired.returncode == 1 and "unpriced on purpose: retired" in retired.stdout


# --- what people read -------------------------------------------------------------------------------------------


def test_costs_on_spans_carry_no_float_noise(spans: Spans, client: anthropic.Anthropic) -> None:
    usage = {"input_tokens": 5, "output_tokens": 0}  # 5 x $2 per MTok: 9.999999999999999e-06 in floats.
    assert 5 * (2 / 1_000_000) != 0.00001
    client.messages.create(model=SONNET, max_tokens=64, messages=MESSAGES, extra_headers={USAGE_HEADER: json.dumps(usage)})
    attributes = spans.one().attributes
    assert attributes["claude_otel.cost.usd"] == 0.00001
    assert attributes["claude_otel.cost.input_usd"] == 0.00001


def test_a_million_calls_add_up_to_the_invoice_within_a_cent() -> None:
    from decimal import Decimal

    table = PriceTable.load(environment=False)
    price = table.price(SONNET)
    usage = {"input_tokens": 1234, "cache_read_input_tokens": 5678, "cache_creation_input_tokens": 91, "output_tokens": 321}
    cost = table.cost(price, usage, 321, batch=False)
    counted = 0.0
    for _ in range(1_000_000):
        counted += cost.total  # What the counter does, a call at a time.
    exact = (Decimal(1234) * 2 + Decimal(5678) * Decimal("0.1") + Decimal(91) * Decimal("2.5") + Decimal(321) * 10) / 10**6 * 10**6
    assert abs(Decimal(counted) - exact) < Decimal("0.01")


def test_a_fast_call_of_a_model_without_fast_prices_is_unpriced(spans: Spans, client: anthropic.Anthropic, caplog) -> None:
    headers = {USAGE_HEADER: json.dumps({"speed": "fast"})}
    with caplog.at_level(logging.WARNING, logger="claude_otel"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES, extra_headers=headers)
    attributes = spans.one().attributes
    assert attributes["claude_otel.cost.unpriced"] is True and "claude_otel.cost.usd" not in attributes
    assert any("no fast-mode price for model 'claude-haiku-4-5'" in record.getMessage() for record in caplog.records)
