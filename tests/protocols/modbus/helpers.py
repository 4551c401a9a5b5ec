"""Small test doubles for the Modbus tests: a recording sink, plans, waiting, ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from profiles.model import Profile
from protocols.config import SerialBusConfig
from protocols.modbus.config import ModbusDevice
from protocols.observations import (
    ConditionObservation,
    LinkStateObservation,
    Observation,
    PointObservation,
)
from protocols.profile_loader import load_named
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.modbus.relay import ModbusRelay, make_relay
from simulator.scenario import RelaySpec
from tests.support.driver_run import running_driver

PROFILE = "feeder-protection-modbus"


class RecordingSink:
    """Keeps every delivered observation; `fail_next` makes deliveries fail (not durable)."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.fail_next = 0
        self.deliveries = 0

    async def deliver(self, observations: Sequence[Observation]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("outbox unavailable (test)")
        self.deliveries += 1
        self.observations.extend(observations)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        self.observations.extend(observations)

    def events(self, device_id: str | None = None) -> list[PointObservation]:
        return [
            o
            for o in self.observations
            if isinstance(o, PointObservation)
            and o.address.startswith("event:")
            and (device_id is None or o.device_id == device_id)
        ]

    def conditions(self, code: str) -> list[ConditionObservation]:
        return [
            o for o in self.observations if isinstance(o, ConditionObservation) and o.code == code
        ]

    def link_states(self, device_id: str) -> list[bool]:
        return [
            o.up
            for o in self.observations
            if isinstance(o, LinkStateObservation) and o.device_id == device_id
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    """Poll a condition with a deadline (never assert timings on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


def profile() -> Profile:
    return load_named(PROFILE)


def relay(relay_id: str, link: dict[str, Any], **spec: Any) -> ModbusRelay:
    return make_relay(
        RelaySpec(id=relay_id, protocol="modbus", profile=PROFILE, link=link, **spec), profile()
    )


FAST: dict[str, Any] = {
    "events_interval_s": 0.05,
    "status_interval_s": 0.05,
    "measurements_interval_s": 0.2,
    "identity_interval_s": 0.3,
    "settings_interval_s": 0.3,
    "timeout_ms": 300,
    "backoff_min_s": 0.1,
    "backoff_max_s": 0.5,
}


def tcp_device(device_id: str, port: int, unit: int = 1, **extra: Any) -> ModbusDevice:
    fields = {**FAST, **extra}
    return ModbusDevice(
        id=device_id, profile=PROFILE, protocol="modbus", host="127.0.0.1", port=port,
        unit_id=unit, **fields,
    )  # fmt: skip


def rtu_device(device_id: str, bus: str, unit: int, **extra: Any) -> ModbusDevice:
    fields = {**FAST, **extra}
    return ModbusDevice(
        id=device_id, profile=PROFILE, protocol="modbus", transport="rtu", bus=bus,
        unit_id=unit, **fields,
    )  # fmt: skip


def plan(devices: Sequence[ModbusDevice], bus: SerialBusConfig | None = None) -> LinkPlan:
    section = profile().section
    return LinkPlan(
        key=devices[0].link_key,
        protocol="modbus",
        devices=tuple(PlannedDevice(d, section, ()) for d in devices),
        bus=bus,
    )


running = running_driver


def state_file(tmp_path: Path, device_id: str) -> Path:
    return tmp_path / "state" / f"{device_id}.json"


@contextlib.asynccontextmanager
async def served_relay(relay_id: str = "f1") -> AsyncIterator[tuple[ModbusRelay, int]]:
    """A feeder relay served over Modbus TCP on a free port, stopped afterwards."""
    port = free_port()
    sim = relay(relay_id, {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    try:
        yield sim, port
    finally:
        await sim.stop()
