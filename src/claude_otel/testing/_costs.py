"""What the simulator billed, and Anthropic's reports of it: `GET /v1/organizations/analytics/cost_report` and
`.../usage_report`.

Every answer the simulator sends is billed as it was sent: the usage of a JSON answer, the usage a stream had
delivered when it ended (its `message_start`, then its `message_delta`'s cumulative counts), each Message Batch
result at the batch tier when the results are first read. The report prices those usages at list prices with the
bundled price table (never a price file: the simulator is the API, whose prices an application's table may miss),
in the response shape of the SDK's `client.beta.organization.analytics.cost_report.list(...)`: time buckets of `1d`,
`1h` or `1m` aligned to UTC, each with one row per group of `group_by[]` (`model`, `cost_type`; the other dimensions
are null), `amount` and `list_amount` in fractional cents as strings. `cost_type` is `tokens` (fast mode and US-only
premiums included, as the API prices them) or `web_search`. `discount` (0 to 1) makes `amount` that much below
`list_amount`, as a negotiated discount would.

The usage report counts the same answers' tokens (`uncached_input_tokens`, `cache_read_input_tokens`,
`cache_creation`, `output_tokens`, `server_tool_use.web_search_requests`) and requests, grouped by `model` (the id
without its routing and date) or not at all. The API's rules are kept for both: an admin key (`sk-ant-admin...`), a range of at most 31 days that starts no earlier than
2026-01-01, `limit` buckets a page (default 7, 24, 60; at most 31, 168, 256), and the cursor in `page` / `next_page`.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .._prices import Cost, PriceTable

PATH = "/v1/organizations/analytics/cost_report"
USAGE_PATH = "/v1/organizations/analytics/usage_report"
WIDTHS = {"1d": (86400, 7, 31), "1h": (3600, 24, 168), "1m": (60, 60, 256)}
"""bucket_width: (seconds, default limit, largest limit)."""
_EARLIEST = datetime(2026, 1, 1, tzinfo=timezone.utc)
_DIMENSIONS = ("claude_tag_category", "claude_tag_user_id", "context_window", "cost_type", "inference_geo", "model",
               "product", "rbac_group_id", "slack_channel_id", "speed", "token_type")  # fmt: skip
_USAGE_DIMENSIONS = ("claude_tag_category", "claude_tag_user_id", "context_window", "inference_geo", "model", "product",
                     "rbac_group_id", "slack_channel_id", "speed")  # fmt: skip


@dataclass(frozen=True)
class Billed:
    """One answer's bill: when, for which model, its usage as sent, and whether at the batch tier."""

    at: float
    model: str
    usage: dict[str, Any]
    batch: bool


@dataclass
class Ledger:
    """What the simulator billed. Thread-safe."""

    discount: float = 0.0
    entries: list[Billed] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bill(self, model: str, usage: Any, batch: bool = False, at: float | None = None) -> None:
        """Bills an answer of `model` with `usage` (the API's usage object; anything else bills nothing)."""
        if isinstance(usage, dict) and usage:
            with self._lock:
                self.entries.append(Billed(time.time() if at is None else at, model, dict(usage), batch))

    def report(self, query: dict[str, list[str]], now: float) -> tuple[int, dict[str, Any]]:
        """The status and body of a cost report request with the query `query` (each name's values)."""
        table = PriceTable.load(environment=False)
        return self._pages(query, now, _DIMENSIONS, lambda entries, group_by: _cost_rows(entries, group_by, self.discount, table))

    def usage(self, query: dict[str, list[str]], now: float) -> tuple[int, dict[str, Any]]:
        """The status and body of a usage report request (`/v1/organizations/analytics/usage_report`): the tokens
        billed, as the API counts them (`uncached_input_tokens`, cache reads and writes, output, web searches)."""
        return self._pages(query, now, _USAGE_DIMENSIONS, _usage_rows)

    def _pages(self, query: dict[str, list[str]], now: float, dimensions: tuple[str, ...], rows: Any) -> tuple[int, dict[str, Any]]:
        """A page of time buckets, each with `rows(entries, group_by)`, under the rules both reports share."""
        try:
            start, end, width, limit, group_by, page = _parse(query, now, dimensions)
        except ValueError as err:
            return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(err)}}
        bounds: list[tuple[datetime, datetime]] = []
        edge = page or start
        while edge < end and len(bounds) <= limit:
            aligned = edge - timedelta(seconds=edge.timestamp() % width)
            upper = min(end, aligned + timedelta(seconds=width))
            bounds.append((edge, upper))
            edge = upper
        more = len(bounds) > limit
        bounds = bounds[:limit]
        with self._lock:
            entries = list(self.entries)
        buckets = [{"starting_at": _rfc3339(low), "ending_at": _rfc3339(high),
                    "results": rows([e for e in entries if low.timestamp() <= e.at < high.timestamp()], group_by)}
                   for low, high in bounds]  # fmt: skip
        next_page = base64.urlsafe_b64encode(bounds[-1][1].isoformat().encode()).decode() if more else None
        refreshed = datetime.fromtimestamp(now, timezone.utc)
        return 200, {"data": buckets, "has_more": more, "next_page": next_page, "data_refreshed_at": _rfc3339(refreshed)}


