"""A simulated 103 bus on a pty and a driver polling it, with a recording sink."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from profiles.model import Profile
from protocols.config import SerialBusConfig
from protocols.iec103.config import Iec103Device
from protocols.iec103.driver import Iec103Driver
from protocols.observations import Observation, PointObservation
from protocols.profile_loader import load_named
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.iec103.relay import Iec103Relay, make_relay
from simulator.scenario import IdentitySpec, RelaySpec

PROFILE = "line-protection-103"


class RecordingSink:
    """Stores observations; `on_deliver` runs before storing (to check ack ordering, or
    raise: a failing commit). `stalled` makes the commits `stall_when` picks wait until
    it is set (a disk that hangs)."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.on_deliver: Callable[[Sequence[Observation]], None] | None = None
        self.delay_s = 0.0
        self.stalled: asyncio.Event | None = None
        self.stall_when: Callable[[Sequence[Observation]], bool] = lambda _: True
        self.waiting = 0  # commits waiting on `stalled`

    async def deliver(self, observations: Sequence[Observation]) -> None:
        if self.on_deliver:
            self.on_deliver(observations)
        if self.stalled is not None and self.stall_when(observations):
            self.waiting += 1
            try:
                await self.stalled.wait()
            finally:
                self.waiting -= 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow disk: the FCB must wait for it
        self.observations.extend(observations)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        self.observations.extend(observations)

    def of(self, kind: type, device_id: str | None = None) -> list[Any]:
        return [
            o
            for o in self.observations
            if isinstance(o, kind) and (device_id is None or o.device_id == device_id)
        ]

    def events(self, device_id: str, cause: str = "spontaneous") -> list[PointObservation]:
        """Non-measurands by cause, or by the protocol's name of it (`cause_raw`)."""
        return [
            o
            for o in self.of(PointObservation, device_id)
            if not o.measurement and cause in (o.cause, o.cause_raw)
        ]


@dataclass
class Bench:
    relays: dict[str, Iec103Relay]
    driver: Iec103Driver
    sink: RecordingSink
    profile: Profile
    task: asyncio.Task[None] | None = None
    devices: list[Iec103Device] = field(default_factory=list)
    plan: LinkPlan | None = None  # to start another driver on the same bus (a restart)

    async def until(self, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if self.task is not None and self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                raise AssertionError("condition not met before the deadline")
            await asyncio.sleep(0.02)


async def make_bench(
    tmp_path: Path,
    addresses: Sequence[int] = (1, 2),
    state_dir: Path | None = None,
    **device: Any,
) -> Bench:
    profile = load_named(PROFILE)
    port = str(tmp_path / "rs485")
    relays: dict[str, Iec103Relay] = {}
    for la in addresses:
        spec = RelaySpec(
            id=f"relay{la}",
            protocol="iec103",
            profile=PROFILE,
            link={"port": port, "link_address": la, "common_address": la},
            identity=IdentitySpec(manufacturer="DEMO", firmware_version="V4.7"),
            settings={"zone1_reach": 4.2, "zone1_time": 0.0, "station_name": "North"},
        )
        relay = make_relay(spec, profile)
        await relay.start()
        relays[spec.id] = relay
    bus = SerialBusConfig(id="rs485", port=port, baudrate=19200, parity="N", timeout_ms=150)
    options: dict[str, Any] = {
        "poll_interval_ms": 20,
        "offline_retry_s": 0.3,
        "measurand_interval_s": 0.0,
        **device,
    }
    devices = [
        Iec103Device(
            id=f"relay{la}",
            profile=PROFILE,
            protocol="iec103",
            bus="rs485",
            link_address=la,
            common_address=la,
            **options,
        )
        for la in addresses
    ]
    planned = tuple(PlannedDevice(d, profile.section) for d in devices)
    plan = LinkPlan("iec103:rs485", "iec103", planned, bus, state_dir=state_dir)
    return Bench(relays, Iec103Driver(plan), RecordingSink(), profile, devices=devices, plan=plan)


@contextlib.asynccontextmanager
async def running(bench: Bench) -> AsyncIterator[Bench]:
    """The driver polling the bench's relays; both stopped on exit."""
    bench.task = asyncio.create_task(bench.driver.run(bench.sink))
    try:
        yield bench
    finally:
        bench.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bench.task
        for relay in bench.relays.values():
            await relay.stop()


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    async with running(await make_bench(tmp_path, allow_commands=True, time_sync=True)) as b:
        yield b
