"""A simulator script: what requests get when they do not say it themselves (`claude-otel simulate --script FILE`).

A service under test, in any language, cannot be made to send the `x-claude-sim` header. A script gives, instead,
rules matched against each request, first match wins:

    {
      "options": {"retry_after": 0.5, "event_delay": 0.01},
      "rules": [
        {"match": {"model": "claude-haiku-*", "stream": true}, "steps": "error_event"},
        {"match": {"contains": "refund"}, "steps": "refusal"},
        {"match": {"contains": "research"}, "steps": "ok", "usage": {"server_tool_use": {"web_search_requests": 3}}},
        {"match": {"path": "/v1/messages"}, "steps": "ok,ok,ok,ok,529", "cycle": true}
      ],
      "default": "ok"
    }

`match` (every key optional, all must hold): `path`, a prefix of the request path; `model`, a shell-style pattern of
the request's model (`fnmatch`, case-insensitive); `stream`, whether the request streams; `contains`, a substring of
the request body. `steps` uses the header's syntax (the steps of `claude_otel.testing._simulator`, `raw:` excepted).
`usage` (optional) replaces fields of the answers' usage, as the `x-claude-sim-usage` header does: web searches,
`speed`, `inference_geo`, `service_tier`, `iterations`, so that a service's cost dashboards can be tested.

Which step a request gets: with `"cycle": true`, the rule's Nth request gets step N modulo their number (every fifth
call fails, above). Otherwise, as with the header, step N for the Nth attempt of a call, the last one repeating: the
attempt is the `x-stainless-retry-count` header that Anthropic's SDKs send; a client without it is counted per rule
(its first request matching the rule gets the first step, the second the second, ...). `options` are the
`Simulator`'s own (`retry_after`, `event_delay`, `first_byte_delay`, `reply_words`, `batch_polls`,
`batch_turnaround`). A request with `x-claude-sim` follows its header, not the script.

`Script.load(path)` reads JSON, or YAML when the file ends in `.yaml`/`.yml` and PyYAML is installed, and raises
`ScriptError` naming the file, the rule and what is wrong, before anything is served.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_MATCH_KEYS = {"path", "model", "stream", "contains"}
_RULE_KEYS = {"match", "steps", "cycle", "usage"}
_OPTIONS = {"retry_after": float, "event_delay": float, "first_byte_delay": float, "reply_words": int,
            "batch_polls": int, "batch_turnaround": float}  # fmt: skip
_NAMED_STEPS = {"ok", "cache", "web_search", "batch", "malformed", "error_event", "drop", "truncate", "end_turn", "max_tokens",
                "stop_sequence", "tool_use", "pause_turn", "refusal", "context_window"}  # fmt: skip


class ScriptError(ValueError):
    """A script that cannot be used, with the file, the rule and what is wrong."""


@dataclass
class Rule:
    """A rule of a script: which requests, and the steps they get."""

    steps: list[str]
    path: str | None = None
    model: str | None = None
    stream: bool | None = None
    contains: str | None = None
    cycle: bool = False
    usage: dict[str, Any] | None = None
    """Usage fields of the answers, as the `x-claude-sim-usage` header gives them."""
    _count: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def matches(self, path: str, body: dict[str, Any], raw: bytes) -> bool:
        return (
            (self.path is None or path.startswith(self.path))
            and (self.model is None or fnmatch.fnmatchcase(str(body.get("model", "")).lower(), self.model.lower()))
            and (self.stream is None or bool(body.get("stream")) == self.stream)
            and (self.contains is None or self.contains.encode() in raw)
        )

    def step(self, attempt: str | None, lock: threading.Lock) -> str:
        """The step of this request: see the module's docstring. `attempt` is `x-stainless-retry-count`, if sent."""
        if not self.cycle and attempt is not None and attempt.isdigit():
            return self.steps[min(int(attempt), len(self.steps) - 1)]
        with lock:
            number = next(self._count)
        return self.steps[number % len(self.steps)] if self.cycle else self.steps[min(number, len(self.steps) - 1)]


