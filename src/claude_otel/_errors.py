"""What went wrong with a call, in two vocabularies: the SDK's `error.type`, and whose problem it is.

`error.type` is the SDK's own vocabulary (its spans use the same values), so the two tell the same story.
`claude_otel.error.category` answers the on-call question: whose problem is this, and what should be done.

| category        | when                                               | what to do                                          |
|-----------------|----------------------------------------------------|-----------------------------------------------------|
| caller_error    | 400, 401, 403, 404, 413 and other 4xx               | fix the request, the key or the permissions: retrying does not help |
| billing         | 402                                                | add credit or fix the billing                       |
| rate_limited    | 429 (requests / tokens per minute)                 | slow down; honour `retry-after`; ask for higher limits |
| spend_limit     | 429 with `error.details.error_code` `*spend_limit*` | raise the spend limit: retrying before then does not help |
| overloaded      | 529, or `overloaded_error` mid-stream              | temporary: retry with backoff, or use another model |
| platform_error  | 500 and other 5xx; `api_error`; a truncated stream | the API's problem: retry; report if it persists     |
| gateway_timeout | 504                                                | switch to streaming or to the Batch API             |
| timeout         | the client's own timeout (and 408)                 | raise the timeout, or stream                        |
| connection      | no response: refused, reset, dropped mid-stream    | check the network and proxies; retry                |
"""

from __future__ import annotations

from typing import Any

from . import _semconv as sc
from ._extract import as_str, field

# The categories, by the names this module's rules read best with.
CALLER_ERROR = sc.CATEGORY_CALLER_ERROR
BILLING = sc.CATEGORY_BILLING
RATE_LIMITED = sc.CATEGORY_RATE_LIMITED
SPEND_LIMIT = sc.CATEGORY_SPEND_LIMIT
OVERLOADED = sc.CATEGORY_OVERLOADED
PLATFORM_ERROR = sc.CATEGORY_PLATFORM_ERROR
GATEWAY_TIMEOUT = sc.CATEGORY_GATEWAY_TIMEOUT
TIMEOUT = sc.CATEGORY_TIMEOUT
CONNECTION = sc.CATEGORY_CONNECTION

TRANSIENT = frozenset({RATE_LIMITED, OVERLOADED, PLATFORM_ERROR, GATEWAY_TIMEOUT, TIMEOUT, CONNECTION})
"""The categories for which the same request may succeed later."""

_BY_API_TYPE = {
    "invalid_request_error": CALLER_ERROR,
    "authentication_error": CALLER_ERROR,
    "permission_error": CALLER_ERROR,
    "not_found_error": CALLER_ERROR,
    "request_too_large": CALLER_ERROR,
    "billing_error": BILLING,
    "rate_limit_error": RATE_LIMITED,
    "overloaded_error": OVERLOADED,
    "api_error": PLATFORM_ERROR,
    "timeout_error": GATEWAY_TIMEOUT,
}

_TIMEOUT_NAMES = frozenset({"APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "WriteTimeout", "PoolTimeout"})


def error_type(error: BaseException) -> str:
    """The `error.type` of a failed call: the type of the API's error envelope (`overloaded_error`, ...), else the
    HTTP status code, else `client_timeout_error` or `connection_error`, else `client_error`."""
    if _is_timeout(error):
        return sc.ERROR_TYPE_CLIENT_TIMEOUT
    if _is_connection_error(error):
        return sc.ERROR_TYPE_CONNECTION
    status_code = getattr(error, "status_code", None)
    if isinstance(status_code, int):
        api_type = _api_type(error)
        if api_type:
            return api_type
        # An `error` event has the status of the response that opened its stream, which is no error.
        if status_code >= 400:
            return str(status_code)
    return sc.ERROR_TYPE_CLIENT


def category(error: BaseException) -> str:
    """The `claude_otel.error.category` of what `error` says went wrong (see the module's table)."""
    if _is_timeout(error):
        return TIMEOUT
    if _is_connection_error(error):
        return CONNECTION
    status_code = getattr(error, "status_code", None)
    if not isinstance(status_code, int):
        return CALLER_ERROR  # Raised by the SDK before sending (a bad argument), or by the application's middleware.
    if status_code == 429:
        error_code = as_str(field(field(field(getattr(error, "body", None), "error"), "details"), "error_code"))
        return SPEND_LIMIT if error_code and "spend_limit" in error_code else RATE_LIMITED
    if status_code >= 400:
        return status_category(status_code)
    # Mid-stream: the response was 200, the `error` event says what happened.
    return _BY_API_TYPE.get(_api_type(error) or "", PLATFORM_ERROR)


def status_category(status_code: int) -> str:
    """The category of an HTTP error status."""
    if status_code == 402:
        return BILLING
    if status_code == 408:
        return TIMEOUT
    if status_code == 429:
        return RATE_LIMITED
    if status_code == 504:
        return GATEWAY_TIMEOUT
    if status_code == 529:
        return OVERLOADED
    if status_code >= 500:
        return PLATFORM_ERROR
    return CALLER_ERROR


def should_retry_header(response: Any) -> bool | None:
    """What the response's `x-should-retry` header tells the SDK, which obeys it: `None` when it is absent."""
    value = response.headers.get("x-should-retry")
    return True if value == "true" else False if value == "false" else None


def _api_type(error: BaseException) -> str | None:
    api_type = getattr(error, "type", None)
    if not isinstance(api_type, str) or not api_type:
        api_type = as_str(field(field(getattr(error, "body", None), "error"), "type"))
    return api_type or None


def _is_timeout(error: BaseException) -> bool:
    # By name, so that the same code serves the httpx and the httpx2 SDKs without importing either.
    return type(error).__name__ in _TIMEOUT_NAMES


def _is_connection_error(error: BaseException) -> bool:
    return any(cls.__name__ in ("APIConnectionError", "TransportError") for cls in type(error).__mro__)
