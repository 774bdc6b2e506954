"""`claude_otel._semconv` is the one place where the names claude_otel writes live: attribute names, span and event
names, metric names. A literal of such a name anywhere else in the package is a second place, which drifts from the
first the day one of them is renamed; this test names each one, by file and line.

The simulator (`claude_otel.testing`) is exempt: it plays the API's side, whose names are not claude_otel's.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import claude_otel
from claude_otel import _semconv as sc

PACKAGE = Path(claude_otel.__file__).parent

NAME = re.compile(r"^(gen_ai|claude_otel|anthropic|http|server|url|error|exception|event)\.[A-Za-z0-9_.\-]*$")
"""What an OpenTelemetry name of claude_otel's looks like: a namespace, a dot, and more."""


def literal_names(source: str) -> list[tuple[int, str]]:
    """The string literals of `source` that look like telemetry names, with their lines; docstrings are prose."""
    tree = ast.parse(source)
    prose = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            prose.add(id(node.value))  # Docstrings, and the attribute docstrings under constants.
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose and NAME.match(node.value)
    ]


def test_the_scan_finds_a_literal_name_and_leaves_prose_alone() -> None:
    source = '"""Writes `gen_ai.usage.input_tokens`."""\nspan.set_attribute("gen_ai.usage.input_tokens", 1)\nlog = "claude_otel"\n'
    assert literal_names(source) == [(2, "gen_ai.usage.input_tokens")]


def test_no_module_but_semconv_spells_a_telemetry_name() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_semconv.py" and "testing" not in path.relative_to(PACKAGE).parts
        for line, name in literal_names(path.read_text(encoding="utf-8"))
    ]
    assert not found, "spell these with a constant of claude_otel._semconv:\n" + "\n".join(found)


def test_every_name_in_semconv_is_spelled_once() -> None:
    """Two constants for one name are two places again: a name that serves twice (a metric named as a span
    attribute) is one constant that the other refers to."""
    lines: dict[str, list[int]] = {}
    for line, name in literal_names(Path(sc.__file__).read_text(encoding="utf-8")):
        lines.setdefault(name, []).append(line)
    assert {name: where for name, where in lines.items() if len(where) > 1} == {}
