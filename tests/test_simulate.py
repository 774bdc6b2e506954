"""`claude-otel simulate`: the simulator as a server for services under test, scripted by a file.

The server runs as its own process (`python -m claude_otel simulate --port 0 --script FILE`); the clients are other
processes: the real `anthropic` SDK, and a plain HTTP client that sends no SDK header.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = {
    "options": {"retry_after": 0.01},
    "rules": [
        {"match": {"contains": "overloaded-then-ok"}, "steps": "529,ok"},
        {"match": {"contains": "bad-request"}, "steps": "400"},
        {"match": {"stream": True, "contains": "dies-after-200"}, "steps": "error_event"},
        {"match": {"stream": True, "contains": "cut-short"}, "steps": "truncate"},
        {"match": {"model": "claude-haiku-*"}, "steps": "refusal"},
        {"match": {"path": "/v1/messages", "contains": "every-third"}, "steps": "ok,ok,500", "cycle": True},
        {"match": {"contains": "plain-client"}, "steps": "503,503,ok"},
        {"match": {"contains": "researched"}, "steps": "ok",
         "usage": {"server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 0}, "speed": "fast"}},
    ],
    "default": "ok",
}

CLIENT = textwrap.dedent(
    """
    import json, sys
    import anthropic

    client = anthropic.Anthropic(max_retries=2)  # ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment
    def ask(text, model="claude-sonnet-5-5", stream=False, **options):
        kwargs = dict(model=model, max_tokens=16, messages=[{"role": "user", "content": text}], **options)
        try:
            if stream:
                with client.messages.stream(**kwargs) as events:
                    message = events.get_final_message()
            else:
                message = client.messages.create(**kwargs)
            return {"ok": True, "stop_reason": message.stop_reason, "stop_details": getattr(message, "stop_details", None) and message.stop_details.model_dump()}
        except anthropic.APIStatusError as err:
            return {"ok": False, "status": err.status_code, "type": err.body["error"]["type"], "request_id": err.request_id}
        except anthropic.APIError as err:
            return {"ok": False, "error": type(err).__name__, "message": str(err)}
    print(json.dumps({
        "retried": ask("overloaded-then-ok"),
        "rejected": ask("bad-request"),
        "dies_after_200": ask("dies-after-200", stream=True),
        "cut_short": ask("cut-short", stream=True),
        "refusal": ask("hello", model="claude-haiku-4-5"),
        "header_wins": ask("bad-request", extra_headers={"x-claude-sim": "ok"}),
        "models": [model.id for model in client.models.list()],
        "one_model": client.models.retrieve("claude-sonnet-4-5").display_name,
    }))
    """
)


class Server:
    """`claude-otel simulate` in its own process; `url` once it printed its ready line."""

    def __init__(self, *arguments: str) -> None:
        command = [sys.executable, "-m", "claude_otel", "simulate", "--port", "0", *arguments]
        self.popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()  # Bounded: the process prints it or exits (pytest's timeout aside).
        self.url = line.rsplit("ANTHROPIC_BASE_URL=", 1)[-1].rstrip(")\n") if "ANTHROPIC_BASE_URL=" in line else ""

    def stop(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            return -9


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    running = Server("--script", str(script))
    try:
        assert running.url.startswith("http://127.0.0.1:"), running.popen.stderr.read() if running.popen.stderr else ""
        yield running
    finally:
        running.stop()


def post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """A POST of a client that sends none of the SDK's headers."""
    request = urllib.request.Request(f"{url}/v1/messages", json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_sdk_in_another_process_gets_what_the_script_says(server: Server, tmp_path: Path) -> None:
    client = tmp_path / "client.py"
    client.write_text(CLIENT)
    env = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-simulate"}
    result = subprocess.run([sys.executable, str(client)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["retried"] == {"ok": True, "stop_reason": "end_turn", "stop_details": None}  # 529, then the SDK's retry
    assert got["rejected"]["status"] == 400 and got["rejected"]["type"] == "invalid_request_error" and got["rejected"]["request_id"]
    assert got["dies_after_200"]["ok"] is False and got["dies_after_200"]["type"] == "overloaded_error"  # an SSE error event
    assert got["cut_short"]["stop_reason"] is None  # Ended before message_delta: the SDK returns what it got.
    assert got["refusal"]["ok"] and got["refusal"]["stop_reason"] == "refusal" and got["refusal"]["stop_details"]["category"] == "cyber"
    assert got["header_wins"] == {"ok": True, "stop_reason": "end_turn", "stop_details": None}
    assert "claude-sonnet-4-5" in got["models"] and len(got["models"]) >= 5
    assert got["one_model"] == "Claude Sonnet 4 5"


def test_a_client_without_the_sdk_headers_is_counted_per_rule(server: Server) -> None:
    body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "plain-client"}]}
    assert [post(server.url, body)[0] for _ in range(4)] == [503, 503, 200, 200]  # the last step repeats
    cycling = {**body, "messages": [{"role": "user", "content": "every-third"}]}
    assert [post(server.url, cycling)[0] for _ in range(6)] == [200, 200, 500, 200, 200, 500]
    status, answer = post(server.url, {**body, "messages": [{"role": "user", "content": "anything else"}]})
    assert status == 200 and answer["type"] == "message" and answer["usage"]["input_tokens"] > 0


def test_sigterm_stops_it_cleanly(server: Server) -> None:
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("script", "says"),
    [
        ('{"rules": [{"steps": "529,okay"}]}', "rule 1: unknown step 'okay'"),
        ('{"rules": [{"match": {"modle": "x"}, "steps": "ok"}]}', "rule 1: unknown match key(s) ['modle']"),
        ('{"rules": [], "options": {"retry_after": -1}}', "option retry_after must be a number >= 0"),
        ('{"rules": [{"steps": "raw:abc"}]}', "unknown step 'raw:abc'"),
        ('{"rules": [{"steps": "ok", "usage": [1]}]}', "rule 1: `usage` must be an object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_script_exits_2_naming_the_problem(tmp_path: Path, script: str, says: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(script)
    result = subprocess.run([sys.executable, "-m", "claude_otel", "simulate", "--port", "0", "--script", str(path)],
                            capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert str(path) in result.stderr and says in result.stderr, result.stderr


def test_a_yaml_script(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    script = tmp_path / "script.yaml"
    script.write_text("rules:\n  - match: {contains: nope}\n    steps: '429'\ndefault: ok\n")
    running = Server("--script", str(script))
    try:
        assert running.url
        body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "nope"}]}
        assert post(running.url, body)[0] == 429
    finally:
        assert running.stop() == 0


def test_a_rule_scripts_the_usage_of_its_answers(server: Server) -> None:
    body = {"model": "claude-opus-5-5", "max_tokens": 8, "messages": [{"role": "user", "content": "researched"}]}
    status, answer = post(server.url, body)
    assert status == 200
    assert answer["usage"]["server_tool_use"] == {"web_search_requests": 3, "web_fetch_requests": 0}
    assert answer["usage"]["speed"] == "fast" and answer["usage"]["input_tokens"] > 0  # The rest as usual.
    status, answer = post(server.url, body, {"x-claude-sim-usage": '{"speed": "standard"}'})  # The header wins.
    assert answer["usage"]["speed"] == "standard" and "server_tool_use" not in answer["usage"]
    status, answer = post(server.url, body, {"x-claude-sim-usage": "[1, 2]"})
    assert status == 400 and "x-claude-sim-usage must be a JSON object" in answer["error"]["message"]
