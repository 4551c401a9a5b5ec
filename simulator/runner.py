"""Play a scenario: start every relay, optionally wait for masters, play the steps on time.

Device times are deterministic: a step's device time is the scenario's start time plus
`at_ms / speed`, truncated to the millisecond (what CP56Time2a can carry), so the spacing
a test sees is the scenario's, not the scheduler's jitter. Every step played is recorded in
`ScenarioRunner.played` for tests to compare against what arrived.

A scenario's recorded disturbances (`[[disturbances]]`, COMTRADE) are played by their IEC
103 relays: each is announced at its `trigger_at_ms` and served as recorded
(`simulator/relays/iec103/replay.py`); such a relay's trip steps then record nothing of their own.
Records of relays of other protocols are listed and not played (`ScenarioRunner.replayed`
holds those played).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common.errors import ConfigError
from simulator.relays.base import SimulatedRelay
from simulator.relays.iec103.relay import Iec103Relay
from simulator.relays.iec103.replay import ReplayError, ReplayRecord, load_record
from simulator.relays.registry import factory
from simulator.scenario import DisturbanceRef, Scenario, ScenarioFile, Step
from simulator.waveforms import FaultSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayedStep:
    step: Step
    relay: str
    address: str | None  # the point's protocol address, for point steps
    device_time: datetime


def relocate(scenario: Scenario, links: Mapping[str, Mapping[str, Any]]) -> Scenario:
    """A copy of `scenario` with some relays' link keys replaced (e.g. free test ports)."""
    data = {
        "scenario": scenario.header.model_dump(),
        "relays": [
            {**r.model_dump(), "link": {**r.link, **links.get(r.id, {})}} for r in scenario.relays
        ],
        "steps": [s.model_dump() for s in scenario.steps],
        "disturbances": [d.model_dump() for d in scenario.disturbances],
    }
    return Scenario(ScenarioFile.model_validate(data), scenario.source)


def combine(first: Scenario, *more: Scenario) -> Scenario:
    """One substation from several scenarios: every relay, every step on one time line.
    The first gives the name; relay ids must differ."""
    parts = (first, *more)
    data = {
        "scenario": first.header.model_dump(),
        "relays": [r.model_dump() for p in parts for r in p.relays],
        "steps": [s.model_dump() for p in parts for s in p.steps],
        "disturbances": [d.model_dump() for p in parts for d in p.disturbances],
    }
    return Scenario(ScenarioFile.model_validate(data), first.source)


def on_free_ports(scenario: Scenario) -> Scenario:
    """A copy of `scenario` on free loopback ports: each distinct TCP port (a number, or
    the port of a `socket://host:port` bus) moves to a free one, so relays sharing a bus
    still share it. Device paths (ptys) stay as they are."""
    from simulator.harness.broker import free_port

    moved: dict[str, Any] = {}
    links: dict[str, dict[str, Any]] = {}
    for relay in scenario.relays:
        port = relay.link.get("port")
        key = str(port)
        if isinstance(port, int):
            moved.setdefault(key, free_port())
        elif isinstance(port, str) and port.startswith("socket://"):
            host = port.removeprefix("socket://").rsplit(":", 1)[0]
            moved.setdefault(key, f"socket://{host}:{free_port()}")
        else:
            continue
        links[relay.id] = {"port": moved[key]}
    return relocate(scenario, links)


