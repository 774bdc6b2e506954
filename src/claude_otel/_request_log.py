"""The request log: one structured record per call, when the call ends.

What an on-call engineer greps for: the `request_id` (and those of earlier attempts), model, stop reason, tokens,
latency, time to first token, attempts, outcome, error type, and the trace and span ids that lead to the trace.
One line of JSON on the Python logger `claude_otel` (INFO for a success, WARNING for a failure), and a log record
of the OpenTelemetry logs signal when a logger provider is configured. Never any prompt or completion content.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from . import _semconv as sc

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider

    from ._call import Call

log = logging.getLogger("claude_otel")

# Each field of the record with the span attribute it comes from.
_FIELDS = (
    ("request_id", sc.ANTHROPIC_REQUEST_ID),
    ("request_ids", sc.CLAUDE_OTEL_REQUEST_IDS),
    ("batch_id", sc.ANTHROPIC_MESSAGE_BATCH_ID),
    ("response_model", sc.GEN_AI_RESPONSE_MODEL),
    ("stop_reason", sc.ANTHROPIC_STOP_REASON),
    ("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("cache_read_input_tokens", sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    ("cache_write_input_tokens", sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS),
    ("cost_usd", sc.CLAUDE_OTEL_COST_USD),
    ("time_to_first_token_s", sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK),
    ("attempts", sc.CLAUDE_OTEL_ATTEMPTS),
    ("status_code", sc.HTTP_RESPONSE_STATUS_CODE),
    ("stream_outcome", sc.CLAUDE_OTEL_STREAM_OUTCOME),
    ("error_type", sc.ERROR_TYPE),
    ("error_category", sc.CLAUDE_OTEL_ERROR_CATEGORY),
)


def _timestamp() -> str:
    """Now in UTC as `datetime.now(timezone.utc).isoformat(timespec="milliseconds")` writes it, its date and time of
    day made once per second rather than once per record."""
    global _second
    milliseconds = time.time_ns() // 1_000_000
    seconds, fraction = divmod(milliseconds, 1000)
    second = _second
    if second[0] != seconds:
        second = _second = (seconds, datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{second[1]}.{fraction:03d}+00:00"


_second: tuple[int, str] = (-1, "")
"""The second of the last `_timestamp`, and its date and time of day. Replaced whole, so threads read it safely."""

_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""Compact JSON, as `json.dumps(..., separators=(",", ":"))` writes it, without making an encoder per record."""


def _python_listens(level: int) -> bool:
    """Whether a record of `level` on the logger `claude_otel` reaches a handler that is not a `NullHandler`.

    The package's own `NullHandler` (see `claude_otel/__init__.py`) keeps Python's last-resort handler from printing
    the records of an application that set up no logging; this keeps such an application from paying for records
    that no one reads. It walks the loggers as `Logger.callHandlers` does: a handler's own level counts, and
    `propagate = False` stops the walk."""
    if not log.isEnabledFor(level):
        return False
    logger: logging.Logger | None = log
    while logger is not None:
        for handler in logger.handlers:
            if level >= handler.level and not isinstance(handler, logging.NullHandler):
                return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


class RequestLog:
    """Writes the record of each call, to the Python logger and to the OpenTelemetry logs signal."""

    def __init__(self, enabled: bool, logger_provider: LoggerProvider | None) -> None:
        self._enabled = enabled
        self._otel: Logger | None = None
        if enabled and logger_provider is not None:
            from .version import __version__

            self._otel = logger_provider.get_logger("claude_otel", __version__)

    def record(
        self, call: Call, attributes: dict[str, AttributeValue], outcome: str | None, failure: BaseException | None, duration: float
    ) -> None:
        """Writes the call's record, if anyone listens. Never raises; costs nothing when no one does."""
        if not self._enabled:
            return
        failed = failure is not None or sc.ERROR_TYPE in attributes
        level = logging.WARNING if failed else logging.INFO
        to_python = _python_listens(level)
        if not to_python and self._otel is None:
            return
        try:
            span_context = call.span.get_span_context()
            fields: dict[str, Any] = {
                "event": sc.EVENT_REQUEST,
                "timestamp": _timestamp(),
                "operation": call.request.operation,
                "model": call.request.model,
                "outcome": "failed" if failed else outcome or "ok",
                "latency_s": round(duration, 6),
            }
            for name, key in _FIELDS:
                value = attributes.get(key)
                if value is not None:
                    fields[name] = list(value) if isinstance(value, (list, tuple)) else value
            if span_context.is_valid:
                fields["trace_id"] = f"{span_context.trace_id:032x}"
                fields["span_id"] = f"{span_context.span_id:016x}"
            line = _ENCODER.encode(fields)
            if to_python:
                # What `log.log(level, line, extra=...)` does, less its walk up the stack for the caller, which is
                # always this method.
                log.handle(log.makeRecord(log.name, level, __file__, _LINE, line, (), None, "record", {"claude_otel": fields}))
            if self._otel is not None:
                self._emit(fields, attributes, line, level, call)
        except Exception:
            log.debug("claude_otel: could not write the request log record", exc_info=True)

    def _emit(self, fields: dict[str, Any], attributes: dict[str, AttributeValue], line: str, level: int, call: Call) -> None:
        from opentelemetry._logs import LogRecord, SeverityNumber

        assert self._otel is not None
        span_context = call.span.get_span_context()
        self._otel.emit(
            LogRecord(
                timestamp=time.time_ns(),
                trace_id=span_context.trace_id,
                span_id=span_context.span_id,
                trace_flags=span_context.trace_flags,
                severity_text=logging.getLevelName(level),
                severity_number=SeverityNumber.WARN if level == logging.WARNING else SeverityNumber.INFO,
                body=line,
                attributes={
                    sc.EVENT_NAME: sc.EVENT_REQUEST,
                    sc.CLAUDE_OTEL_OPERATION: fields["operation"],
                    **({sc.GEN_AI_REQUEST_MODEL: call.request.model} if call.request.model else {}),
                    sc.CLAUDE_OTEL_OUTCOME: fields["outcome"],
                    sc.CLAUDE_OTEL_LATENCY: fields["latency_s"],
                    **{key: value for _, key in _FIELDS if (value := attributes.get(key)) is not None},
                },
            )
        )


_LINE = RequestLog.record.__code__.co_firstlineno
"""The line the Python log records point at (`lineno`): that of `RequestLog.record`, which writes them."""
