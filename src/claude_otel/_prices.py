"""What a call costs: the price table (data, not code) and the arithmetic of every billed line.

The table ships as `prices.json` (regenerated from genai-prices by `scripts/update_prices.py`). Per model, in USD:
per million tokens `input`, `cache_write_5m`, `cache_write_1h`, `cache_read`, `output`, and prompt-length `tiers`
that replace them above a prompt length; `fast`, the rates of fast mode (`usage.speed == "fast"`); `priority`, the
rates of the Priority Tier where one is known (Anthropic publishes none: contracts set them); `inference_geo`, a
multiplier per `usage.inference_geo` value (US-only inference, 1.1 times on Claude 4.6 and later); `web_search_per_1k`,
USD per 1,000 web searches (else the table's). Each row has its source and effective date. The rules, with their
sources, are in docs/metrics-and-cost.md.

An application overrides or extends it with a file of the same shape, given as `instrument(prices=PATH)` or
`CLAUDE_OTEL_PRICES=PATH`. Its row of a bundled model is merged onto the bundled row (a row that sets only
`input` and `output` keeps the bundled tiers and fast rates), unless it says `"replace": true`. The file is a
contract: NaN, infinities, negative prices and unknown fields (a misspelled `cahce_read`) are a `PriceTableError`
naming the file, the model and the field, at `instrument()` time, never an error at call time.

A model id resolves case-insensitively, exactly, after removing what only dates or routes it:
`claude-sonnet-4-5-20250929`, `claude-sonnet-4-5@20250929` and `claude-3-5-sonnet-v2@20241022` (Vertex),
`us.anthropic.claude-sonnet-4-5-20250929-v1:0` and `us-gov.anthropic...` (Bedrock), `claude-opus-5-2026-11-01`
and `claude-sonnet-4-5-latest`; a row's `aliases` name it too. An id that resolves to no row is unpriced, never
priced as a neighbour; the table's `unpriced` entries say why a model is left out on purpose.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from ._extract import fields_of

log = logging.getLogger("claude_otel")

PRICES_ENV = "CLAUDE_OTEL_PRICES"
BUNDLED = Path(__file__).with_name("prices.json")
_KINDS = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")
# The official multipliers of the base input price, for a row of an override file that leaves a cache price out.
_CACHE_MULTIPLIERS = {"cache_write_5m": 1.25, "cache_write_1h": 2.0, "cache_read": 0.1}
_TABLE_FIELDS = frozenset({"description", "source", "effective_date", "batch_discount", "web_search_per_1k", "models", "unpriced"})
_ROW_FIELDS = frozenset(
    {*_KINDS, "tiers", "fast", "priority", "inference_geo", "web_search_per_1k", "aliases", "source", "effective_date", "replace"}
)
_TIER_FIELDS = frozenset({*_KINDS, "above_prompt_tokens"})
_ROUTING = re.compile(r"^(?:(?:us-gov|us|eu|apac|global|jp|au)\.)?(?:anthropic\.)?(.*?)(?:-v\d+(?::\d+)?)?$")
_DATED = re.compile(r"(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-latest)$")
_COST_DIGITS = 12
"""Costs on spans and in the request log are rounded to 1e-12 USD: no float noise where people read them."""


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
    """A model's row: its base rates, the tiers that replace them above a prompt length, and its other lines."""

    model: str
    rates: Rates
    tiers: tuple[tuple[int, Rates], ...]
    source: str
    effective_date: str
    fast: Rates | None = None
    priority: Rates | None = None
    inference_geo: Mapping[str, float] | None = None
    web_search: float = 0.0
    """USD per web search."""

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates for a request whose prompt (input + cache reads + cache writes) has `prompt_tokens` tokens."""
        rates = self.rates
        for above, tier in self.tiers:
            if prompt_tokens > above:
                rates = tier
        return rates


class Cost(NamedTuple):
    """A call's cost in USD, and its parts. (A tuple: one is made per call.)

    The four token parts are at the standard rates (batch discount applied); `surcharge` is what fast mode and
    US-only inference add on top of them; `server_tools` is the web searches' fee."""

    input: float
    cache_write: float
    cache_read: float
    output: float
    server_tools: float
    surcharge: float
    total: float
    cache_savings: float
    """Not part of the cost: what the cache reads would have cost at the input rate, less their cost."""