def to_ms(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


class ScenarioRunner:
    def __init__(
        self,
        scenario: Scenario,
        speed: float = 1.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.scenario = scenario
        self.speed = speed
        self.progress = progress or (lambda line: log.info("%s", line))
        self.relays: dict[str, SimulatedRelay] = {}
        self.played: list[PlayedStep] = []
        self.records: list[tuple[DisturbanceRef, ReplayRecord]] = []
        self.replayed: list[tuple[DisturbanceRef, datetime]] = []  # (record, trigger time)

    async def start(self) -> None:
        """Load the recorded disturbances, start every relay; on failure, stop those
        already started."""
        self.records = self._load_records()
        try:
            for spec in self.scenario.relays:
                relay = factory(spec.protocol)(spec, self.scenario.profiles[spec.id])
                await relay.start()
                self.relays[spec.id] = relay
                self.progress(f"relay {spec.id}: {spec.protocol} {spec.profile} {spec.link}")
            for ref, _record in self.records:
                # the relay serves the records it really made, not synthesised ones
                relay = self.relays[ref.relay]
                if isinstance(relay, Iec103Relay):
                    relay.record_spec = None
        except BaseException:
            await self.stop()
            raise

    def _load_records(self) -> list[tuple[DisturbanceRef, ReplayRecord]]:
        """The `[[disturbances]]` this scenario's relays can serve (IEC 103), read now so
        a bad file stops the start with its name."""
        loaded, problems = [], []
        for i, ref in enumerate(self.scenario.disturbances):
            if self.scenario.relay(ref.relay).protocol != "iec103":
                self.progress(
                    f"record {ref.relay} fault {ref.fault_number}: not played "
                    "(only IEC 103 relays serve records)"
                )
                continue
            cfg, dat = (self.scenario.record_file(ref, key) for key in ("cfg", "dat"))
            try:
                profile = self.scenario.profiles[ref.relay]
                addresses = {name: point.address for name, point in profile.by_name.items()}
                loaded.append((ref, load_record(cfg, dat, addresses)))
            except ReplayError as exc:
                problems.append(f"disturbances[{i}]: {exc}")
        if problems:
            raise ConfigError(str(self.scenario.source), problems)
        return loaded

    async def stop(self) -> None:
        for relay_id, relay in list(self.relays.items()):
            try:
                await relay.stop()
            except Exception:
                log.exception("relay %s: stop failed", relay_id)
        self.relays.clear()

    def connected(self) -> dict[str, int]:
        """Masters connected per relay, for relays that can tell."""
        out = {}
        for relay_id, relay in self.relays.items():
            count = getattr(relay, "connected_clients", None)
            if isinstance(count, int):
                out[relay_id] = count
        return out

    async def wait_for_clients(self, relays: int, timeout_s: float = 60.0) -> None:
        """Wait until at least `relays` relays have a master connected."""
        if relays <= 0:
            return
        self.progress(f"waiting for masters on {relays} relay(s)")
        async with asyncio.timeout(timeout_s):
            while sum(1 for n in self.connected().values() if n > 0) < relays:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # c104 offers no event for a client connecting
        counts = ", ".join(f"{k}={v}" for k, v in self.connected().items())
        self.progress(f"masters connected: {counts}")

    async def play(self) -> None:
        loop = asyncio.get_running_loop()
        start_mono = loop.time()
        start_wall = datetime.now(UTC)
        self.progress(f"scenario {self.scenario.header.name}: {len(self.scenario.steps)} steps, "
                      f"speed x{self.speed:g}")  # fmt: skip
        timeline: list[tuple[int, Step | tuple[DisturbanceRef, ReplayRecord]]] = [
            *((step.at_ms, step) for step in self.scenario.steps),
            *((ref.trigger_at_ms, (ref, record)) for ref, record in self.records),
        ]
        for at_ms, item in sorted(timeline, key=lambda entry: entry[0]):  # stable: steps first
            offset_s = at_ms / 1000 / self.speed
            delay = start_mono + offset_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            device_time = to_ms(start_wall + timedelta(seconds=offset_s))
            if isinstance(item, Step):
                await self._apply(step=item, device_time=device_time)
            else:
                await self._replay(*item, device_time)
        self.progress("scenario done")

    async def _replay(self, ref: DisturbanceRef, record: ReplayRecord, trigger: datetime) -> None:
        relay = self.relays[ref.relay]
        assert isinstance(relay, Iec103Relay)  # only IEC 103 relays' records are loaded
        await relay.replay(record, ref.fault_number, trigger)
        self.replayed.append((ref, trigger))
        stamp = trigger.strftime("%H:%M:%S.%f")[:-3]
        self.progress(
            f"+{ref.trigger_at_ms:>6} ms  {stamp}Z  {ref.relay:<10} "
            f"disturbance record {ref.fault_number} replayed ({ref.cfg.name})"
        )

    async def hold(self) -> None:
        self.progress("holding (Ctrl-C to stop)")
        await asyncio.Event().wait()

    async def _apply(self, step: Step, device_time: datetime) -> None:
        relay = self.relays[step.relay]
        address = None
        if step.action == "point":
            assert step.point is not None
            spec = self.scenario.profiles[step.relay].by_name[step.point]
            address = spec.address
            await relay.emit(spec, step.value, list(step.quality), device_time)
            what = f"{step.point}@{address} = {step.value!r}"
            if step.quality:
                what += f" quality={','.join(step.quality)}"
        elif step.action in ("offline", "online"):
            await relay.set_online(step.action == "online")
            what = step.action
        elif step.action == "setting":
            assert step.name is not None
            assert step.value is not None
            await relay.set_setting(step.name, step.value)
            what = f"setting {step.name} = {step.value!r}"
        elif step.action == "record":
            record = getattr(relay, "record", None)
            assert record is not None  # the scenario allows record steps for 103 relays only
            fault = step.record or FaultSpec()
            fans = await record(fault, device_time, count=step.count, abort_after=step.abort_after)
            what = f"disturbance record {', '.join(map(str, fans))} (phase {fault.phase})"
        else:
            await relay.set_firmware(str(step.value))
            what = f"firmware {step.value}"
        self.played.append(PlayedStep(step, step.relay, address, device_time))
        stamp = device_time.strftime("%H:%M:%S.%f")[:-3]
        self.progress(f"+{step.at_ms:>6} ms  {stamp}Z  {step.relay:<10} {what}")