def _parse(
    query: dict[str, list[str]], now: float, dimensions: tuple[str, ...]
) -> tuple[datetime, datetime, int, int, list[str], datetime | None]:
    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    text = one("starting_at")
    if text is None:
        raise ValueError("starting_at: Field required")
    start = _time(text, "starting_at")
    if start < _EARLIEST:
        raise ValueError("starting_at: must be no earlier than 2026-01-01T00:00:00Z")
    latest = datetime.fromtimestamp(now, timezone.utc)
    end_text = one("ending_at")
    end = _time(end_text, "ending_at") if end_text else min(latest, start + timedelta(days=31))
    if end <= start:
        raise ValueError("ending_at: must be after starting_at")
    if end - start > timedelta(days=31):
        raise ValueError("the range from starting_at to ending_at may span at most 31 days")
    width_name = one("bucket_width") or "1d"
    if width_name not in WIDTHS:
        raise ValueError(f"bucket_width: must be one of {', '.join(WIDTHS)}")
    width, default, largest = WIDTHS[width_name]
    limit = int(one("limit") or default)
    if not 1 <= limit <= largest:
        raise ValueError(f"limit: must be between 1 and {largest} for bucket_width {width_name}")
    group_by = query.get("group_by[]", [])
    unknown = [name for name in group_by if name not in dimensions]
    if unknown:
        raise ValueError(f"group_by: unknown dimension(s) {unknown}")
    cursor = one("page")
    page = _time(base64.urlsafe_b64decode(cursor.encode()).decode(), "page") if cursor else None
    return start, end, width, limit, group_by, page


def _time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: not an RFC 3339 time: {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"{name}: must have a time zone (RFC 3339)")
    return value.astimezone(timezone.utc)


def _cost_rows(entries: list[Billed], group_by: list[str], discount: float, table: PriceTable) -> list[dict[str, Any]]:
    sums: dict[tuple[str | None, str | None], list[float]] = defaultdict(lambda: [0.0, 0])  # USD, requests
    for entry in entries:
        price = table.price(entry.model)
        cost = table.cost(price, entry.usage, int(entry.usage.get("output_tokens") or 0), entry.batch) if price else None
        if not isinstance(cost, Cost):
            continue  # A model or a line without a list price: the simulator does not know what the API would bill.
        model: str | None = table.resolve(entry.model)[0] if "model" in group_by else None
        if "cost_type" in group_by:
            for line, usd in (("tokens", cost.total - cost.server_tools), ("web_search", cost.server_tools)):
                if usd:
                    sums[(model, line)][0] += usd
        else:
            sums[(model, None)][0] += cost.total
            sums[(model, None)][1] += 1
    results = []
    for (model, cost_type), (usd, requests) in sorted(sums.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))):
        result: dict[str, Any] = dict.fromkeys(_DIMENSIONS)
        result.update({"model": model, "cost_type": cost_type, "currency": "USD", "list_amount": _cents(usd * 100),
                       "amount": _cents(usd * 100 * (1 - discount)), "requests": None if cost_type else int(requests)})  # fmt: skip
        results.append(result)
    return results


def _usage_rows(entries: list[Billed], group_by: list[str]) -> list[dict[str, Any]]:
    from .._prices import normalize

    sums: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in entries:
        usage = entry.usage
        counts = sums[normalize(entry.model) if "model" in group_by else None]
        for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens"):
            counts[name] += int(usage.get(name) or 0)
        creation = usage.get("cache_creation") or {}
        counts["5m"] += int(creation.get("ephemeral_5m_input_tokens") or 0)
        counts["1h"] += int(creation.get("ephemeral_1h_input_tokens") or 0)
        counts["web_search_requests"] += int((usage.get("server_tool_use") or {}).get("web_search_requests") or 0)
        counts["requests"] += 1
    results = []
    for model, counts in sorted(sums.items(), key=lambda item: str(item[0])):
        result: dict[str, Any] = dict.fromkeys(_USAGE_DIMENSIONS)
        result.update({"model": model, "uncached_input_tokens": counts["input_tokens"], "output_tokens": counts["output_tokens"],
                       "cache_read_input_tokens": counts["cache_read_input_tokens"], "requests": counts["requests"],
                       "cache_creation": {"ephemeral_5m_input_tokens": counts["5m"], "ephemeral_1h_input_tokens": counts["1h"]},
                       "server_tool_use": {"web_search_requests": counts["web_search_requests"]}})  # fmt: skip
        results.append(result)
    return results


def _cents(value: float) -> str:
    """Fractional cents as the API writes them: a decimal string."""
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
