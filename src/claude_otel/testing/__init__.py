"""Testing helpers: a local simulator of the Anthropic Messages API, and an OTLP receiver that keeps what it gets."""

from ._otlp import OtlpReceiver, ReceivedSpan
from ._simulator import SCENARIO_HEADER, USAGE_HEADER, RateLimits, RawResponse, RecordedRequest, Simulator

__all__ = ["SCENARIO_HEADER", "USAGE_HEADER", "OtlpReceiver", "RateLimits", "RawResponse", "ReceivedSpan", "RecordedRequest", "Simulator"]
