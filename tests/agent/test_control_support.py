"""Shared pieces of the on-demand poll tests (no tests here): a fake relay driver, an
agent config writer, and a running daemon.

The fake answers with the typed poll results every driver returns (`protocols.driver`).
It replaces the iec104 driver factory in the registry (an object-level patch of
the registry dict, not a string-path mock), so the daemon, its config validation,
profiles, supervisors and outbox are all real."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.config import LoadedConfig, load_config
from agent.daemon import AgentDaemon
from gateway import wire
from gateway.outbox import Outbox
from protocols import registry
from protocols.driver import (
    EventsResult,
    IdentityResult,
    ObservationSink,
    PolledPoint,
    PollKind,
    PollResult,
    SettingsResult,
    StatusResult,
)
from protocols.errors import LinkError
from protocols.observations import LinkStateObservation, PointObservation, SettingValue
from protocols.registry import LinkPlan

TOKEN = "ops-token-0123456789abcdef"

IDENTITY: dict[str, Any] = {
    "manufacturer": "Demo Relays",
    "model": "LP-900",
    "firmware_version": "4.7.1",
}
SETTINGS = (
    SettingValue("zone1_reach", 80.0, "%", "1"),
    SettingValue("zone2_delay", 0.3, "s", "1"),
    SettingValue("zone2_reach", 120.0, "%", "1"),
    SettingValue("station_name", "North", None, "2"),
)


def at(ms: int) -> datetime:
    return datetime(2026, 3, 1, 8, 15, 30, ms * 1000, tzinfo=UTC)


# Received out of time order (a relay may send buffered events after newer ones);
# 1011 and 1001 are in the line-protection profile, 9999 is not.
RECEIVED = (
    PolledPoint("1011", True, device_time=at(120), cause="spontaneous"),
    PolledPoint("9999", 1, device_time=None, cause="spontaneous"),
    PolledPoint("1001", True, ("NT",), device_time=at(100), cause="spontaneous"),
    PolledPoint("1011", False, device_time=at(900), cause="spontaneous"),
)


class FakeRelay:
    """A driver for one or more fake relays: link up at once, one trip event on
    connect, and answers to polls. Device `mute` never answers (LinkError), `slow`
    takes forever, `nolog` keeps no events (ValueError, the driver cannot serve them),
    `half` answers identity only (the rest: LinkError), and `drops` loses its link while
    it answers."""

    instances: list[FakeRelay] = []

    def __init__(self, plan: LinkPlan) -> None:
        self.plan = plan
        self.polls: list[tuple[str, str]] = []
        self.running = False
        self.sink: ObservationSink | None = None
        FakeRelay.instances.append(self)

    @property
    def device_ids(self) -> Sequence[str]:
        return [d.config.id for d in self.plan.devices]

    async def run(self, sink: ObservationSink) -> None:
        self.running, self.sink = True, sink
        try:
            # One delivery: the trip is stored by the time anyone sees the link up.
            await sink.deliver(
                [
                    *(LinkStateObservation(d, True) for d in self.device_ids),
                    PointObservation(self.device_ids[0], "1011", True),
                ]
            )
            await asyncio.Event().wait()
        finally:
            self.running = False

    async def poll(self, device_id: str, kind: PollKind) -> PollResult:
        self.polls.append((device_id, kind))
        if device_id not in self.device_ids:
            raise KeyError(device_id)
        if device_id == "mute" or (device_id == "half" and kind != PollKind.IDENTITY):
            raise LinkError("no answer from the relay")
        if device_id == "slow":
            await asyncio.sleep(3600)
        if device_id == "drops" and self.sink is not None:
            await self.sink.deliver([LinkStateObservation(device_id, False, "connection reset")])
        if kind == PollKind.IDENTITY:
            return IdentityResult(device_id, **IDENTITY)
        if kind == PollKind.SETTINGS:
            return SettingsResult(SETTINGS, source="fake registers")
        if kind == PollKind.STATUS:
            return StatusResult(
                points=(PolledPoint("1031", True), PolledPoint("1101", False, ("IV",))),
                measurements=(PolledPoint("2001", 412.5),),
                counters={"received": 3, "link": "tcp 127.0.0.1"},
            )
        if device_id == "nolog":
            raise ValueError("this relay keeps no event log readable on demand")
        return EventsResult.in_time_order(RECEIVED, source="received since connect")


@pytest.fixture(name="fake_relays")
def fake_relays_fixture(monkeypatch: pytest.MonkeyPatch) -> type[FakeRelay]:
    spec = dataclasses.replace(registry.get("iec104"), make_driver=FakeRelay)
    monkeypatch.setitem(registry.protocols(), "iec104", spec)
    FakeRelay.instances = []
    return FakeRelay


@pytest.fixture(name="short_dir")
def short_dir_fixture() -> Iterator[Path]:
    """Unix socket paths must stay under 108 bytes; pytest's tmp_path may not."""
    path = Path(tempfile.mkdtemp(prefix="rp", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_config(
    root: Path,
    broker_port: int,
    devices: Sequence[str] = ("line1", "line2"),
    remote: bool = False,
    extra: str = "",
    broker: Sequence[str] = (),
    remote_limits: Sequence[str] = (),
) -> LoadedConfig:
    """`broker`, `remote_limits`: more lines for those sections ("max_in_flight = 3")."""
    lines = [
        "[agent]",
        'site = "north"',
        'gateway_id = "gw1"',
        f'state_dir = "{root / "state"}"',
        "[broker]",
        'host = "127.0.0.1"',
        f"port = {broker_port}",
        "reconnect_max_s = 1",
        *broker,
        "[control]",
        f'socket = "{root / "c.sock"}"',
        "poll_timeout_s = 3",
    ]
    if remote:
        tokens = root / "tokens"
        tokens.write_text(f"# name:token\nops:{TOKEN}\n")
        lines += ["[remote]", "enabled = true", f'tokens_file = "{tokens}"', *remote_limits]
    for i, device in enumerate(devices, 1):
        lines += [
            "[[devices]]",
            f'id = "{device}"',
            'protocol = "iec104"',
            'profile = "line-protection"',
            'host = "127.0.0.1"',
            f"port = {24000 + i}",
            f"common_address = {i}",
        ]
    path = root / "agent.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return load_config(path)


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(loaded: LoadedConfig, broker: bool = False) -> AsyncIterator[AgentDaemon]:
    """A daemon with its links up and its control socket ready (and its broker
    session, when `broker`)."""
    daemon = AgentDaemon(loaded)
    task = asyncio.create_task(daemon.run())
    try:

        def ready() -> bool:
            if task.done():
                task.result()  # raise what stopped it
            pipeline = daemon.pipeline
            return (
                pipeline is not None
                and loaded.config.control_socket.exists()
                and all(s.link_up for s in pipeline.status.values())
                and (not broker or bool(daemon.uplink and daemon.uplink.stats.connected))
            )

        await wait_until(ready, what="the daemon")
        yield daemon
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def outbox_records(daemon_or_path: AgentDaemon | Path) -> list[Any]:
    """Records waiting in an outbox (a running daemon's, or a closed one's file)."""
    if isinstance(daemon_or_path, AgentDaemon):
        rows = daemon_or_path.outbox.read(10_000)
    else:
        box = Outbox(daemon_or_path)
        box.open()
        try:
            rows = box.read(10_000)
        finally:
            box.close()
    if not rows:
        return []
    payload = wire.encode_envelope([wire.stamp(r.body, r.session, r.seq) for r in rows])
    return wire.decode_envelope(payload)


def audits(records: list[Any]) -> list[wire.Audit]:
    return [r for r in records if isinstance(r, wire.Audit)]
