"""What a call costs: the price table (data, not code) and the arithmetic.

The table ships as `prices.json` (USD per million tokens for input, 5-minute and 1-hour cache writes, cache reads
and output, with prompt-length tiers, each row with its source and effective date; regenerated from genai-prices by
`scripts/update_prices.py`). An application overrides or extends it with a file of the same shape, given as
`instrument(prices=PATH)` or `CLAUDE_OTEL_PRICES=PATH`: its rows replace the bundled ones of the same model. A
malformed file is a `PriceTableError` at `instrument()` time, never an error at call time.

A model id resolves exactly, after removing what only dates or routes it: `claude-sonnet-4-5-20250929`,
`claude-sonnet-4-5@20250929` (Vertex), `us.anthropic.claude-sonnet-4-5-20250929-v1:0` (Bedrock) and
`claude-sonnet-4-5-latest` are `claude-sonnet-4-5`; a row's `aliases` name it too. An id that resolves to no row is
unpriced: never priced as a neighbour.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("claude_otel")

PRICES_ENV = "CLAUDE_OTEL_PRICES"
BUNDLED = Path(__file__).with_name("prices.json")
_KINDS = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")
# The official multipliers of the base input price, for a row of an override file that leaves a cache price out.
_CACHE_MULTIPLIERS = {"cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}
_ROUTING = re.compile(r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:anthropic\.)?(.*?)(?:-v\d+(?::\d+)?)?$")
_DATED = re.compile(r"(?:[-@]\d{8}|-latest)$")


class PriceTableError(ValueError):
    """A price file that cannot be used, with what is wrong and where."""


PriceTableError.__module__ = "claude_otel"  # Its public name, in tracebacks.


@dataclass(frozen=True)
class Rates:
    """USD per token of each kind."""

    input: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    output: float


@dataclass(frozen=True)
class Price:
    """A model's row: its base rates and the tiers that replace them above a prompt length."""

    model: str
    rates: Rates
    tiers: tuple[tuple[int, Rates], ...]
    source: str
    effective_date: str

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates for a request whose prompt (input + cache reads + cache writes) has `prompt_tokens` tokens."""
        rates = self.rates
        for above, tier in self.tiers:
            if prompt_tokens > above:
                rates = tier
        return rates


class Cost(NamedTuple):
    """A call's cost in USD, and its parts. (A tuple: one is made per call.)"""

    input: float
    cache_write: float
    cache_read: float
    output: float
    total: float
    cache_savings: float
    """Not part of the cost: what the cache reads would have cost at the input rate, less their cost."""


_MAX_MODELS = 1000
"""Distinct model names whose resolution is cached, and whose missing price is warned about, at most."""


