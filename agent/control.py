"""On-demand polls inside the daemon, and the local control socket that serves them.

Engineers read a relay's identity, recent events, settings or status *through the
running daemon*, so the request shares the daemon's link (a relay often accepts one
104 master; an RS-485 bus tolerates one). `OnDemand` is the single entry point for
both the local socket (here) and remote requests from the center (`agent/remote.py`):

- it finds the link that serves the device and calls its running driver's `poll`;
- it allows one on-demand request per link at a time (the driver's own cyclic work
  keeps running; on a serial bus the driver orders our request before its cyclic polls
  but after event collection, see docs/polling.md);
- it bounds every request by a timeout;
- it audits every request, whatever its result (`agent/audit.py`).

It only ever calls `Driver.poll`, which is read-only by contract: there is no write
path here to misuse.

The socket speaks JSON lines: one request object per line, one answer per line, several
requests per connection (`relay-agent snapshot --all` uses one connection). The socket
is mode 0660: the daemon's user and group only. Who asked is taken from the kernel
(SO_PEERCRED), not from the request.
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
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.audit import Auditor
from agent.poll_answer import audit_outcome, make_answer, read_kinds
from gateway.rpc import MAX_TIMEOUT_S, PollAnswer, PollFailed, PollReply, expand_what

if TYPE_CHECKING:
    from agent.daemon import AgentDaemon
    from agent.supervisor import LinkSupervisor

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
MAX_LINE = 64 * 1024  # a request is small; an answer may be large (settings)
IDLE_S = 300.0  # a client that says nothing for this long is dropped


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class OnDemand:
    """The daemon's on-demand poll service (local socket and remote requests)."""

    def __init__(self, daemon: AgentDaemon, auditor: Auditor) -> None:
        self.daemon = daemon
        self.auditor = auditor
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def default_timeout_s(self) -> float:
        return self.daemon.config.control.poll_timeout_s

    def _supervisor_for(self, device: str) -> LinkSupervisor:
        configured = {d.id: d for d in self.daemon.config.devices}
        if device not in configured:
            raise PollFailed("unknown_device", f"unknown device {device!r} on this gateway")
        if not configured[device].enabled:
            raise PollFailed("disabled", f"device {device} is disabled in the config")
        for sup in self.daemon.supervisors:
            if device in sup.device_ids:
                return sup
        raise PollFailed("link", f"device {device}: the daemon has not started its link yet")

    async def poll(
        self,
        device: str,
        what: str,
        *,
        actor: str,
        origin: Literal["local", "remote"],
        timeout_s: float | None = None,
    ) -> PollAnswer:
        """Poll and audit. Raises `PollFailed`; returns the answer (see docs/polling.md)."""
        known = any(d.id == device for d in self.daemon.config.devices)
        try:
            answer = await self._poll(device, what, timeout_s or self.default_timeout_s)
        except PollFailed as exc:
            await self.auditor.record(
                actor=actor,
                origin=origin,
                action="poll",
                device=device if known else None,
                what=what,
                result="refused" if exc.code == "refused" else "error",
                error=f"{exc.code}: {exc.message}",
            )
            raise
        result, error = audit_outcome(answer)
        await self.auditor.record(
            actor=actor, origin=origin, action="poll", device=device, what=what,
            result=result, error=error,
        )  # fmt: skip
        return answer

    async def _poll(self, device: str, what: str, timeout_s: float) -> PollAnswer:
        kinds = expand_what(what)
        sup = self._supervisor_for(device)
        lock = self._locks.setdefault(sup.plan.key, asyncio.Lock())
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s), lock:
                driver = sup.status.driver
                if driver is None or not sup.status.running:
                    last = sup.status.last_error
                    raise PollFailed(
                        "link",
                        f"link {sup.plan.key} is not running" + (f" ({last})" if last else ""),
                    )
                results, errors = await read_kinds(driver, sup.plan.protocol, device, kinds)
        except TimeoutError:
            raise PollFailed(
                "timeout", f"device {device} did not answer within {timeout_s:g} s"
            ) from None
        status = self.daemon.pipeline.status.get(device) if self.daemon.pipeline else None
        cfg = self.daemon.config.agent
        return make_answer(
            site=cfg.site,
            gateway_id=cfg.gateway_id,
            device=device,
            what=what,
            started=started,
            link_up=status.link_up if status else None,
            results=results,
            errors=errors,
            profile=self.daemon.loaded.profiles.get(device),
        )

    def status(self) -> dict[str, Any]:
        """What `relay-agent status` shows: the agent's view, no device is asked."""
        d = self.daemon
        pipeline = d.pipeline
        links = {dev: sup for sup in d.supervisors for dev in sup.device_ids}
        devices = []
        for device in d.config.devices:
            st = pipeline.status.get(device.id) if pipeline else None
            sup = links.get(device.id)
            devices.append(
                {
                    "device": device.id,
                    "protocol": str(getattr(device, "protocol", "?")),
                    "enabled": device.enabled,
                    "link": sup.plan.key if sup else None,
                    "link_running": bool(sup and sup.status.running),
                    "link_restarts": sup.status.restarts if sup else 0,
                    "link_error": sup.status.last_error if sup else "",
                    "link_up": st.link_up if st else None,
                    "link_reason": st.link_reason if st else "",
                    "link_changed": _iso(st.link_changed) if st else None,
                    "last_event": st.last_event if st else None,
                    "last_event_time": _iso(st.last_event_time) if st else None,
                    "events": st.events if st else 0,
                }
            )
        uplink = d.uplink
        broker = d.config.broker
        return {
            "site": d.config.agent.site,
            "gateway_id": d.config.agent.gateway_id,
            "session": d.outbox.session,
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "connected": bool(uplink and uplink.stats.connected),
                "connections": uplink.stats.connections if uplink else 0,
                "records_published": uplink.stats.records_published if uplink else 0,
                "records_acknowledged": uplink.forwarder.acked if uplink else 0,
                "last_error": uplink.stats.last_error if uplink else "",
            },
            "outbox": {
                "path": str(d.outbox.path),
                "depth": d.outbox.depth,
                "bytes": d.outbox.size_bytes,
                "oldest_age_s": round(d.outbox.oldest_age(), 3),
                "unavailable": d.outbox.unavailable,
            },
            "devices": devices,
            "counters": dict(pipeline.counters) if pipeline else {},
        }


# --- the Unix socket ----------------------------------------------------------------------


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


def install(daemon: AgentDaemon) -> OnDemand:
    """Give a daemon its on-demand service: the control socket, and remote requests when
    `[remote] enabled`. Called from `AgentDaemon.__init__`, so a bad tokens file fails
    before any port opens."""
    from agent.remote import install_remote

    async def append(record: Any, device_id: str | None) -> None:
        assert daemon.pipeline is not None, "the daemon is not running"
        await daemon.pipeline.append_record(record, device_id)

    cfg = daemon.config
    ondemand = OnDemand(daemon, Auditor(cfg.agent.site, cfg.agent.gateway_id, append))
    daemon.extra_tasks.append(lambda d: ControlServer(d.config.control_socket, ondemand).serve())
    install_remote(daemon, ondemand)
    return ondemand
