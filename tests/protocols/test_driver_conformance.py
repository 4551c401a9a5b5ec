"""The `Driver` contract of protocols/driver.py, run against every registered protocol's
driver and its simulated relays (`simulator/`), with each device's default config.

Each case declares, per device, the poll kinds its config and profile let it serve. The
driver, made by the registry as the agent makes it, must then:
- name its devices in `device_ids` and report the standard counters for each;
- answer every declared kind with that kind's frozen result type (`result_type`), and
  an event the relay raised among its `EVENTS`;
- refuse every other kind with `ValueError`, and any kind for an unknown device with
  `KeyError`;
- keep running through all of it, and send the relay nothing but reads (read-only by
  default), watched where the relay receives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from profiles.model import Profile
from protocols import registry
from protocols.config import SerialBusConfig
from protocols.driver import (
    STANDARD_COUNTERS,
    Driver,
    EventsResult,
    PolledPoint,
    PollKind,
    result_type,
)
from protocols.errors import LinkError
from protocols.modbus.profile import ModbusProfile
from protocols.observations import (
    ASKED_CAUSES,
    IdentityObservation,
    LinkStateObservation,
    Observation,
    PointObservation,
)
from protocols.profile_loader import load_named
from protocols.registry import LinkPlan, PlannedDevice
from simulator.relays.iec103 import relay as iec103
from simulator.relays.iec104 import relay as iec104
from simulator.relays.iec104.raw_outstation import kind_of
from simulator.relays.modbus import relay as modbus
from simulator.scenario import SEED_SCENARIO, IdentitySpec, RelaySpec, load_scenario
from tests.protocols.iec103.test_read_only_wire import sent_by_type
from tests.protocols.iec104.test_wire_guarantees import not_a_read
from tests.support.mosquitto import free_port

EVERY = frozenset(PollKind)
MODBUS_READS = {1, 2, 3, 4, 43}  # read coils, discrete inputs, holding, input; device id


class Sink:
    """Stores what a driver delivers, at once (a sink without `submit`)."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []

    async def deliver(self, observations: Sequence[Observation]) -> None:
        self.observations.extend(observations)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        self.observations.extend(observations)

    def ready(self, device_id: str, identity: bool) -> bool:
        """The device's link is up and, when it serves one, its identity reported."""
        mine = [o for o in self.observations if getattr(o, "device_id", None) == device_id]
        up = any(isinstance(o, LinkStateObservation) and o.up for o in mine)
        return up and (not identity or any(isinstance(o, IdentityObservation) for o in mine))

    def saw_change(self, device_id: str, address: str) -> bool:
        """A change of the point reported (not an interrogation's answer)."""
        return any(
            isinstance(o, PointObservation)
            and (o.device_id, o.address) == (device_id, address)
            and o.cause not in ASKED_CAUSES
            for o in self.observations
        )


@dataclass
class Bench:
    """Drivers of one protocol running against their relays. `serves`: per device, the
    kinds its config and profile declare; `not_reads`: what the relays received that is
    not a read."""

    drivers: list[Driver]
    serves: dict[str, frozenset[PollKind]]
    profile: Profile
    relays: dict[str, Any]
    not_reads: Callable[[], list[str]]
    sink: Sink = field(default_factory=Sink)


def make_driver(protocol: str, planned: Sequence[PlannedDevice], **plan: Any) -> Driver:
    spec = registry.get(protocol)
    key = spec.link_key(planned[0].config)
    return spec.make_driver(LinkPlan(key, protocol, tuple(planned), **plan))


