"""`relay-agent poll | status | snapshot`: the engineer's side of on-demand reads.

By default these talk to the running daemon over its control socket (`agent/cli/client.py`),
so they share its links. `--direct` opens the device itself, for when no daemon runs
(agent/ondemand/direct.py; the trade-offs are in docs/polling.md): it refuses while a daemon
answers, because two masters on one relay or one RS-485 bus disturb both.

Output: readable rows for people (`gateway/poll_view.py`, the same view as `relay-center
poll`), `--json` for scripts (stdout only; progress and errors go to stderr). Exit codes
(`gateway/rpc.py`): 0 ok; 1 the device cannot be reached, or any part asked for failed;
2 usage or config error; 3 no daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from agent.cli.client import (
    DEFAULT_CONFIG,
    EXIT_NO_DAEMON,
    NoDaemon,
    connect,
    daemon_answers,
    socket_path,
)
from agent.ondemand.direct import DirectError, local_actor, poll_direct
from common.errors import ConfigError
from gateway.poll_view import format_time, render_answer, table, verdict
from gateway.rpc import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    WHAT_CHOICES,
    PollReply,
)

# --- formatting ---------------------------------------------------------------------------


def _link_text(dev: dict[str, Any]) -> str:
    if not dev["enabled"]:
        return "disabled"
    if dev["link_up"] is True:
        return "up"
    if dev["link_up"] is False:
        return f"down ({dev['link_reason']})" if dev["link_reason"] else "down"
    if not dev["link_running"] and dev["link_error"]:
        return f"restarting ({dev['link_error']})"
    return "connecting"


def render_status(status: dict[str, Any]) -> list[str]:
    broker, outbox = status["broker"], status["outbox"]
    state = "connected" if broker["connected"] else "NOT CONNECTED"
    err = (
        f", last error: {broker['last_error']}"
        if broker["last_error"] and not broker["connected"]
        else ""
    )
    lines = [
        f"gateway {status['gateway_id']}, site {status['site']}, session {status['session']}",
        f"broker  {broker['host']}:{broker['port']} {state} "
        f"({broker['connections']} connections, {broker['records_published']} records sent, "
        f"{broker.get('records_acknowledged', 0)} acknowledged by the center{err})",
        f"outbox  {outbox['depth']} records waiting, oldest {outbox['oldest_age_s']:.1f} s "
        f"({outbox['path']})",
        *([f"outbox  CANNOT STORE: {outbox['unavailable']}"] if outbox.get("unavailable") else []),
        "",
    ]
    rows = [
        [d["device"], d["protocol"], _link_text(d), _time(d["link_changed"]), d["last_event"],
         _time(d["last_event_time"]), d["events"]]
        for d in status["devices"]
    ]  # fmt: skip
    headers = ["device", "protocol", "link", "since", "last event", "at", "events"]
    return lines + table(headers, rows)


def _time(iso: str | None) -> str | None:
    return format_time(datetime.fromisoformat(iso)) if iso else None


def emit(lines: list[str], out: TextIO) -> None:
    out.write("\n".join(lines) + "\n")


def emit_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


# --- commands -----------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"relay-agent: {message}\n")
    return code


def cmd_poll(args: argparse.Namespace) -> int:
    try:
        if args.direct:
            return _poll_direct(args)
        return asyncio.run(_poll_daemon(args, socket_path(args)))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except NoDaemon as exc:
        hint = "" if args.direct else " (is relay-agent running? --direct opens the device itself)"
        return _fail(f"{exc}{hint}", EXIT_NO_DAEMON)


async def _poll_daemon(args: argparse.Namespace, path: Path) -> int:
    async with connect(path) as client:
        reply = await client.poll(args.device, args.what, args.timeout)
    return _print_reply(args, reply)


def _print_reply(args: argparse.Namespace, reply: PollReply) -> int:
    """The answer on stdout; why it failed on stderr. Exit 1 when the device cannot be
    reached or any part asked for failed, though the parts that worked are shown."""
    if args.json:
        emit_json(reply.model_dump(mode="json"), sys.stdout)
    if reply.answer is None:
        sys.stderr.write(f"relay-agent: {args.device}: {reply.code}: {reply.error}\n")
        return EXIT_FAILED
    if not args.json:
        emit(render_answer(reply.answer), sys.stdout)
    problem = verdict(reply.answer)
    if problem:
        sys.stderr.write(f"relay-agent: {problem}\n")
        return EXIT_FAILED
    return EXIT_OK


def _poll_direct(args: argparse.Namespace) -> int:
    from agent.config import load_config

    loaded = load_config(Path(args.config) if args.config else DEFAULT_CONFIG)
    if daemon_answers(loaded.config.control_socket):
        return _fail("the daemon is running and owns the links: poll without --direct", EXIT_USAGE)
    try:
        reply = asyncio.run(
            poll_direct(
                loaded, [args.device], args.what, timeout_s=args.timeout, actor=local_actor()
            )
        )
    except DirectError as exc:
        return _fail(str(exc), EXIT_USAGE)
    return _print_reply(args, reply[args.device])


def cmd_status(args: argparse.Namespace) -> int:
    try:
        reply = asyncio.run(_status(socket_path(args)))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except NoDaemon as exc:
        return _fail(f"{exc} (is relay-agent running?)", EXIT_NO_DAEMON)
    if args.json:
        emit_json(reply["status"], sys.stdout)
    else:
        emit(render_status(reply["status"]), sys.stdout)
    return EXIT_OK


async def _status(path: Path) -> dict[str, Any]:
    async with connect(path) as client:
        return await client.request({"op": "status"})


def cmd_snapshot(args: argparse.Namespace) -> int:
    if not args.all and not args.devices:
        return _fail("name devices or pass --all", EXIT_USAGE)
    try:
        if args.direct:
            results = _snapshot_direct(args)
        else:
            results = asyncio.run(_snapshot_daemon(args, socket_path(args)))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except NoDaemon as exc:
        return _fail(str(exc), EXIT_NO_DAEMON)
    if args.output:
        out_dir = Path(args.output)
        out_dir.mkdir(parents=True, exist_ok=True)
        for device, reply in results.items():
            if reply.answer is not None:
                (out_dir / f"{device}.json").write_text(reply.answer.model_dump_json(indent=2))
    if args.json:
        emit_json({d: r.model_dump(mode="json") for d, r in results.items()}, sys.stdout)
    else:
        rows = [[d, _outcome(r), _count(r)] for d, r in results.items()]
        emit(table(["device", "result", "settings"], rows), sys.stdout)
    return EXIT_OK if all(_outcome(r) == "ok" for r in results.values()) else EXIT_FAILED


def _outcome(reply: PollReply) -> str:
    if reply.answer is None:
        return f"{reply.code}: {reply.error}"
    return verdict(reply.answer) or "ok"


def _count(reply: PollReply) -> int | None:
    """How many settings the device has (not how many parts the answer has)."""
    part = reply.answer.result.settings if reply.answer is not None else None
    return len(part.settings) if part is not None else None


class Progress:
    """One line per device on stderr: readable in a terminal and in a log alike."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total, self.done, self.out = total, 0, out or sys.stderr
        self.started = time.monotonic()

    def start(self, device: str) -> float:
        self.out.write(f"[{self.done + 1}/{self.total}] {device}: reading settings …\n")
        self.out.flush()
        return time.monotonic()

    def finish(self, device: str, reply: PollReply, since: float) -> None:
        self.done += 1
        took = time.monotonic() - since
        outcome, count = _outcome(reply), _count(reply)
        if outcome == "ok":
            what = f"{count} settings" if count is not None else "ok"
            self.out.write(f"[{self.done}/{self.total}] {device}: {what} in {took:.1f} s\n")
        else:
            self.out.write(f"[{self.done}/{self.total}] {device}: FAILED {outcome}\n")
        if self.done == self.total:
            self.out.write(
                f"done: {self.total} devices in {time.monotonic() - self.started:.1f} s\n"
            )
        self.out.flush()