class Unpriced(NamedTuple):
    """Why a priced model's call still has no cost: a line of its usage that the table has no price for."""

    reason: str


_MAX_MODELS = 1000
"""Distinct model names whose resolution is cached, and whose missing price is warned about, at most."""


class PriceTable:
    """The prices in use: the bundled table, with an override file's rows on top."""

    def __init__(
        self,
        rows: dict[str, Price],
        aliases: dict[str, str],
        batch_discount: float,
        sources: list[str],
        unpriced: dict[str, str] | None = None,
        web_search_per_1k: float = 10.0,
    ) -> None:
        self.rows = rows
        self._aliases = aliases
        self.batch_discount = batch_discount
        self.sources = sources
        self.unpriced = unpriced or {}
        self.web_search_per_1k = web_search_per_1k
        """USD per 1,000 web searches, for a row that does not set its own."""
        self._resolved: dict[str, Price | None] = {}
        self._warned: set[str] = set()

    @classmethod
    def load(cls, override: str | os.PathLike[str] | None = None, *, environment: bool = True) -> PriceTable:
        """The bundled table, with the rows of `override` (or of `$CLAUDE_OTEL_PRICES`, unless `environment` is
        false) merged on top. Raises `PriceTableError`."""
        table = _Builder()
        table.add(_read(BUNDLED), str(BUNDLED))
        path = override if override is not None else (os.environ.get(PRICES_ENV) or None if environment else None)
        if path is not None:
            table.add(_read(Path(path)), str(path))
        return table.build()

    def resolve(self, model: str) -> tuple[str | None, str]:
        """The row `model` resolves to (or `None`) and how, in words: for `claude-otel prices --check`."""
        for candidate, how in _candidates(model):
            if candidate in self.rows:
                return candidate, how
            if candidate in self._aliases:
                return self._aliases[candidate], f"{how}, an alias of {self._aliases[candidate]}"
        name = normalize(model)
        reason = self.unpriced.get(name) or self.unpriced.get(model.lower())
        if reason:
            return None, f"{name!r} is unpriced on purpose: {reason}"
        return None, f"no row or alias is {name!r} (the id without its routing and date): unpriced, never guessed"

    def price(self, model: str) -> Price | None:
        """The row of `model`, or `None` (with one warning per model) when the table has none. Never raises."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        key, how = self.resolve(model)
        price = self.rows.get(key) if key else None
        if price is None:
            self._warn(model, f"no price for model {model!r} ({how}): its tokens are counted, its cost is left unset")
        if len(self._resolved) < _MAX_MODELS:  # Model names come from responses too: never an unbounded cache.
            self._resolved[model] = price
        return price

    def _warn(self, key: str, what: str) -> None:
        if key not in self._warned and len(self._warned) < _MAX_MODELS:
            self._warned.add(key)
            log.warning(
                "claude_otel: %s and marked unpriced. Add it with a price file (instrument(prices=...) or %s).",
                what,
                PRICES_ENV,
            )

    def cost(self, price: Price, usage: Mapping[str, Any], output_tokens: int, batch: bool) -> Cost | Unpriced:
        """The cost of a call's usage (the API's fields: `input_tokens` excludes cache reads and writes), or why it
        has none. Never raises on malformed usage: what is not a count counts 0.

        Without `usage.iterations` the top-level counts are priced at `price`. With them, each entry is priced at its
        own model's rates (`compaction` at the request's model), and of the top-level counts only what the `message`
        and `fallback_message` entries do not already hold: no token is counted twice, and none is dropped."""
        get = usage.get
        speed_fast = get("speed") == "fast"
        if speed_fast and price.fast is None:
            self._warn(f"{price.model}/fast", f"no fast-mode price for model {price.model!r}: a fast call's cost is left unset")
            return Unpriced("fast")
        if get("service_tier") == "priority" and price.priority is not None:
            price = _at_priority(price)
        factor = self.batch_discount if batch else 1.0
        top = _tokens(usage, output_tokens)
        geo = get("inference_geo")
        multiplier = price.inference_geo.get(geo, 1.0) if price.inference_geo and isinstance(geo, str) else 1.0
        server_tool_use = get("server_tool_use")
        searches = _count(fields_of(server_tool_use).get("web_search_requests")) if server_tool_use is not None else 0
        entries = get("iterations")
        if not speed_fast and not (isinstance(entries, list) and entries):  # The usual call: one model, one rate.
            rates = price.rates_for(top[0] + top[1] + top[2] + top[3])
            parts = _priced(rates, top, factor)
            tokens = parts[0] + parts[1] + parts[2] + parts[3]
            surcharge = tokens * (multiplier - 1.0) if multiplier != 1.0 else 0.0
            server_tools = searches * price.web_search
            savings = top[3] * (rates.input - rates.cache_read) * factor
            return Cost(*parts, server_tools, surcharge, tokens + surcharge + server_tools, savings)
        total = _Sum(factor)
        if isinstance(entries, list):
            covered = (0, 0, 0, 0, 0)
            for entry in entries:
                fields = fields_of(entry)
                kind = fields.get("type")
                tokens_of = _tokens(fields, _count(fields.get("output_tokens")))
                model = fields.get("model")
                row = price
                if isinstance(model, str) and kind != "compaction":
                    other = self.price(model)
                    if other is None:
                        return Unpriced("iteration model")
                    if other.model != price.model:
                        row = other
                if kind in ("message", "fallback_message"):
                    covered = _plus(covered, tokens_of)
                total.add(row, tokens_of, speed_fast and row is price)
            top = _less(top, covered)
        total.add(price, top, speed_fast)
        return total.cost(multiplier, searches * price.web_search)


def round_cost(value: float) -> float:
    """`value` rounded to 1e-12 USD, as spans and the request log show costs."""
    return round(value, _COST_DIGITS)


def normalize(model: str) -> str:
    """`model`, lower case, without its routing (Bedrock region and vendor, version suffix) and its date or
    `-latest`."""
    name = _DATED.sub("", model.strip().lower())  # Vertex: claude-3-5-sonnet-v2@20241022.
    match = _ROUTING.match(name)
    return _DATED.sub("", match.group(1) if match else name)  # Bedrock: ...-20250929-v1:0.


def _candidates(model: str) -> list[tuple[str, str]]:
    """The names to look `model` up by, most exact first, each with how it was derived."""
    lowered = model.strip().lower()
    found = [(lowered, f"{model!r} as given" if lowered == model else f"{model!r} in lower case")]
    undated = _DATED.sub("", lowered)
    if undated != lowered:
        found.append((undated, f"{model!r} without its date {lowered[len(undated):]!r}"))
    name = normalize(model)
    if name not in (lowered, undated):
        found.append((name, f"{model!r} without its routing and date"))
    return found


class _Sum:
    """The running cost of a call's token counts: standard-rate parts, fast mode's extra, savings."""

    __slots__ = ("cache_read", "cache_write", "factor", "fast_extra", "input", "output", "savings")

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.input = self.cache_write = self.cache_read = self.output = self.fast_extra = self.savings = 0.0

    def add(self, price: Price, tokens: Counts, fast: bool) -> None:
        input_tokens, write_5m, write_1h, read, _ = tokens
        rates = price.rates_for(input_tokens + write_5m + write_1h + read)
        factor = self.factor
        parts = _priced(rates, tokens, factor)
        self.input += parts[0]
        self.cache_write += parts[1]
        self.cache_read += parts[2]
        self.output += parts[3]
        self.savings += read * (rates.input - rates.cache_read) * factor
        if fast and price.fast is not None:  # Fast mode is one price across the whole context window.
            self.fast_extra += sum(_priced(price.fast, tokens, factor)) - sum(parts)

    def cost(self, geo_multiplier: float, server_tools: float) -> Cost:
        tokens = self.input + self.cache_write + self.cache_read + self.output
        surcharge = self.fast_extra + (tokens + self.fast_extra) * (geo_multiplier - 1.0)
        return Cost(self.input, self.cache_write, self.cache_read, self.output, server_tools, surcharge,
                    tokens + surcharge + server_tools, self.savings)  # fmt: skip


Counts = tuple[int, int, int, int, int]
"""Tokens: input, 5-minute cache writes, 1-hour cache writes, cache reads, output."""


def _plus(a: Counts, b: Counts) -> Counts:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]


def _less(a: Counts, b: Counts) -> Counts:
    """`a` less `b`, kind by kind, never below 0."""
    return max(0, a[0] - b[0]), max(0, a[1] - b[1]), max(0, a[2] - b[2]), max(0, a[3] - b[3]), max(0, a[4] - b[4])


def _priced(rates: Rates, tokens: Counts, factor: float) -> tuple[float, float, float, float]:
    input_tokens, write_5m, write_1h, read, output = tokens
    return (
        input_tokens * rates.input * factor,
        (write_5m * rates.cache_write_5m + write_1h * rates.cache_write_1h) * factor,
        read * rates.cache_read * factor,
        output * rates.output * factor,
    )


def _tokens(usage: Mapping[str, Any], output_tokens: int) -> Counts:
    """(input, 5-minute cache writes, 1-hour cache writes, cache reads, output) of a usage. Cache writes that the
    `cache_creation` breakdown leaves out are 5-minute writes, the API's default."""
    get = usage.get
    writes = _count(get("cache_creation_input_tokens"))
    creation = get("cache_creation")
    if creation is None:
        write_5m, write_1h = writes, 0
    else:
        breakdown = fields_of(creation)
        write_1h = _count(breakdown.get("ephemeral_1h_input_tokens"))
        write_5m = max(_count(breakdown.get("ephemeral_5m_input_tokens")), writes - write_1h)
    return _count(get("input_tokens")), write_5m, write_1h, _count(get("cache_read_input_tokens")), _count(output_tokens)


