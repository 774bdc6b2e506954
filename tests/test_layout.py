"""The package's layout: what an application imports (the runtime) is apart from the command line's tools
(`claude_otel._tools`) and the simulator (`claude_otel.testing`), and never imports them. They would cost every
application their import time and memory, and tie its instrumentation to code written for demos and tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import claude_otel

PACKAGE = Path(claude_otel.__file__).parent
APART = ("_tools", "testing")
"""The subpackages the runtime does not import."""


def runtime_modules() -> list[Path]:
    """Every module of the package but the tools, the simulator and `__main__` (the command, which runs the tools)."""
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in APART and path.name != "__main__.py"
    ]


def imported(path: Path) -> list[tuple[int, str]]:
    """The modules `path` imports, relative ones as written (`.testing`, `.._tools.demo`), with their lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            dots = "." * node.level
            # `from . import _call` imports `._call`; `from .testing import Simulator`, `.testing`.
            found += [(node.lineno, dots + (node.module or alias.name)) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_the_runtime_modules_import_neither_the_tools_nor_the_simulator() -> None:
    modules = runtime_modules()
    assert len(modules) > 20  # The scan sees the package: __init__, _call, _patches, ...
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in modules
        for line, module in imported(path)
        if any(module.lstrip(".").removeprefix("claude_otel.").split(".")[0] == apart for apart in APART)
    ]
    assert not found, "the runtime imports these, which only the command and tests may:\n" + "\n".join(found)


def test_the_scan_sees_an_import_of_the_simulator(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("from .testing import Simulator\nfrom . import _call\n\ndef f():\n    from ._tools import demo\n")
    assert imported(module) == [(1, ".testing"), (2, "._call"), (5, "._tools")]


def test_an_instrumented_call_loads_no_tool_and_no_simulator() -> None:
    """A process that instruments, makes calls (one failed, one streamed) and ends: not one module of the tools or
    the simulator is loaded."""
    code = """
import sys, anthropic, claude_otel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
claude_otel.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
client = anthropic.Anthropic(api_key="sk-ant-layout", base_url="http://127.0.0.1:9", max_retries=0)
for stream in (False, True):
    try:
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}], stream=stream)
    except anthropic.APIConnectionError:
        pass
print(sorted(name for name in sys.modules if name.startswith(("claude_otel._tools", "claude_otel.testing"))))
print("claude_otel._patches" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["[]", "True"]
