"""The daemon's local control socket: serves `OnDemand` (`agent/ondemand/service.py`) to
`relay-agent poll | status | snapshot` on this gateway.

The socket speaks JSON lines: one request object per line, one answer per line, several
requests per connection (`relay-agent snapshot --all` uses one connection). It is mode
0660: the daemon's user and group only. Who asked is taken from the kernel (SO_PEERCRED),
not from the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import socket
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gateway.rpc import MAX_TIMEOUT_S, PollFailed, PollReply

if TYPE_CHECKING:
    from agent.ondemand.service import OnDemand

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
MAX_LINE = 64 * 1024  # a request is small; an answer may be large (settings)
IDLE_S = 300.0  # a client that says nothing for this long is dropped


def peer_actor(writer: asyncio.StreamWriter, claimed: object) -> str:
    """The local user behind a connection, from the kernel; a differing claimed name
    (e.g. the engineer behind `sudo`) is kept beside it, never instead of it."""
    sock = writer.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = f"uid:{uid}"
    except (OSError, AttributeError):
        name = "unknown-local-user"
    if isinstance(claimed, str) and claimed and claimed != name:
        return f"{name} (for {claimed})"
    return name


class ControlServer:
    """Serves `OnDemand` on a Unix socket until cancelled; removes the socket on exit."""

    def __init__(self, path: Path, ondemand: OnDemand) -> None:
        self.path = path
        self.ondemand = ondemand

    def _clear_stale(self) -> None:
        """A socket file left by a crashed daemon is removed; one a live daemon still
        answers on means two daemons share a state directory: refuse to start."""
        if not self.path.exists() and not self.path.is_symlink():
            return
        if not stat.S_ISSOCK(self.path.lstat().st_mode):
            raise RuntimeError(f"control socket path {self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink()
            return
        finally:
            probe.close()
        raise RuntimeError(f"another agent is serving {self.path}: one daemon per state dir")

    def _bind(self) -> socket.socket:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The socket file is born 0660: no window in which anyone else could connect.
        # (umask is process-wide, but only files created in this instant see 0117.)
        old_umask = os.umask(0o117)
        try:
            sock.bind(str(self.path))
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)
        return sock

    async def serve(self) -> None:
        """A socket that cannot be made (path too long, no permission) disables local
        polls but not the daemon: collecting events matters more. A live daemon on the
        same socket is fatal (RuntimeError): two daemons must not share a state dir."""
        try:
            sock = self._bind()
        except OSError as exc:
            log.error("control socket %s unavailable, local polls disabled: %s", self.path, exc)
            return
        server = await asyncio.start_unix_server(self._handle, sock=sock, limit=MAX_LINE)
        log.info("control socket %s ready (mode %o)", self.path, SOCKET_MODE)
        try:
            async with server:
                await server.serve_forever()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_S):
                        line = await reader.readline()
                except (TimeoutError, ValueError):  # idle, or a line over MAX_LINE
                    break
                if not line:
                    break
                answer = await self._answer(line, writer)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            log.debug("control client went away: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                await writer.wait_closed()

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return _failed("bad_request", f"not a JSON object: {exc}")
        op = request.get("op")
        if op == "status":
            return {"ok": True, "status": self.ondemand.status()}
        if op != "poll":
            return _failed("bad_request", f"unknown op {op!r}")
        device, what = request.get("device"), request.get("what", "all")
        timeout = request.get("timeout_s")
        if not isinstance(device, str) or not isinstance(what, str):
            return _failed("bad_request", "device and what must be strings")
        if timeout is not None and not (
            isinstance(timeout, int | float) and 0 < timeout <= MAX_TIMEOUT_S
        ):
            return _failed("bad_request", f"timeout_s must be in (0, {MAX_TIMEOUT_S:g}]")
        try:
            answer = await self.ondemand.poll(
                device,
                what,
                actor=peer_actor(writer, request.get("actor")),
                origin="local",
                timeout_s=float(timeout) if timeout is not None else None,
            )
        except PollFailed as exc:
            return PollReply.failed(exc).model_dump(mode="json")
        return PollReply.answered(answer).model_dump(mode="json")


def _failed(code: Literal["bad_request"], message: str) -> dict[str, Any]:
    return PollReply.failed(PollFailed(code, message)).model_dump(mode="json")
