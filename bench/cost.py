"""What pricing a call costs: `python bench/cost.py` (genai-prices installed for the comparison, as the test extra has).

Times `PriceTable.cost` (claude_otel's per-call arithmetic) on usages of every kind the price table knows: plain
tokens, cache writes and reads, web searches, fast mode with US-only inference, and `usage.iterations` (a compaction,
an executor message and an advisor on another model). The baseline is the price table before the invoice lines beyond
tokens were added (git revision ef4c81a, the cost of a plain call then ~3 µs a call with the span around it), loaded
from git; and genai-prices' `calc_price` on the same plain usage. Prints µs per call, best of 5 runs, and ratios.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from claude_otel._prices import PriceTable  # noqa: E402  After the path to src/.

BASELINE = "ef4c81a"
MODEL = "claude-opus-4-8"
USAGES = {
    "plain": {"input_tokens": 1200, "output_tokens": 300, "service_tier": "standard"},
    "cache": {"input_tokens": 100, "cache_read_input_tokens": 20000, "cache_creation_input_tokens": 3000,
              "cache_creation": {"ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 1000}, "output_tokens": 300},
    "web search": {"input_tokens": 1200, "output_tokens": 300, "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1}},
    "fast + US-only": {"input_tokens": 1200, "output_tokens": 300, "speed": "fast", "inference_geo": "us"},
    "iterations": {"input_tokens": 1000, "output_tokens": 300, "iterations": [
        {"type": "compaction", "input_tokens": 2000, "cache_read_input_tokens": 150000, "cache_creation_input_tokens": 0, "output_tokens": 3000},
        {"type": "message", "input_tokens": 1000, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 300},
        {"type": "advisor_message", "model": "claude-opus-5-5", "input_tokens": 3000, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 400}]},
}  # fmt: skip


def per_call(function, number: int = 20000) -> float:
    """Microseconds per call, best of 5."""
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def baseline_table():
    """The price table module of BASELINE, from git, on its own bundled prices."""
    directory = Path(tempfile.mkdtemp())
    for name in ("_prices.py", "_extract.py", "prices.json"):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE}:src/claude_otel/{name}"], capture_output=True, text=True, check=True).stdout
        (directory / name).write_text(text)
    spec = importlib.util.spec_from_file_location("baseline_prices", directory / "_prices.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_prices"] = module  # dataclasses look their module up there.
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.PriceTable.load(environment=False)


def main() -> None:
    table = PriceTable.load(environment=False)
    price = table.price(MODEL)
    old = baseline_table()
    old_price = old.price(MODEL)
    print(f"PriceTable.cost on {MODEL}, µs per call (best of 5 x 20,000)")
    now = {}
    for name, usage in USAGES.items():
        now[name] = per_call(lambda usage=usage: table.cost(price, usage, usage["output_tokens"], False))
        before = per_call(lambda usage=usage: old.cost(old_price, usage, usage["output_tokens"], False))
        print(f"  {name:<16} {now[name]:6.2f}   baseline {before:5.2f}   ratio {now[name] / before:4.2f}x")
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        print("genai-prices is not installed: no comparison with it")
        return
    usage = Usage(input_tokens=1200, output_tokens=300)
    calc_price(usage, model_ref=MODEL, provider_id="anthropic")  # Its first call loads its data.
    theirs = per_call(lambda: calc_price(usage, model_ref=MODEL, provider_id="anthropic"), number=2000)
    print(f"genai-prices calc_price, plain: {theirs:.1f} µs = {theirs / now['plain']:.0f}x claude_otel's plain")


if __name__ == "__main__":
    main()