class RecordingProxy:
    """A TCP hop between the driver and a relay that keeps what the driver sent."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sent = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await src.read(65536):
                    if keep:
                        self.sent.extend(chunk)
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def apdu_bodies(self) -> list[bytes]:
        data, bodies = bytes(self.sent), []
        while len(data) >= 2 and data[0] == 0x68:
            bodies.append(data[2 : 2 + data[1]])
            data = data[2 + data[1] :]
        assert not data, f"undecodable bytes from the driver: {data.hex(' ')}"
        return bodies

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


@contextlib.asynccontextmanager
async def iec104_bench(tmp_path: Path) -> AsyncIterator[Bench]:
    """Two relays: one whose profile maps identity and settings points, one planned
    without the `[iec104]` section (so it serves neither)."""
    profile = load_named("line-protection")
    seed = load_scenario(SEED_SCENARIO).relay("line1")
    relays, proxies, drivers = {}, [], []
    serves = {"full": EVERY, "bare": frozenset({PollKind.EVENTS, PollKind.STATUS})}
    for device_id in serves:
        port = free_port()
        relay = iec104.make_relay(
            seed.model_copy(update={"id": device_id, "link": {"port": port, "common_address": 1}}),
            profile,
        )
        await relay.start()
        relays[device_id] = relay
        proxy = await RecordingProxy(port).start()
        proxies.append(proxy)
        config = registry.get("iec104").device_model.model_validate(
            {"id": device_id, "protocol": "iec104", "profile": profile.name,
             "host": "127.0.0.1", "port": proxy.port, "common_address": 1}
        )  # fmt: skip
        section = profile.section if device_id == "full" else None
        points = tuple(p.address for p in profile.points)
        drivers.append(make_driver("iec104", [PlannedDevice(config, section, points)]))

    def not_reads() -> list[str]:
        bodies = [proxy.apdu_bodies() for proxy in proxies]
        assert all(any(kind_of(b) == "I" for b in sent) for sent in bodies), "no reads recorded"
        return [problem for sent in bodies for problem in not_a_read(sent)]

    try:
        yield Bench(drivers, serves, profile, relays, not_reads)
    finally:
        for proxy in proxies:
            proxy.close()
        for relay in relays.values():
            await relay.stop()


@contextlib.asynccontextmanager
async def iec103_bench(tmp_path: Path) -> AsyncIterator[Bench]:
    """Two relays on one bus; the second's config turns settings reads off."""
    profile = load_named("line-protection-103")
    port = str(tmp_path / "rs485")
    serves = {"relay1": EVERY, "relay2": EVERY - {PollKind.SETTINGS}}
    relays, planned = {}, []
    for la, device_id in enumerate(serves, start=1):
        relay = iec103.make_relay(
            RelaySpec(
                id=device_id, protocol="iec103", profile=profile.name,
                link={"port": port, "link_address": la, "common_address": la},
                identity=IdentitySpec(manufacturer="DEMO", firmware_version="V4.7"),
                settings={"zone1_reach": 4.2, "zone1_time": 0.0, "station_name": "North"},
            ),
            profile,
        )  # fmt: skip
        await relay.start()
        relays[device_id] = relay
        config = registry.get("iec103").device_model.model_validate(
            {"id": device_id, "protocol": "iec103", "profile": profile.name, "bus": "rs485",
             "link_address": la, "common_address": la, "poll_interval_ms": 20,
             "read_settings": PollKind.SETTINGS in serves[device_id]}
        )  # fmt: skip
        planned.append(PlannedDevice(config, profile.section))
    bus = SerialBusConfig(id="rs485", port=port, baudrate=19200, parity="N", timeout_ms=150)
    wire = bytearray()
    first = relays["relay1"].bus
    assert first is not None
    first.taps.append(wire.extend)

    def not_reads() -> list[str]:
        assert wire, "no reads recorded"
        try:
            sent_by_type(bytes(wire))
        except AssertionError as exc:
            return [str(exc)]
        return []

    driver = make_driver("iec103", planned, bus=bus, state_dir=tmp_path / "state")
    try:
        yield Bench([driver], serves, profile, relays, not_reads)
    finally:
        for relay in relays.values():
            await relay.stop()


@contextlib.asynccontextmanager
async def modbus_bench(tmp_path: Path) -> AsyncIterator[Bench]:
    """Two units behind one TCP gateway; the second's profile section has no event log."""
    profile = load_named("feeder-protection-modbus")
    section = profile.section
    assert isinstance(section, ModbusProfile)
    port = free_port()
    serves = {"f1": EVERY, "f2": EVERY - {PollKind.EVENTS}}
    relays, planned = {}, []
    for unit, device_id in enumerate(serves, start=1):
        relay = modbus.make_relay(
            RelaySpec(id=device_id, protocol="modbus", profile=profile.name,
                      link={"transport": "tcp", "port": port, "unit_id": unit}),
            profile,
        )  # fmt: skip
        await relay.start()
        relays[device_id] = relay
        config = registry.get("modbus").device_model.model_validate(
            {"id": device_id, "protocol": "modbus", "profile": profile.name,
             "host": "127.0.0.1", "port": port, "unit_id": unit, "timeout_ms": 300}
        )  # fmt: skip
        mine = section if PollKind.EVENTS in serves[device_id] else None
        planned.append(
            PlannedDevice(config, mine or section.model_copy(update={"event_log": None}))
        )

    def not_reads() -> list[str]:
        endpoint = relays["f1"].endpoint
        assert endpoint is not None
        codes = set(endpoint.function_codes)
        assert codes & MODBUS_READS, "no reads recorded"
        return [f"function code {code}" for code in sorted(codes - MODBUS_READS)]

    driver = make_driver("modbus", planned, state_dir=tmp_path / "state")
    try:
        yield Bench([driver], serves, profile, relays, not_reads)
    finally:
        for relay in relays.values():
            await relay.stop()