async def _snapshot_daemon(args: argparse.Namespace, path: Path) -> dict[str, PollReply]:
    async with connect(path) as client:
        devices = list(args.devices)
        if args.all:
            status = (await client.request({"op": "status"}))["status"]
            devices = [d["device"] for d in status["devices"] if d["enabled"]]
        progress = Progress(len(devices))
        results: dict[str, PollReply] = {}
        for device in devices:
            since = progress.start(device)
            results[device] = await client.poll(device, "settings", args.timeout)
            progress.finish(device, results[device], since)
        return results


def _snapshot_direct(args: argparse.Namespace) -> dict[str, PollReply]:
    from agent.config import load_config

    loaded = load_config(Path(args.config) if args.config else DEFAULT_CONFIG)
    if daemon_answers(loaded.config.control_socket):
        raise NoDaemon("the daemon is running and owns the links: snapshot without --direct")
    devices = list(args.devices) or [d.id for d in loaded.config.devices if d.enabled]
    progress = Progress(len(devices))
    return asyncio.run(
        poll_direct(
            loaded,
            devices,
            "settings",
            timeout_s=args.timeout,
            actor=local_actor(),
            progress=progress,
        )
    )


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"agent config (default {DEFAULT_CONFIG})")
    parser.add_argument("--socket", help="the daemon's control socket (default: from config)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, for scripts")
    parser.add_argument("--timeout", type=float, default=None, help="seconds (default: config)")


def add_commands(sub: Any) -> None:
    """Register `poll`, `status` and `snapshot` on relay-agent's subcommands."""
    poll = sub.add_parser("poll", help="read a device now (identity, events, settings, status)")
    poll.add_argument("device")
    poll.add_argument("--what", choices=WHAT_CHOICES, default="all")
    poll.add_argument("--direct", action="store_true", help="open the device (no daemon)")
    _where(poll)
    poll.set_defaults(func=cmd_poll)

    status = sub.add_parser("status", help="devices, links, last events, outbox, broker")
    status.add_argument("--config", help=f"agent config (default {DEFAULT_CONFIG})")
    status.add_argument("--socket", help="the daemon's control socket (default: from config)")
    status.add_argument("--json", action="store_true", help="JSON on stdout, for scripts")
    status.set_defaults(func=cmd_status)

    snap = sub.add_parser("snapshot", help="read the settings of devices, with progress")
    snap.add_argument("devices", nargs="*")
    snap.add_argument("--all", action="store_true", help="every enabled device")
    snap.add_argument("--output", help="write DEVICE.json per device into this directory")
    snap.add_argument("--direct", action="store_true", help="open the devices (no daemon)")
    _where(snap)
    snap.set_defaults(func=cmd_snapshot)