@dataclass
class Script:
    """The rules of a script file, the steps of requests no rule matches, and the simulator's options."""

    rules: list[Rule]
    default: str = "ok"
    options: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer_for(self, path: str, headers: dict[str, str], body: object, raw: bytes) -> tuple[str, dict[str, Any] | None]:
        """The step (header syntax, one step) of a request that carries no `x-claude-sim`, and the usage fields of
        its answer, if the rule gives them. Never raises."""
        if isinstance(body, dict):
            for rule in self.rules:
                if rule.matches(path, body, raw):
                    return rule.step(headers.get("x-stainless-retry-count"), self._lock), rule.usage
        return self.default, None

    @classmethod
    def load(cls, path: str | Path) -> Script:
        """Reads and checks a script file. Raises `ScriptError`."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ScriptError(f"{path}: cannot read it ({err.strerror or err})") from None
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ScriptError(f"{path}: a YAML script needs PyYAML (pip install pyyaml); or write it as JSON") from None
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ScriptError(f"{path}: not valid YAML: {err}") from None
        else:
            try:
                data = json.loads(text)
            except ValueError as err:
                raise ScriptError(f"{path}: not valid JSON: {err}") from None
        return cls.parse(data, str(path))

    @classmethod
    def parse(cls, data: object, where: str = "script") -> Script:
        """Checks a script's data (as read from JSON). Raises `ScriptError`."""
        if not isinstance(data, dict):
            raise ScriptError(f"{where}: a script is an object with `rules`, `default` and `options`")
        unknown = set(data) - {"rules", "default", "options"}
        if unknown:
            raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}; known: default, options, rules")
        rules_data = data.get("rules", [])
        if not isinstance(rules_data, list):
            raise ScriptError(f"{where}: `rules` must be a list")
        rules = [_rule(rule, f"{where}: rule {number}") for number, rule in enumerate(rules_data, 1)]
        default = data.get("default", "ok")
        if not isinstance(default, str) or len(_steps(default, f"{where}: default")) != 1:
            raise ScriptError(f"{where}: `default` must be one step, such as \"ok\"")
        options = data.get("options", {})
        if not isinstance(options, dict):
            raise ScriptError(f"{where}: `options` must be an object")
        for name, value in options.items():
            kind = _OPTIONS.get(name)
            if kind is None:
                raise ScriptError(f"{where}: unknown option {name!r}; known: {', '.join(sorted(_OPTIONS))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (kind is int and not isinstance(value, int)):
                raise ScriptError(f"{where}: option {name} must be a {'whole ' if kind is int else ''}number >= 0, not {value!r}")
        return cls(rules, default, dict(options))


def _rule(data: object, where: str) -> Rule:
    if not isinstance(data, dict) or "steps" not in data:
        raise ScriptError(f"{where}: a rule is an object with `steps` (and `match`, `cycle`)")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise ScriptError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(_RULE_KEYS))}")
    match = data.get("match", {})
    if not isinstance(match, dict):
        raise ScriptError(f"{where}: `match` must be an object")
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise ScriptError(f"{where}: unknown match key(s) {sorted(unknown)}; known: {', '.join(sorted(_MATCH_KEYS))}")
    for key in ("path", "model", "contains"):
        if key in match and not isinstance(match[key], str):
            raise ScriptError(f"{where}: match.{key} must be a string")
    if "stream" in match and not isinstance(match["stream"], bool):
        raise ScriptError(f"{where}: match.stream must be true or false")
    if not isinstance(data.get("cycle", False), bool):
        raise ScriptError(f"{where}: `cycle` must be true or false")
    if not isinstance(data["steps"], str):
        raise ScriptError(f"{where}: `steps` must be a string such as \"529,ok\"")
    steps = _steps(data["steps"], where)
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise ScriptError(f"{where}: `usage` must be an object of usage fields, such as {{\"speed\": \"fast\"}}")
    return Rule(steps, match.get("path"), match.get("model"), match.get("stream"), match.get("contains"), data.get("cycle", False), usage)


def _steps(text: str, where: str) -> list[str]:
    """The steps of `text` (comma-separated), each checked. Raises `ScriptError` for a step the simulator lacks."""
    steps = [step.strip() for step in text.split(",")]
    for step in steps:
        name, _, argument = step.removesuffix("+noretry").partition(":")
        if name == "stall":
            try:
                ok = float(argument) >= 0
            except ValueError:
                ok = False
        elif name.isdigit():
            ok = len(name) == 3 and 400 <= int(name) <= 599 and (not argument or (name == "429" and argument == "spend_limit"))
        else:
            ok = name in _NAMED_STEPS and not argument
        if not ok:
            raise ScriptError(
                f"{where}: unknown step {step!r}; steps: {', '.join(sorted(_NAMED_STEPS))}, an error status 400-599 "
                "(429:spend_limit), stall:SECONDS, each optionally +noretry"
            )
    return steps
