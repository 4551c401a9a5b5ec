"""What the demo tells a newcomer to try next, as commands that run when pasted.

A pasted command fails when it names a program that is not on PATH (the demo usually
runs as `.venv/bin/relay-demo` from an inactive virtualenv) or holds a placeholder
(`tickets/ID/resolve`). So every program is named by its full path, beside the Python
that runs the demo, and every id, path and token is the real one.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODULES = {"relay-agent": "agent.cli", "relay-center": "center.cli"}


def program(name: str) -> str:
    """The installed entry point beside this Python, else `python -m` its module."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m {MODULES[name]}"


def protection_ticket(tickets: list[dict[str, Any]]) -> int | None:
    """The open protection-operation ticket, the one that waits for a person."""
    for doc in sorted(tickets, key=lambda d: d["id"]):
        if doc.get("fault_class") == "protection_operation" and doc["state"] == "open":
            return int(doc["id"])
    return None


@dataclass(frozen=True)
class Demo:
    """Where the demo's parts are, for the commands."""

    site: str
    gateway: str
    center_config: Path
    agent_config: Path
    api_url: str  # ".../api/v1"
    api_token: str
    poll_token_file: Path


def agent_status(demo: Demo) -> str:
    return f"{program('relay-agent')} status --config {shlex.quote(str(demo.agent_config))}"


def remote_poll(demo: Demo, device: str) -> str:
    return (
        f"{program('relay-center')} poll {demo.site} {device} --gateway {demo.gateway} "
        f"--what identity --config {shlex.quote(str(demo.center_config))} "
        f"--token-file {shlex.quote(str(demo.poll_token_file))}"
    )


def resolve(demo: Demo, ticket: int) -> str:
    body = shlex.quote('{"root_cause": "line_fault", "note": "cleared by the demo"}')
    return (
        f"curl -sS --fail-with-body -X POST "
        f"-H {shlex.quote('Authorization: Bearer ' + demo.api_token)} "
        f"-H 'Content-Type: application/json' -d {body} "
        f"{demo.api_url}/tickets/{ticket}/resolve"
    )


def approve_settings(demo: Demo, device: str) -> str:
    return (
        f"{program('relay-center')} baseline approve settings --site {demo.site} "
        f"--device {device} --reason 'new CT ratio' "
        f"--config {shlex.quote(str(demo.center_config))}"
    )
