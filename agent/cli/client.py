"""Talking to the running daemon over its control socket (`agent/ondemand/control_socket.py`):
one connection, JSON lines, several requests in turn. Where the socket is: `--socket`, else
the config's, else the default path."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent.ondemand.direct import claimed_user
from gateway.rpc import EXIT_UNREACHABLE, PollReply

DEFAULT_CONFIG = Path(os.environ.get("RELAY_AGENT_CONFIG", "/etc/relay-agent/agent.toml"))
DEFAULT_SOCKET = Path("/var/lib/relay-agent/control.sock")
ANSWER_LIMIT = 64 * 1024 * 1024  # a settings dump can be large
EXIT_NO_DAEMON = EXIT_UNREACHABLE


class NoDaemon(Exception):
    """Nothing answers on the control socket."""


class DaemonClient:
    """One connection to the control socket; several requests in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        self.writer.write(json.dumps(body).encode() + b"\n")
        await self.writer.drain()
        line = await self.reader.readline()
        if not line:
            raise NoDaemon("the daemon closed the connection")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def poll(self, device: str, what: str, timeout_s: float | None) -> PollReply:
        body: dict[str, Any] = {"op": "poll", "device": device, "what": what}
        body["actor"] = claimed_user()
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        return PollReply.model_validate(await self.request(body))


@asynccontextmanager
async def connect(path: Path) -> AsyncIterator[DaemonClient]:
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=ANSWER_LIMIT)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise NoDaemon(f"no agent daemon answers on {path} ({exc.strerror})") from None
    except PermissionError:
        raise NoDaemon(
            f"permission denied on {path}: join the daemon's group (socket mode 0660)"
        ) from None
    try:
        yield DaemonClient(reader, writer)
    finally:
        writer.close()


def daemon_answers(path: Path) -> bool:
    async def probe() -> bool:
        try:
            async with connect(path):
                return True
        except NoDaemon:
            return False

    return asyncio.run(probe())


def socket_path(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    config = Path(args.config) if args.config else DEFAULT_CONFIG
    if args.config or config.exists():
        from agent.config import load_config

        return load_config(config).config.control_socket
    return DEFAULT_SOCKET
