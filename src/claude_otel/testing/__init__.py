"""Testing helpers: a local simulator of the Anthropic Messages API (see `Simulator`)."""

from ._simulator import SCENARIO_HEADER, RecordedRequest, Simulator

__all__ = ["SCENARIO_HEADER", "RecordedRequest", "Simulator"]