def _count(value: object) -> int:
    """`value` if it is a count of tokens or requests (an int, not a bool, above 0), else 0."""
    return value if type(value) is int and value > 0 else 0


def _at_priority(price: Price) -> Price:
    """`price` at its Priority Tier rates, which are one price across the context window."""
    return replace(price, rates=price.priority or price.rates, tiers=())


# --- reading price files ---------------------------------------------------------------------------------------------


class _Builder:
    """Price files, read in order, each merged onto the ones before."""

    def __init__(self) -> None:
        self.raw: dict[str, dict[str, Any]] = {}
        self.batch_discount = 0.5
        self.web_search_per_1k = 10.0
        self.unpriced: dict[str, str] = {}
        self.sources: list[str] = []

    def add(self, table: Any, where: str) -> None:
        if not isinstance(table, dict) or not isinstance(table.get("models"), dict):
            raise PriceTableError(f'{where}: expected an object with "models": {{"model-id": {{"input": ..., ...}}}}')
        _known(table, _TABLE_FIELDS, where)
        discount = table.get("batch_discount", self.batch_discount)
        if not _is_price(discount) or not 0 < discount <= 1:
            raise PriceTableError(f"{where}: batch_discount must be a number in (0, 1], not {discount!r}")
        self.batch_discount = float(discount)
        self.web_search_per_1k = _price_of(table, "web_search_per_1k", where, self.web_search_per_1k)
        unpriced = table.get("unpriced", {})
        if not isinstance(unpriced, dict) or not all(isinstance(v, str) for v in unpriced.values()):
            raise PriceTableError(f'{where}: unpriced must be an object of "model-id": "why"')
        self.unpriced.update({key.lower(): value for key, value in unpriced.items()})
        source = str(table.get("source", where))
        for model, row in table["models"].items():
            context = f"{where}: models.{model}"
            if not isinstance(row, dict):
                raise PriceTableError(f"{context} must be an object of prices")
            _known(row, _ROW_FIELDS, context)
            if not isinstance(row.get("replace", False), bool):
                raise PriceTableError(f"{context}.replace must be true or false")
            own = {"source": source, "effective_date": table.get("effective_date", "unknown"), **row}
            merged = own if row.get("replace") or model not in self.raw else {**self.raw[model], **own}
            merged.pop("replace", None)
            _parse_row(model, merged, context, self.web_search_per_1k)  # Fails here, naming this file.
            self.raw[model] = merged
        self.sources.append(where)

    def build(self) -> PriceTable:
        rows: dict[str, Price] = {}
        aliases: dict[str, str] = {}
        for model, row in self.raw.items():
            rows[model] = _parse_row(model, row, f"models.{model}", self.web_search_per_1k)
            for alias in row.get("aliases") or []:
                aliases[str(alias).lower()] = model
        return PriceTable(rows, aliases, self.batch_discount, self.sources, self.unpriced, self.web_search_per_1k)


