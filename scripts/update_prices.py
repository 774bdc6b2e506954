"""Regenerates `src/claude_otel/prices.json` from `genai-prices` (Pydantic's maintained price data).

A development tool, not a runtime dependency: claude_otel ships the table as data and reads it once at
`instrument()` time (genai-prices costs ~93 µs per price lookup, too much for every call). Run it when prices
change, review the diff, commit:  pip install genai-prices && python scripts/update_prices.py
"""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

from genai_prices import data

FIELDS = {
    "input_mtok": "input",
    "cache_write_mtok": "cache_write_5m",
    "cache_write_1h_mtok": "cache_write_1h",
    "cache_read_mtok": "cache_read",
    "output_mtok": "output",
}


# Rows genai-prices lacks, from the official pricing page (platform.claude.com/docs/en/about-claude/pricing).
OFFICIAL = "https://platform.claude.com/docs/en/about-claude/pricing"
# "Web search is available on the Claude API for $10 per 1,000 searches" (the pricing page): the table's default.
WEB_SEARCH_PER_1K = 10
# "Claude 4.6 and later models: US-only inference (inference_geo: "us") is priced at 1.1x the standard rate across
# all token pricing categories" (platform.claude.com/docs/en/manage-claude/data-residency). Not in genai-prices.
US_ONLY_INFERENCE = {"us": 1.1}
FOUR_SIX_AND_LATER = re.compile(r"^claude-(?:(?:opus|sonnet|haiku)-(?:4-[6-9]|[5-9](?:-\d+)?)|fable-\d+(?:-\d+)?|mythos-\d+(?:-\d+)?)$")
# Other ids of legacy models, which genai-prices matches by prefix and claude_otel only exactly.
LEGACY_ALIASES = {"claude-2": ["claude-2.0", "claude-2.1"]}
# Models left unpriced on purpose, and why (`claude-otel prices --check` says it).
UNPRICED = {
    "claude-instant-1.2": "retired; its price is not in genai-prices nor on Anthropic's current pricing page",
    "claude-instant-1": "retired; its price is not in genai-prices nor on Anthropic's current pricing page",
}
MANUAL = {
    "claude-mythos-5": {"input": 10, "cache_write_5m": 12.5, "cache_write_1h": 20, "cache_read": 1, "output": 50},
    "claude-mythos-5-1": {"input": 10, "cache_write_5m": 12.5, "cache_write_1h": 20, "cache_read": 0.25, "output": 50},
}


def prefixes(clause: object) -> list[str]:
    """The `starts_with` and `equals` strings of a genai-prices match clause: other names of the model (each matched
    exactly by claude_otel, never as a prefix, so that an unknown model is never priced as another)."""
    found: list[str] = []
    for name in ("starts_with", "equals"):
        value = getattr(clause, name, None)
        if isinstance(value, str):
            found.append(value)
    for child in getattr(clause, "or_", None) or []:
        found.extend(prefixes(child))
    return found


def variant(model: object, when: dict[str, str], today: datetime.datetime) -> dict[str, float | int]:
    """The per-million-token prices of a genai-prices price variant of `model` (such as fast mode), in force today."""
    for candidate in getattr(model, "price_variants", None) or []:
        constraint = candidate.constraint
        start = getattr(constraint, "start_date", None)
        if candidate.when != when or (start is not None and start > today.date()):
            continue
        return {name: number(price) for field, name in FIELDS.items() if isinstance(price := getattr(candidate.prices, field, None), Decimal)}
    return {}


def number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def main() -> None:
    today = datetime.datetime.now(datetime.timezone.utc)
    provider = next(p for p in data.providers if p.id == "anthropic")
    source = f"genai-prices {version('genai-prices')} ({', '.join(provider.pricing_urls or [])})"
    models = {}
    for model in sorted(provider.models, key=lambda m: m.id):
        prices = model.get_prices(today)
        row: dict[str, object] = {}
        tiers: dict[int, dict[str, object]] = {}
        for field, name in FIELDS.items():
            price = getattr(prices, field, None)
            if price is None:
                continue
            if isinstance(price, Decimal):
                row[name] = number(price)
                continue
            row[name] = number(price.base)
            for tier in price.tiers:
                tiers.setdefault(tier.start, {"above_prompt_tokens": tier.start})[name] = number(tier.price)
        if "input" not in row or "output" not in row:
            continue
        if tiers:
            row["tiers"] = [tiers[start] for start in sorted(tiers)]
        searches = getattr(prices, "web_searches_kcount", None)
        if searches is not None and number(searches) != WEB_SEARCH_PER_1K:
            row["web_search_per_1k"] = number(searches)
        fast = variant(model, {"speed": "fast"}, today)
        if fast:
            row["fast"] = fast
        model_id = model.id.removesuffix("-latest")
        if FOUR_SIX_AND_LATER.match(model_id):
            row["inference_geo"] = US_ONLY_INFERENCE
        aliases = sorted({alias for alias in prefixes(model.match) if alias != model_id} | set(LEGACY_ALIASES.get(model_id, [])))
        if aliases:
            row["aliases"] = aliases
        row["source"] = source
        row["effective_date"] = today.date().isoformat()
        models[model_id] = row
    for model_id, row in MANUAL.items():
        models.setdefault(model_id, {**row, "inference_geo": US_ONLY_INFERENCE, "source": OFFICIAL, "effective_date": "2026-11-01"})
    table = {
        "description": "USD per million tokens (web searches: per 1,000). Batch API results cost `batch_discount` "
        "times the token prices. The rules: docs/metrics-and-cost.md.",
        "source": source,
        "effective_date": today.date().isoformat(),
        "batch_discount": 0.5,
        "web_search_per_1k": WEB_SEARCH_PER_1K,
        "unpriced": UNPRICED,
        "models": dict(sorted(models.items())),
    }
    path = Path(__file__).resolve().parent.parent / "src" / "claude_otel" / "prices.json"
    path.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(models)} models written to {path}")


if __name__ == "__main__":
    main()