BENCHES: Mapping[str, Callable[[Path], contextlib.AbstractAsyncContextManager[Bench]]] = {
    "iec104": iec104_bench,
    "iec103": iec103_bench,
    "modbus": modbus_bench,
}


def test_every_registered_protocol_has_a_case() -> None:
    assert set(BENCHES) == set(registry.protocols())


def has_the_interface(driver: Driver) -> list[str]:
    """What a type checker sees in the spec (`make_driver` returns a `Driver`), checked on
    the object it made: the methods are coroutines with the interface's parameters."""
    cls, problems = type(driver), []
    for method in ("run", "poll"):
        function = getattr(cls, method, None)
        if not inspect.iscoroutinefunction(function):
            problems.append(f"{cls.__name__}.{method} is not a coroutine function")
            continue
        expected = list(inspect.signature(getattr(Driver, method)).parameters)
        if list(inspect.signature(function).parameters) != expected:
            problems.append(f"{cls.__name__}.{method}: parameters are not {expected}")
    if not isinstance(inspect.getattr_static(cls, "device_ids", None), property):
        problems.append(f"{cls.__name__}.device_ids is not a property")
    return problems


def is_frozen(result: object) -> bool:
    params = getattr(type(result), "__dataclass_params__", None)
    return dataclasses.is_dataclass(result) and params is not None and params.frozen


async def wait_for(
    condition: Callable[[], bool], what: str, tasks: Sequence[asyncio.Task[None]]
) -> None:
    for _ in range(3000):  # 60 s
        if condition():
            return
        for task in tasks:
            if task.done():
                task.result()  # a driver that ended early fails here, with its error
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _check_poll(
    driver: Driver, device: str, kind: PollKind, served: bool, trip_address: str
) -> None:
    """A served kind answers its frozen result type; any other kind, and any unknown device,
    the contract's error."""
    if served:
        result = await driver.poll(device, kind)
        assert isinstance(result, result_type(kind)), (device, kind, result)
        assert is_frozen(result), f"{type(result).__name__} is not frozen"
        if isinstance(result, EventsResult):
            assert all(isinstance(e, PolledPoint) for e in result.events)
            assert trip_address in {e.address for e in result.events}
    else:
        # The contract's error; its wording is each protocol's own.
        with pytest.raises(ValueError):  # noqa: PT011
            await driver.poll(device, kind)
    with pytest.raises(KeyError):
        await driver.poll("no-such-device", kind)


@pytest.mark.parametrize("name", sorted(BENCHES))
async def test_driver_keeps_the_contract(name: str, tmp_path: Path) -> None:
    async with BENCHES[name](tmp_path) as bench:
        sink = bench.sink
        for driver in bench.drivers:
            assert has_the_interface(driver) == []
            assert type(driver).__module__.startswith(f"protocols.{name}.")
        tasks = [asyncio.create_task(d.run(sink)) for d in bench.drivers]
        try:
            owner = {device: d for d in bench.drivers for device in d.device_ids}
            assert set(owner) == set(bench.serves), "device_ids name the planned devices"
            for device, kinds in bench.serves.items():
                up = partial(sink.ready, device, PollKind.IDENTITY in kinds)
                await wait_for(up, f"{device} up", tasks)
            trip = next(p for p in bench.profile.points if p.kind == "trip")
            for relay in bench.relays.values():
                await relay.emit(trip, True, [], datetime.now(UTC).replace(microsecond=0))
            for device, kinds in bench.serves.items():
                if PollKind.EVENTS in kinds:
                    seen = partial(sink.saw_change, device, trip.address)
                    await wait_for(seen, f"{device}'s trip", tasks)

            for device, kinds in bench.serves.items():
                driver = owner[device]
                for kind in PollKind:
                    await _check_poll(driver, device, kind, kind in kinds, trip.address)
                counters = getattr(driver, "device_counters", None)
                if counters is not None:
                    assert set(STANDARD_COUNTERS) <= set(counters()[device]), device

            assert not any(task.done() for task in tasks), "a poll ended a driver's run"
            assert bench.not_reads() == [], "read-only by default"
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, LinkError):
                    await task
