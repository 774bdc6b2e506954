"""What the simulator billed, and Anthropic's cost report of it: `GET /v1/organizations/analytics/cost_report`.

Every answer the simulator sends is billed as it was sent: the usage of a JSON answer, the usage a stream had
delivered when it ended (its `message_start`, then its `message_delta`'s cumulative counts), each Message Batch
result at the batch tier when the results are first read. The report prices those usages at list prices with the
bundled price table (never a price file: the simulator is the API, whose prices an application's table may miss),
in the response shape of the SDK's `client.beta.organization.analytics.cost_report.list(...)`: time buckets of `1d`,
`1h` or `1m` aligned to UTC, each with one row per group of `group_by[]` (`model`, `cost_type`; the other dimensions
are null), `amount` and `list_amount` in fractional cents as strings. `cost_type` is `tokens` (fast mode and US-only
premiums included, as the API prices them) or `web_search`. `discount` (0 to 1) makes `amount` that much below
`list_amount`, as a negotiated discount would.

The API's rules are kept: an admin key (`sk-ant-admin...`), a range of at most 31 days that starts no earlier than
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
WIDTHS = {"1d": (86400, 7, 31), "1h": (3600, 24, 168), "1m": (60, 60, 256)}
"""bucket_width: (seconds, default limit, largest limit)."""
_EARLIEST = datetime(2026, 1, 1, tzinfo=timezone.utc)
_DIMENSIONS = ("claude_tag_category", "claude_tag_user_id", "context_window", "cost_type", "inference_geo", "model",
               "product", "rbac_group_id", "slack_channel_id", "speed", "token_type")  # fmt: skip


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
        try:
            start, end, width, limit, group_by, page = _parse(query, now)
        except ValueError as err:
            return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(err)}}
        bounds = []
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
        table = PriceTable.load(environment=False)
        buckets = [_bucket(low, high, [e for e in entries if low.timestamp() <= e.at < high.timestamp()], group_by, self.discount, table)
                   for low, high in bounds]  # fmt: skip
        next_page = base64.urlsafe_b64encode(bounds[-1][1].isoformat().encode()).decode() if more else None
        refreshed = datetime.fromtimestamp(now, timezone.utc)
        return 200, {"data": buckets, "has_more": more, "next_page": next_page, "data_refreshed_at": _rfc3339(refreshed)}


def _parse(query: dict[str, list[str]], now: float) -> tuple[datetime, datetime, int, int, list[str], datetime | None]:
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
    unknown = [name for name in group_by if name not in _DIMENSIONS]
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


def _bucket(low: datetime, high: datetime, entries: list[Billed], group_by: list[str], discount: float, table: PriceTable) -> dict[str, Any]:
    sums: dict[tuple[str | None, str | None], list[float]] = defaultdict(lambda: [0.0, 0])  # USD, requests
    for entry in entries:
        price = table.price(entry.model)
        cost = table.cost(price, entry.usage, int(entry.usage.get("output_tokens") or 0), entry.batch) if price else None
        if not isinstance(cost, Cost):
            continue  # A model or a line without a list price: the simulator does not know what the API would bill.
        model = table.resolve(entry.model)[0] if "model" in group_by else None
        if "cost_type" in group_by:
            for cost_type, usd in (("tokens", cost.total - cost.server_tools), ("web_search", cost.server_tools)):
                if usd:
                    sums[(model, cost_type)][0] += usd
        else:
            sums[(model, None)][0] += cost.total
            sums[(model, None)][1] += 1
    results = []
    for (model, cost_type), (usd, requests) in sorted(sums.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))):
        result: dict[str, Any] = dict.fromkeys(_DIMENSIONS)
        result.update({"model": model, "cost_type": cost_type, "currency": "USD", "list_amount": _cents(usd * 100),
                       "amount": _cents(usd * 100 * (1 - discount)), "requests": None if cost_type else int(requests)})  # fmt: skip
        results.append(result)
    return {"starting_at": _rfc3339(low), "ending_at": _rfc3339(high), "results": results}


def _cents(value: float) -> str:
    """Fractional cents as the API writes them: a decimal string."""
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
