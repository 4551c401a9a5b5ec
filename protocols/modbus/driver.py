"""The Modbus driver: one link (a TCP peer or a serial bus) and a poller per device on it.

The supervisor builds one `ModbusDriver` per `LinkPlan` and calls `run`; a lost connection
raises `LinkError` and the supervisor starts a fresh driver after its backoff. A unit that
stops answering is not a lost link: its poller marks it down and backs off on its own,
while the other units on the bus keep being polled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from protocols.driver import (
    DECODE_ERRORS,
    STANDARD_COUNTERS,
    TIMEOUTS,
    ObservationSink,
    PollKind,
    PollResult,
)
from protocols.errors import LinkError
from protocols.modbus.config import ModbusDevice
from protocols.modbus.link import ModbusLink
from protocols.modbus.poller import DevicePoller
from protocols.modbus.profile import ModbusProfile
from protocols.registry import LinkPlan

log = logging.getLogger(__name__)

DEFAULT_TCP_TIMEOUT_S = 1.0


def check_devices(devices: Sequence[ModbusDevice]) -> list[str]:
    """Cross-device rules for one link: unit ids are unique on a bus or TCP peer."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for device in devices:
        if device.unit_id in seen:
            problems.append(
                f"device {device.id!r}: unit_id {device.unit_id} is already used by "
                f"{seen[device.unit_id]!r} on {device.link_key}"
            )
        seen[device.unit_id] = device.id
    return problems


class ModbusDriver:
    def __init__(self, plan: LinkPlan, *, quiet_s: float = 0.02) -> None:
        devices = [p.config for p in plan.devices]
        if not all(isinstance(d, ModbusDevice) for d in devices):
            raise TypeError(f"{plan.key}: a Modbus driver takes Modbus devices only")
        modbus_devices = [d for d in devices if isinstance(d, ModbusDevice)]
        problems = check_devices(modbus_devices)
        if problems:
            raise ValueError("; ".join(problems))
        self.plan = plan
        first = modbus_devices[0]
        if first.transport == "tcp":
            self.link = ModbusLink(plan.key, host=first.host, port=first.port, quiet_s=quiet_s)
            default_timeout = DEFAULT_TCP_TIMEOUT_S
        else:
            if plan.bus is None:
                raise ValueError(f"{plan.key}: RTU devices need their bus in the plan")
            self.link = ModbusLink(plan.key, bus=plan.bus, quiet_s=quiet_s)
            default_timeout = plan.bus.timeout_ms / 1000
        self.pollers: dict[str, DevicePoller] = {}
        for planned in plan.devices:
            device = planned.config
            assert isinstance(device, ModbusDevice)
            section = planned.profile_section
            if section is not None and not isinstance(section, ModbusProfile):
                raise TypeError(f"{device.id}: profile section is not a Modbus profile")
            if device.state_file is None and plan.state_dir is not None:
                # The read position survives restarts in the agent's state directory.
                position = plan.state_dir / "modbus" / f"{device.id}.json"
                device = device.model_copy(update={"state_file": position})
            self.pollers[device.id] = DevicePoller(device, section, self.link, default_timeout)
        self._running = False

    @property
    def device_ids(self) -> Sequence[str]:
        return list(self.pollers)

    @property
    def counters(self) -> dict[str, dict[str, Any]]:
        """Per device: wire counters of its unit (malformed answers, timeouts, exceptions)
        and its poller's (overruns, events delivered and lost)."""
        out: dict[str, dict[str, Any]] = {}
        for device_id, poller in self.pollers.items():
            wire = self.link.unit_counters(poller.device.unit_id).as_dict()
            out[device_id] = {**wire, **poller.counters()}
        return out

    def device_counters(self) -> dict[str, dict[str, int]]:
        """The counters above as numbers, with the standard ones every driver reports:
        malformed answers and undecodable event records are decode errors, a unit that
        stayed silent a timeout."""
        out: dict[str, dict[str, int]] = {}
        for device_id, counters in self.counters.items():
            numbers = {
                k: int(v)
                for k, v in counters.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            numbers[DECODE_ERRORS] = numbers["malformed"] + numbers.get("events_undecodable", 0)
            numbers[TIMEOUTS] = numbers["no_response"]
            for name in STANDARD_COUNTERS:  # a unit never restarts alone: 0, named all the same
                numbers.setdefault(name, 0)
            out[device_id] = numbers
        return out

    async def run(self, sink: ObservationSink) -> None:
        await self.link.open()
        self._running = True
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.link.wait_lost(), name=f"{self.plan.key}:watch")
                for device_id, poller in self.pollers.items():
                    group.create_task(poller.run(sink), name=f"{self.plan.key}:{device_id}")
        except* LinkError as errors:
            raise errors.exceptions[0] from None
        finally:
            self._running = False
            self.link.close()

    async def poll(self, device_id: str, kind: PollKind) -> PollResult:
        """On-demand read for an engineer; never moves the event-log read position."""
        poller = self.pollers[device_id]  # KeyError for an unknown device, as documented
        if not self._running:
            raise LinkError(f"{self.plan.key}: link not running")
        from protocols.modbus.ondemand import on_demand

        return await on_demand(poller, kind, self.counters[device_id])