def _parse_row(model: str, row: dict[str, Any], where: str, web_search_per_1k: float) -> Price:
    rates = _rates(row, where)
    tiers = []
    for number, tier in enumerate(row.get("tiers") or []):
        context = f"{where}.tiers[{number}]"
        if not isinstance(tier, dict):
            raise PriceTableError(f"{context} must be an object")
        _known(tier, _TIER_FIELDS, context)
        above = tier.get("above_prompt_tokens")
        if not isinstance(above, int) or isinstance(above, bool) or above < 0:
            raise PriceTableError(f"{context}: above_prompt_tokens must be a whole number of tokens")
        tiers.append((above, _rates({**_base(row), **tier}, context)))
    geo = row.get("inference_geo")
    if geo is not None and (not isinstance(geo, dict) or not all(_is_price(value) for value in geo.values())):
        raise PriceTableError(f'{where}.inference_geo must be an object of "geo": multiplier (finite, not negative)')
    return Price(
        model,
        rates,
        tuple(sorted(tiers)),
        str(row.get("source", "unknown")),
        str(row.get("effective_date", "unknown")),
        fast=_variant(row, "fast", where),
        priority=_variant(row, "priority", where),
        inference_geo={str(key): float(value) for key, value in geo.items()} if geo else None,
        web_search=_price_of(row, "web_search_per_1k", where, web_search_per_1k) / 1000,
    )


