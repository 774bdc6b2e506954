"""Every published billing rule, as data (`golden_costs.json`), through the real path: the SDK sends the call to the
simulator, whose answer carries the case's usage; the span's cost and the cost counter must be the hand-worked sum.
And the bundled price table against genai-prices, the maintained source it is generated from."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

import anthropic
import pytest
from conftest import MESSAGES, Spans

from claude_otel._prices import PriceTable
from claude_otel.testing import USAGE_HEADER

GOLDEN = json.loads((Path(__file__).with_name("golden_costs.json")).read_text())
CASES = GOLDEN["cases"]
EXACT = 1e-9  # USD: the issue's bar, and far below a cent over a million calls.


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")  # Older models' rules too.
@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden_cost(spans: Spans, client: anthropic.Anthropic, case: dict, stream: bool) -> None:
    assert case["source"] in GOLDEN["sources"]
    headers = {USAGE_HEADER: json.dumps(case["usage"])}
    if stream:
        with client.messages.stream(model=case["model"], max_tokens=64, messages=MESSAGES, extra_headers=headers) as events:
            events.until_done()
    else:
        client.messages.create(model=case["model"], max_tokens=64, messages=MESSAGES, extra_headers=headers)
    attributes = spans.one().attributes
    assert attributes["claude_otel.cost.usd"] == pytest.approx(case["usd"], abs=EXACT), case["work"]
    for part in ("server_tools_usd", "surcharge_usd"):
        assert attributes.get(f"claude_otel.cost.{part}", 0) == pytest.approx(case.get(part, 0), abs=EXACT), part
    points = spans.points("claude_otel.cost")
    assert sum(point.value for point in points) == pytest.approx(case["usd"], abs=EXACT)
    parts = {point.attributes["claude_otel.cost.part"]: point.value for point in points}
    assert parts.get("server_tools", 0) == pytest.approx(case.get("server_tools_usd", 0), abs=EXACT)
    assert parts.get("surcharge", 0) == pytest.approx(case.get("surcharge_usd", 0), abs=EXACT)


def test_every_rule_the_issue_names_has_a_case() -> None:
    usages = [json.dumps(case["usage"]) for case in CASES]
    for needle in ('"ephemeral_1h', '"service_tier": "batch"', "web_search_requests\": 3", '"speed": "fast"',
                   '"inference_geo": "us"', '"compaction"', '"advisor_message"', '"fallback_message"', '"priority"'):  # fmt: skip
        assert any(needle in usage for usage in usages), needle
    assert any(case["name"] == "long-context-tier" for case in CASES)


# --- the bundled table against genai-prices ----------------------------------------------------------------------

# Each difference between the bundled table and genai-prices, and why it stands. Anything else fails the test.
KNOWN_DIFFERENCES = {
    ("claude-mythos-5", "*"): "genai-prices has no row; from the official pricing page (scripts/update_prices.py MANUAL)",
    ("claude-mythos-5-1", "*"): "genai-prices has no row; from the official pricing page (scripts/update_prices.py MANUAL)",
}
FIELDS = {"input_mtok": "input", "cache_write_mtok": "cache_write_5m", "cache_write_1h_mtok": "cache_write_1h",
          "cache_read_mtok": "cache_read", "output_mtok": "output"}  # fmt: skip


def test_the_bundled_table_is_genai_prices() -> None:
    data = pytest.importorskip("genai_prices.data")
    today = datetime.datetime.now(datetime.timezone.utc)
    provider = next(p for p in data.providers if p.id == "anthropic")
    theirs = {model.id.removesuffix("-latest"): model for model in provider.models}
    table = PriceTable.load(environment=False)
    differences = []
    for name, price in table.rows.items():
        model = theirs.get(name)
        if model is None:
            differences.append((name, "*"))
            continue
        prices = model.get_prices(today)
        for field, kind in FIELDS.items():
            value = getattr(prices, field, None)
            base = getattr(value, "base", value)
            ours = getattr(price.rates, kind) * 1_000_000
            if base is not None and abs(float(base) - ours) > 1e-9:
                differences.append((name, kind))
        searches = getattr(prices, "web_searches_kcount", None)
        if searches is not None and abs(float(searches) - price.web_search * 1000) > 1e-9:
            differences.append((name, "web_search_per_1k"))
        for variant in model.price_variants or []:
            start = getattr(variant.constraint, "start_date", None)
            if start is not None and start > today.date():
                continue
            if variant.when == {"speed": "fast"}:
                ours_fast = price.fast
                if ours_fast is None or abs(float(variant.prices.input_mtok) - ours_fast.input * 1e6) > 1e-9 or abs(
                    float(variant.prices.output_mtok) - ours_fast.output * 1e6) > 1e-9:  # fmt: skip
                    differences.append((name, "fast"))
            elif variant.when == {"processing": "batch"}:
                batch = variant.prices.input_mtok
                batch = getattr(batch, "base", batch)
                if abs(float(batch) / float(base_input(prices)) - table.batch_discount) > 1e-9:
                    differences.append((name, "batch"))
    unexplained = [difference for difference in differences if difference not in KNOWN_DIFFERENCES]
    assert unexplained == [], "fix the table (scripts/update_prices.py) or list the difference with its reason"
    gone = [known for known in KNOWN_DIFFERENCES if known not in differences]
    assert gone == [], "these known differences are gone: remove them from the list"


def base_input(prices: object) -> Decimal:
    value = prices.input_mtok  # type: ignore[attr-defined]
    return getattr(value, "base", value)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_the_simulators_web_search_answer_is_billed_one_search(spans: Spans, client: anthropic.Anthropic, stream: bool) -> None:
    kwargs = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES, "extra_headers": {"x-claude-sim": "web_search"}}
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert [block.type for block in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert message.usage.server_tool_use.web_search_requests == 1
    attributes = spans.one().attributes
    tokens = (message.usage.input_tokens * 3 + message.usage.output_tokens * 15) / 1e6
    assert attributes["claude_otel.cost.server_tools_usd"] == pytest.approx(0.01, abs=EXACT)
    assert attributes["claude_otel.cost.usd"] == pytest.approx(tokens + 0.01, abs=EXACT)
