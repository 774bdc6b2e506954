"""`claude-otel destination create|list|test|disable|enable`: the organization's telemetry destinations (API
tracing, beta), through the SDK's Admin API (`client.beta.organization.telemetry_destinations`, anthropic >= 1.14)
with the admin key in `ANTHROPIC_ADMIN_KEY`.

No secret is ever printed or taken from the command line (where shells keep it in their history and `ps` shows
it): `create` reads the collector's token from an environment variable (`CLAUDE_OTEL_API_TRACING_TOKEN` unless
`--token-env` names another) and registers it as `authorization: Bearer ...`; the API itself returns only header
names. Exit codes: 0 done (a `test` that succeeded), 1 a `test` that failed, 2 when it cannot ask (no admin key, an
SDK without the API, the API's refusal, which is printed).
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from .reconcile import ADMIN_KEY_ENV

TOKEN_ENV = "CLAUDE_OTEL_API_TRACING_TOKEN"


def run(action: str, arguments: Any, out: TextIO = sys.stdout) -> int:
    key = os.environ.get(ADMIN_KEY_ENV)
    if not key:
        return _fail(f"{ADMIN_KEY_ENV} is not set: telemetry destinations need an Admin API key (sk-ant-admin...)")
    import anthropic

    try:
        with anthropic.Anthropic(api_key=key) as client:
            if not hasattr(client.beta, "organization"):
                return _fail(f"anthropic {anthropic.__version__} has no telemetry destinations API: it needs anthropic >= 1.14")
            destinations = client.beta.organization.telemetry_destinations
            if action == "create":
                return _create(destinations, arguments, out)
            if action == "list":
                for destination in destinations.list():
                    print(_line(destination), file=out)
                return 0
            if action == "test":
                result = destinations.test(arguments.id).result
                if result.type == "success":
                    print(f"{arguments.id}: delivered a test span (anthropic.test): look for it in Jaeger, service claude-platform", file=out)
                    return 0
                print(f"{arguments.id}: the test delivery failed: {result.error}", file=out)
                return 1
            state = {"type": "disabled" if action == "disable" else "enabled"}
            print(_line(destinations.update(arguments.id, state=state)), file=out)  # type: ignore[arg-type]
            return 0
    except anthropic.APIError as err:
        return _fail(str(err))


def _create(destinations: Any, arguments: Any, out: TextIO) -> int:
    token = os.environ.get(arguments.token_env)
    if not token:
        return _fail(f"{arguments.token_env} is not set: the token the API must send to your collector "
                     "(the collector's CLAUDE_OTEL_API_TRACING_TOKEN, docs/api-tracing.md)")  # fmt: skip
    workspaces = {"type": "include", "workspace_ids": arguments.workspace} if arguments.workspace else {"type": "all"}
    destination = destinations.create(
        endpoint_url=arguments.endpoint,
        workspaces=workspaces,
        display_name=arguments.name,
        headers={"authorization": f"Bearer {token}"},
    )
    print(_line(destination), file=out)
    print(f"Next: claude-otel destination test {destination.id}", file=out)
    return 0


def _line(destination: Any) -> str:
    """One destination, as `list` prints it: never a header's value (the API returns none)."""
    state = destination.state.type + (f" ({destination.state.reason.type})" if destination.state.type == "disabled" else "")
    health = destination.delivery_health
    last = (f"last error {health.last_error} at {health.last_error_at:%Y-%m-%d %H:%M:%S}Z" if health.last_error_at
            and (not health.last_success_at or health.last_error_at > health.last_success_at)
            else f"last delivery {health.last_success_at:%Y-%m-%d %H:%M:%S}Z" if health.last_success_at else "no delivery yet")  # fmt: skip
    name = f" {destination.display_name!r}" if destination.display_name else ""
    return f"{destination.id}{name}  {state}  {destination.endpoint_url}  headers: {', '.join(destination.header_names) or '-'}  {last}"


def _fail(message: str) -> int:
    print(f"claude-otel destination: {message}", file=sys.stderr)
    return 2
