"""The simulator's Message Batches: create, retrieve (with a status that progresses), list, cancel, delete, results.

A batch lives in memory in the simulator. It is `in_progress` until it has been retrieved `Simulator.batch_polls`
times, then `ended`, with `ended_at` `Simulator.batch_turnaround` seconds after `created_at` (so that a test knows
the turnaround it must see). Cancelling makes it `canceling`; its next retrieve ends it, with every request canceled.

Each request's result is scripted by the start of its `custom_id`, up to the first `-`:
`errored-…` (an `invalid_request_error`), `expired-…`, `canceled-…`, or any step of a message answer
(`cache-…`, `refusal-…`, `max_tokens-…`, ...); anything else succeeds with a plain answer. Every succeeded answer
is billed at the batch tier.
"""

from __future__ import annotations

import datetime
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

PREFIX = "/v1/messages/batches"
UNENDED_RESULT_TYPES = ("errored", "expired", "canceled")

Reply = tuple[int, Any]
"""An HTTP status and the JSON body to answer with."""


@dataclass
class _Batch:
    id: str
    created_at: float
    requests: list[dict[str, Any]]
    polls: int = 0
    status: str = "in_progress"
    cancel_initiated_at: float | None = None
    ended_at: float | None = None
    canceled: bool = False


@dataclass
class BatchStore:
    """The batches of one simulator. Thread-safe."""

    polls_to_end: int
    turnaround: float
    max_bytes: int
    _batches: dict[str, _Batch] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, body: Any, size: int, base_url: str) -> Reply:
        if size > self.max_bytes:
            return 413, _error("request_too_large", f"Request exceeds the maximum size of {self.max_bytes} bytes.")
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return 400, _error("invalid_request_error", "requests: must be a non-empty list")
        with self._lock:
            batch = _Batch(f"msgbatch_sim_{next(self._ids):06d}", _now(), requests)
            self._batches[batch.id] = batch
            return 200, _batch_json(batch, base_url)

    def retrieve(self, batch_id: str, base_url: str) -> Reply:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return _not_found(batch_id)
            batch.polls += 1
            if batch.status == "canceling" or (batch.status == "in_progress" and batch.polls >= self.polls_to_end):
                batch.status = "ended"
                batch.ended_at = batch.created_at + self.turnaround
            return 200, _batch_json(batch, base_url)

    def list(self, base_url: str) -> Reply:
        with self._lock:
            data = [_batch_json(batch, base_url) for batch in reversed(self._batches.values())]
        return 200, {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def cancel(self, batch_id: str, base_url: str) -> Reply:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return _not_found(batch_id)
            if batch.status == "in_progress":
                batch.status = "canceling"
                batch.canceled = True
                batch.cancel_initiated_at = _now()
            return 200, _batch_json(batch, base_url)

    def delete(self, batch_id: str) -> Reply:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return _not_found(batch_id)
            if batch.status != "ended":
                return 400, _error("invalid_request_error", f"Batch {batch_id} must end before it can be deleted.")
            del self._batches[batch_id]
        return 200, {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str, answer: Callable[[dict[str, Any], str], dict[str, Any]]) -> tuple[int, Any]:
        """The status and, for an ended batch, the result lines (JSON-encoded, newline-terminated).

        `answer(params, step)` is the simulator's Message for a request's params and a step name.
        """
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return _not_found(batch_id)
            if batch.status != "ended":
                return 400, _error("invalid_request_error", f"Batch {batch_id} has not ended yet.")
        lines = [json.dumps(_result(request, batch.canceled, answer)).encode() + b"\n" for request in batch.requests]
        return 200, lines


def _result(request: dict[str, Any], canceled: bool, answer: Callable[[dict[str, Any], str], dict[str, Any]]) -> Any:
    custom_id = str(request.get("custom_id", ""))
    step = custom_id.partition("-")[0]
    given = request.get("params")
    params: dict[str, Any] = given if isinstance(given, dict) else {}
    if canceled:
        result: dict[str, Any] = {"type": "canceled"}
    elif step == "errored":
        result = {"type": "errored", "error": _error("invalid_request_error", "max_tokens: Field required")}
    elif step in UNENDED_RESULT_TYPES:
        result = {"type": step}
    else:
        result = {"type": "succeeded", "message": answer(params, step)}
    return {"custom_id": custom_id, "result": result}


def _batch_json(batch: _Batch, base_url: str) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if batch.status == "ended":
        for request in batch.requests:
            step = str(request.get("custom_id", "")).partition("-")[0]
            kind = "canceled" if batch.canceled else step if step in UNENDED_RESULT_TYPES else "succeeded"
            counts[kind] += 1
    else:
        counts["processing"] = len(batch.requests)
    ended = batch.status == "ended"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status,
        "request_counts": counts,
        "created_at": _rfc3339(batch.created_at),
        "expires_at": _rfc3339(batch.created_at + 86400),
        "ended_at": _rfc3339(batch.ended_at) if batch.ended_at is not None else None,
        "cancel_initiated_at": _rfc3339(batch.cancel_initiated_at) if batch.cancel_initiated_at else None,
        "archived_at": None,
        "results_url": f"{base_url}{PREFIX}/{batch.id}/results" if ended else None,
    }


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _not_found(batch_id: str) -> Reply:
    return 404, _error("not_found_error", f"No batch {batch_id}")


def _now() -> float:
    return datetime.datetime.now(datetime.timezone.utc).timestamp()


def _rfc3339(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