class PriceTable:
    """The prices in use: the bundled table, with an override file's rows on top."""

    def __init__(self, rows: dict[str, Price], aliases: dict[str, str], batch_discount: float, sources: list[str]) -> None:
        self.rows = rows
        self._aliases = aliases
        self.batch_discount = batch_discount
        self.sources = sources
        self._resolved: dict[str, Price | None] = {}
        self._warned: set[str] = set()

    @classmethod
    def load(cls, override: str | os.PathLike[str] | None = None, *, environment: bool = True) -> PriceTable:
        """The bundled table, with the rows of `override` (or of `$CLAUDE_OTEL_PRICES`, unless `environment` is
        false). Raises `PriceTableError`."""
        rows: dict[str, Price] = {}
        aliases: dict[str, str] = {}
        bundled = _read(BUNDLED)
        batch_discount = _parse(bundled, str(BUNDLED), rows, aliases)
        sources = [str(BUNDLED)]
        path = override if override is not None else (os.environ.get(PRICES_ENV) or None if environment else None)
        if path is not None:
            extra = _read(Path(path))
            batch_discount = _parse(extra, str(path), rows, aliases, default_discount=batch_discount)
            sources.append(str(path))
        return cls(rows, aliases, batch_discount, sources)

    def price(self, model: str) -> Price | None:
        """The row of `model`, or `None` (with one warning per model) when the table has none. Never raises."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        name = normalize(model)
        key = name if name in self.rows else self._aliases.get(name) or self._aliases.get(model)
        price = self.rows.get(key) if key else None
        if price is None and model not in self._warned and len(self._warned) < _MAX_MODELS:
            self._warned.add(model)
            log.warning(
                "claude_otel: no price for model %r: its tokens are counted, its cost is left unset and marked "
                "unpriced. Add it with a price file (instrument(prices=...) or %s).",
                model,
                PRICES_ENV,
            )
        if len(self._resolved) < _MAX_MODELS:  # Model names come from responses too: never an unbounded cache.
            self._resolved[model] = price
        return price

    def cost(self, price: Price, usage: dict[str, Any], output_tokens: int, batch: bool) -> Cost:
        """The cost of a call's usage (the API's fields: `input_tokens` excludes cache reads and writes)."""
        input_tokens = _tokens(usage.get("input_tokens"))
        cache_read = _tokens(usage.get("cache_read_input_tokens"))
        cache_write = _tokens(usage.get("cache_creation_input_tokens"))
        creation = usage.get("cache_creation")
        write_1h = _tokens(_field(creation, "ephemeral_1h_input_tokens"))
        write_5m = _tokens(_field(creation, "ephemeral_5m_input_tokens")) if creation is not None else cache_write - write_1h
        rates = price.rates_for(input_tokens + cache_read + cache_write)
        factor = self.batch_discount if batch else 1.0
        parts = (
            input_tokens * rates.input * factor,
            (write_5m * rates.cache_write_5m + write_1h * rates.cache_write_1h) * factor,
            cache_read * rates.cache_read * factor,
            output_tokens * rates.output * factor,
        )
        return Cost(*parts, sum(parts), cache_read * (rates.input - rates.cache_read) * factor)


def normalize(model: str) -> str:
    """`model` without its routing (Bedrock region and vendor, version suffix) and its date or `-latest`."""
    match = _ROUTING.match(model)
    name = match.group(1) if match else model
    return _DATED.sub("", name)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PriceTableError(f"cannot read the price file {path}: {err}") from err
    except ValueError as err:
        raise PriceTableError(f"the price file {path} is not valid JSON: {err}") from err


def _parse(
    table: Any, where: str, rows: dict[str, Price], aliases: dict[str, str], default_discount: float = 0.5
) -> float:
    if not isinstance(table, dict) or not isinstance(table.get("models"), dict):
        raise PriceTableError(f'{where}: expected an object with "models": {{"model-id": {{"input": ..., ...}}}}')
    discount = table.get("batch_discount", default_discount)
    if not _is_number(discount) or not 0 < discount <= 1:
        raise PriceTableError(f"{where}: batch_discount must be a number in (0, 1], not {discount!r}")
    default_source = table.get("source", where)
    for model, row in table["models"].items():
        if not isinstance(row, dict):
            raise PriceTableError(f"{where}: models.{model} must be an object of prices")
        rates = _rates(row, f"{where}: models.{model}")
        tiers = []
        for number, tier in enumerate(row.get("tiers") or []):
            context = f"{where}: models.{model}.tiers[{number}]"
            above = tier.get("above_prompt_tokens") if isinstance(tier, dict) else None
            if not isinstance(above, int) or above < 0:
                raise PriceTableError(f"{context}: above_prompt_tokens must be a whole number of tokens")
            tiers.append((above, _rates({**_base(row), **tier}, context)))
        rows[model] = Price(
            model,
            rates,
            tuple(sorted(tiers)),
            str(row.get("source", default_source)),
            str(row.get("effective_date", table.get("effective_date", "unknown"))),
        )
        for alias in row.get("aliases") or []:
            aliases[alias] = model
    return float(discount)


def _base(row: dict[str, Any]) -> dict[str, Any]:
    return {kind: row[kind] for kind in _KINDS if kind in row}


def _rates(row: dict[str, Any], where: str) -> Rates:
    for kind in ("input", "output"):
        if not _is_number(row.get(kind)) or row[kind] < 0:
            raise PriceTableError(f"{where}: {kind} must be a price in USD per million tokens, not {row.get(kind)!r}")
    values = {}
    for kind in _KINDS:
        value = row.get(kind, row["input"] * _CACHE_MULTIPLIERS.get(kind, 1.0))
        if not _is_number(value) or value < 0:
            raise PriceTableError(f"{where}: {kind} must be a price in USD per million tokens, not {value!r}")
        values[kind] = value / 1_000_000
    return Rates(**values)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tokens(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _field(value: object, key: str) -> object:
    if isinstance(value, dict):
        return value.get(key)
    return getattr(value, "__dict__", {}).get(key)
