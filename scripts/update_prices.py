"""Regenerates `src/claude_otel/prices.json` from `genai-prices` (Pydantic's maintained price data).

A development tool, not a runtime dependency: claude_otel ships the table as data and reads it once at
`instrument()` time (genai-prices costs ~93 µs per price lookup, too much for every call). Run it when prices
change, review the diff, commit:  pip install genai-prices && python scripts/update_prices.py
"""

from __future__ import annotations

import datetime
import json
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
        model_id = model.id.removesuffix("-latest")
        aliases = sorted({alias for alias in prefixes(model.match) if alias != model_id})
        if aliases:
            row["aliases"] = aliases
        row["source"] = source
        row["effective_date"] = today.date().isoformat()
        models[model_id] = row
    for model_id, row in MANUAL.items():
        models.setdefault(model_id, {**row, "source": OFFICIAL, "effective_date": "2026-11-01"})
    table = {
        "description": "USD per million tokens. Batch API results cost `batch_discount` times these.",
        "source": source,
        "effective_date": today.date().isoformat(),
        "batch_discount": 0.5,
        "models": dict(sorted(models.items())),
    }
    path = Path(__file__).resolve().parent.parent / "src" / "claude_otel" / "prices.json"
    path.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(models)} models written to {path}")


if __name__ == "__main__":
    main()