def _variant(row: dict[str, Any], name: str, where: str) -> Rates | None:
    """The rates of fast mode or the Priority Tier; a cache price left out keeps the row's own ratio to input
    (the prompt caching multipliers apply on top of fast mode)."""
    variant = row.get(name)
    if variant is None:
        return None
    context = f"{where}.{name}"
    if not isinstance(variant, dict):
        raise PriceTableError(f"{context} must be an object of prices")
    _known(variant, frozenset(_KINDS), context)
    base = _rates(row, where)
    filled = dict(variant)
    if _is_price(variant.get("input")):
        for kind in ("cache_write_5m", "cache_write_1h", "cache_read"):
            ratio = getattr(base, kind) / base.input if base.input else _CACHE_MULTIPLIERS[kind]
            filled.setdefault(kind, variant["input"] * ratio)
    return _rates(filled, context)


def _base(row: dict[str, Any]) -> dict[str, Any]:
    return {kind: row[kind] for kind in _KINDS if kind in row}


def _rates(row: dict[str, Any], where: str) -> Rates:
    for kind in ("input", "output"):
        if not _is_price(row.get(kind)):
            raise PriceTableError(f"{where}: {kind} must be a price in USD per million tokens, not {row.get(kind)!r}")
    values = {}
    for kind in _KINDS:
        value = row.get(kind, row["input"] * _CACHE_MULTIPLIERS.get(kind, 1.0))
        if not _is_price(value):
            raise PriceTableError(f"{where}: {kind} must be a price in USD per million tokens, not {value!r}")
        values[kind] = value / 1_000_000
    return Rates(**values)


def _price_of(row: dict[str, Any], name: str, where: str, default: float) -> float:
    value = row.get(name, default)
    if not _is_price(value):
        raise PriceTableError(f"{where}: {name} must be a price in USD, not {value!r}")
    return float(value)


def _known(row: dict[str, Any], fields: frozenset[str], where: str) -> None:
    unknown = sorted(set(row) - fields)
    if unknown:
        raise PriceTableError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(fields))})")


def _is_price(value: object) -> bool:
    """A finite number, not negative (never a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PriceTableError(f"cannot read the price file {path}: {err}") from err
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except PriceTableError as err:
        raise PriceTableError(f"the price file {path}: {err}") from None
    except ValueError as err:
        raise PriceTableError(f"the price file {path} is not valid JSON: {err}") from err


def _refuse_constant(name: str) -> Any:
    raise PriceTableError(f"{name} is not a price")
