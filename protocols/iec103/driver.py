"""The IEC 103 driver: one serial bus, several relays (link addresses), one task.

Per relay, after a reset CU: class-1 polls while ACD (ASDU 5 gives the identity), time
sync if enabled, general interrogation, settings through generic services; then cyclic
class-2 polls, with class-1 polls whenever ACD is set.

Durability: every answer's observations are delivered (`sink.deliver`, durable) *before*
`Iec103Master.acknowledge` toggles the FCB that acknowledges the answer to the relay.

Isolation: a relay that stops answering is reported down and tried again every
`offline_retry_s` with a single reset; the others keep being polled. Only a failure of the
port itself ends `run` with `LinkError`.

Data flow control: user data (time sync, GI, generic-services reads) never goes to a relay
whose last answer had DFC=1. The pending step is abandoned for this turn (`DataFlowWait`)
and run again from the start once an answer has DFC=0; meanwhile that relay is only
polled, at its poll interval, and the other relays on the bus have their turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from protocols.driver import (
    ObservationSink,
    PollKind,
    PollResult,
    SettingsResult,
)
from protocols.errors import DecodeError, LinkError
from protocols.iec103 import ondemand
from protocols.iec103.asdu import decode_asdu, encode_asdu
from protocols.iec103.asdu_base import FUN_GLOBAL, Asdu, Cot, UnknownAsdu
from protocols.iec103.asdu_disturbance import DisturbanceList
from protocols.iec103.asdu_messages import (
    GeneralInterrogation,
    GiTermination,
    Identification,
    TimeSync,
    TimeTaggedMessage,
)
from protocols.iec103.config import Iec103Device, Iec103ProfileSection
from protocols.iec103.link import (
    Iec103Master,
    Reply,
    SerialPort,
    Station,
    StationRefused,
    StationSilent,
)
from protocols.iec103.observe import (
    INF_LOCAL_SETTING,
    disturbance_observations,
    observations,
    undecodable,
)
from protocols.iec103.relay import STEP_GI, STEP_TIME_SYNC, DataFlowWait, Relay
from protocols.iec103.settings import SettingsReader
from protocols.iec103.time import cp56_from_datetime
from protocols.observations import (
    IdentityObservation,
    LinkStateObservation,
    Observation,
    PointObservation,
    SettingValue,
)
from protocols.registry import LinkPlan

log = logging.getLogger(__name__)

MAX_CLASS1_PER_TURN = 16  # fairness: a chatty relay yields the bus after this many frames
PROCEDURE_TIMEOUT_S = 15.0  # GI or a settings read that takes longer is abandoned
# (also: how long user data may wait for a relay's DFC to clear before it is taken down)


class Iec103Driver:
    def __init__(self, plan: LinkPlan) -> None:
        if plan.bus is None:
            raise ValueError(f"link {plan.key}: IEC 103 devices need a bus")
        self.bus = plan.bus
        self.relays: dict[str, Relay] = {}
        addresses: dict[int, str] = {}
        for planned in plan.devices:
            cfg = planned.config
            if not isinstance(cfg, Iec103Device):
                raise TypeError(f"not an IEC 103 device: {cfg!r}")
            if cfg.link_address in addresses:
                raise ValueError(
                    f"bus {self.bus.id}: link address {cfg.link_address} used by "
                    f"{addresses[cfg.link_address]} and {cfg.id}"
                )
            addresses[cfg.link_address] = cfg.id
            section = planned.profile_section
            scale = dict(section.scale) if isinstance(section, Iec103ProfileSection) else {}
            station = Station(cfg.link_address, cfg.id, retries=cfg.retries)
            self.relays[cfg.id] = Relay(cfg, station, scale)
        self.port: SerialPort | None = None
        self.master: Iec103Master | None = None
        self._sink: ObservationSink | None = None
        self._wake = asyncio.Event()

    @property
    def device_ids(self) -> Sequence[str]:
        return list(self.relays)

    # --- Driver ----------------------------------------------------------------------------

    async def run(self, sink: ObservationSink) -> None:
        self._sink = sink
        self.port = SerialPort(self.bus)
        self.master = Iec103Master(self.port)
        try:
            await self.port.open()
            while True:
                busy = False
                for relay in self.relays.values():
                    busy |= await self._service(relay)
                if not busy:
                    await self._idle()
        finally:
            await self.port.close()

    async def poll(self, device_id: str, kind: PollKind) -> PollResult:
        """`identity`: the relay's last ASDU 5; `events`: what the bus received from it
        since it came up; `status`: the last state of each point since then (the general
        interrogation after reset and every change) and the link counters; `settings`:
        a generic-services read, ordered on the bus like any other procedure."""
        relay = self.relays[device_id]
        if kind == PollKind.EVENTS:
            return ondemand.events(relay)
        if kind == PollKind.STATUS:
            return ondemand.status(relay, self.bus_counters())
        if kind == PollKind.IDENTITY:
            return ondemand.identity(relay)
        if kind == PollKind.SETTINGS:
            if not relay.up:
                raise LinkError(f"device {device_id}: not answering")
            waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            relay.settings_waiters.append(waiter)
            relay.settings_due = True
            self._wake.set()
            values = await asyncio.wait_for(waiter, PROCEDURE_TIMEOUT_S * 2)
            if not values:
                raise ValueError(f"device {device_id} refused the generic-services settings read")
            settings = tuple(SettingValue(name, value) for name, value in values.items())
            return SettingsResult(settings, source="103 generic services")
        raise ValueError(f"iec103 cannot poll {kind!r}")

    def bus_counters(self) -> dict[str, int]:
        port = self.port
        if port is None:
            return {}
        ex = port.extractor
        return {
            "garbage_bytes": ex.garbage_bytes,
            "bad_frames": ex.bad_frames,
            "stale_frames": port.stale_frames,
            "bytes_out": port.bytes_out,
            "bytes_in": port.bytes_in,
        }

    # --- the per-relay state machine ------------------------------------------------------

    async def _service(self, relay: Relay) -> bool:
        """One turn for one relay; True when it used the bus."""
        now = time.monotonic()
        try:
            if not relay.up:
                if now < relay.next_attempt:
                    return False
                relay.next_attempt = now + relay.config.offline_retry_s
                await self._start(relay)
                return True
            holding = relay.station.dfc and self._user_data_due(relay, now)
            if not relay.station.dfc:
                relay.dfc_since = None
            if holding:
                # buffer full: no user data, only polls (below) until an answer has DFC=0
                self._check_dfc_wait(relay, now)
            elif relay.steps:
                await self._run_steps(relay)
                return True
            elif self._user_data_due(relay, now):
                await self._read_settings(relay)
                return True
            if relay.station.acd:
                relay.counters["dfc_waits"] += holding
                for _ in range(MAX_CLASS1_PER_TURN):
                    await self._poll(relay, 1)
                    if not relay.station.acd:
                        break
                return True
            if now >= relay.next_poll:
                relay.counters["dfc_waits"] += holding
                relay.next_poll = now + relay.config.poll_interval_ms / 1000
                await self._poll(relay, 2)
                return True
            return False
        except DataFlowWait:
            return True  # the step stays pending; the relay is polled on its next turns
        except StationSilent as exc:
            await self._down(relay, str(exc))
            return True
        except StationRefused as exc:
            # A relay that keeps refusing a procedure is taken down and initialised again
            # later; the other relays on the bus carry on.
            relay.counters["procedures_refused"] += 1
            await self._down(relay, f"refused: {exc}")
            return True

    async def _start(self, relay: Relay) -> None:
        """Reset CU and the initialisation procedure; `StationSilent` if it stays quiet."""
        master = self._master()
        first = relay.up is None
        try:
            # A relay known to be down gets one try per turn, so it cannot stall the bus.
            await master.reset(relay.station, retries=None if first else 0)
        except StationSilent:
            if first:
                raise
            relay.counters["offline_attempts"] += 1
            return
        log.info("device %s: link reset, initialising", relay.id)
        relay.up = True
        await self._deliver([LinkStateObservation(relay.id, True, "reset")])
        relay.disturbances.clear()
        await self._drain_class1(relay)
        if relay.identity is None:
            log.warning("device %s: no ASDU 5 after reset", relay.id)
        # config validation tied time_sync to allow_commands
        relay.steps = deque([STEP_TIME_SYNC, STEP_GI] if relay.config.time_sync else [STEP_GI])
        relay.dfc_since = None
        await self._run_steps(relay)

    async def _run_steps(self, relay: Relay) -> None:
        """The initialisation steps after reset, each removed only once it has been done:
        a step stopped by DFC (`DataFlowWait`) is run again, from its start, later."""
        while relay.steps:
            step = relay.steps[0]
            if step == STEP_TIME_SYNC:
                await self.send_asdu(  # the time is taken when it is really sent
                    relay,
                    TimeSync(
                        cot=Cot.TIME_SYNC,
                        common_address=relay.config.common_address,
                        fun=FUN_GLOBAL,
                        inf=0,
                        time=cp56_from_datetime(_utcnow()),
                    ),
                )
                relay.steps.popleft()
                await self._drain_class1(relay)
            else:
                await self._interrogate(relay)
                relay.steps.popleft()
        relay.settings_due = relay.config.read_settings or bool(relay.settings_waiters)

    async def _interrogate(self, relay: Relay) -> None:
        relay.scn = (relay.scn + 1) & 0xFF
        scn = relay.scn
        await self.send_asdu(
            relay,
            GeneralInterrogation(
                cot=Cot.GI,
                common_address=relay.config.common_address,
                fun=FUN_GLOBAL,
                inf=0,
                scn=scn,
            ),
        )
        end = await self.poll_until(relay, lambda a: isinstance(a, GiTermination) and a.scn == scn)
        relay.counters["gi_completed" if end else "gi_incomplete"] += 1

    async def _read_settings(self, relay: Relay) -> None:
        relay.settings_due = False
        signalled, relay.settings_signalled = relay.settings_signalled, False
        interval = relay.config.settings_interval_s
        relay.next_settings = time.monotonic() + interval if interval else float("inf")
        waiters, relay.settings_waiters = relay.settings_waiters, []
        reader = SettingsReader(relay.id, relay.config.common_address)
        try:
            obs = await reader.read(self, relay)
        except DataFlowWait:
            # read again from the start once the relay's buffer has room
            relay.settings_due = True
            relay.settings_signalled |= signalled
            relay.settings_waiters = waiters + relay.settings_waiters
            raise
        except StationRefused as exc:
            log.warning("device %s: settings read refused: %s", relay.id, exc)
            relay.counters["settings_refused"] += 1
            obs = None
        if obs is not None:
            await self._deliver([dataclasses.replace(obs, signalled=signalled)])
        result = {} if obs is None else {s.name: s.value for s in obs.settings}
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(result)

    async def _down(self, relay: Relay, reason: str) -> None:
        was = relay.up
        relay.up = False
        relay.identity = None
        relay.next_attempt = time.monotonic() + relay.config.offline_retry_s
        relay.station.pending_ack = False
        relay.steps.clear()
        relay.dfc_since = None
        if was is not False:
            log.warning("device %s: %s", relay.id, reason)
            await self._deliver([LinkStateObservation(relay.id, False, reason)])
        for waiter in relay.settings_waiters:
            if not waiter.done():
                waiter.set_exception(LinkError(reason))
        relay.settings_waiters = []

    # --- exchanges used by the procedures (also by SettingsReader) ------------------------

    async def send_asdu(self, relay: Relay, asdu: Asdu) -> None:
        """Send/confirm one ASDU, never to a relay whose last answer had DFC=1.

        `DataFlowWait` instead of sending while DFC is set, and when the relay refuses the
        send with NACK and DFC=1 (its buffer filled meanwhile): the caller's step stays
        pending and is repeated, as a new exchange, once DFC clears. A NACK without DFC
        is `StationRefused` (`_service` also gives up on DFC lasting too long)."""
        if relay.station.dfc:
            raise DataFlowWait(relay.id)
        try:
            reply = await self._master().send(relay.station, encode_asdu(asdu))
        except StationRefused:
            if not relay.station.dfc:
                raise
            relay.counters["sends_deferred_dfc"] += 1
            log.info("device %s: send refused, buffer full (DFC); sent again later", relay.id)
            raise DataFlowWait(relay.id) from None
        await self._handle(relay, reply)

    def _user_data_due(self, relay: Relay, now: float) -> bool:
        """Whether a step that sends user data is waiting for this relay."""
        return bool(
            relay.steps
            or relay.settings_due
            or (relay.config.settings_interval_s and now >= relay.next_settings)
        )

    def _check_dfc_wait(self, relay: Relay, now: float) -> None:
        """Start the DFC wait, or end it with `StationRefused` once it has lasted too long."""
        if relay.dfc_since is None:
            relay.dfc_since = now
        elif now - relay.dfc_since > PROCEDURE_TIMEOUT_S:
            raise StationRefused(f"device {relay.id}: buffer full (DFC) for too long")

    async def _poll(self, relay: Relay, klass: int) -> Asdu | None:
        reply = await self._master().poll(relay.station, klass)
        return await self._handle(relay, reply)

    async def _drain_class1(self, relay: Relay) -> None:
        for _ in range(256):
            if not relay.station.acd:
                return
            await self._poll(relay, 1)

    async def poll_until(self, relay: Relay, done: Callable[[Asdu], bool]) -> Asdu | None:
        """Poll (class 1 while ACD, else class 2) until an ASDU satisfies `done`."""
        deadline = time.monotonic() + PROCEDURE_TIMEOUT_S
        while time.monotonic() < deadline:
            asdu = await self._poll(relay, 1 if relay.station.acd else 2)
            if asdu is not None and done(asdu):
                return asdu
            if not relay.station.acd:
                await asyncio.sleep(0.01)
        log.warning("device %s: procedure timed out", relay.id)
        return None

    async def _handle(self, relay: Relay, reply: Reply) -> Asdu | None:
        """Decode an answer, make its observations durable, then acknowledge it (FCB)."""
        raw = reply.asdu
        asdu: Asdu | None = None
        obs: list[Observation] = []
        if raw is not None:
            try:
                asdu = decode_asdu(raw)
            except DecodeError as exc:
                relay.counters["decode_errors"] += 1
                log.warning("device %s: undecodable ASDU %s: %s", relay.id, raw.hex(" "), exc)
                obs = [undecodable(relay.id, raw, str(exc))]
            else:
                obs = self._observe(relay, asdu)
        if obs:
            await self._deliver(obs)
        self._master().acknowledge(relay.station)
        return asdu

    def _observe(self, relay: Relay, asdu: Asdu) -> list[Observation]:
        relay.counters["asdus"] += 1
        if isinstance(asdu, UnknownAsdu):
            relay.counters["unknown_asdus"] += 1
            log.warning(
                "device %s: unknown ASDU type %d (%s)", relay.id, asdu.type_id, asdu.address
            )
        if isinstance(asdu, DisturbanceList):
            obs = disturbance_observations(relay.id, asdu, relay.disturbances)
            relay.disturbances.update(r.fault_number for r in asdu.records)
            return obs
        if isinstance(asdu, TimeTaggedMessage) and asdu.inf == INF_LOCAL_SETTING:
            relay.settings_due = relay.config.read_settings  # settings changed on the relay
            relay.settings_signalled = relay.settings_due
        obs = observations(relay.id, asdu, _utcnow(), relay.scale)
        if isinstance(asdu, Identification):
            relay.identity = obs[0] if isinstance(obs[0], IdentityObservation) else None
        return self._throttle(relay, obs)

    def _throttle(self, relay: Relay, obs: list[Observation]) -> list[Observation]:
        """Measurands come with every class-2 poll: forward them at most every
        `measurand_interval_s` per address. Events always pass."""
        now = time.monotonic()
        out: list[Observation] = []
        for o in obs:
            if isinstance(o, PointObservation):
                if o.measurement:
                    last = relay.last_measurand.get(o.address)
                    if last is not None and now - last < relay.config.measurand_interval_s:
                        continue
                    relay.last_measurand[o.address] = now
                else:
                    relay.recent.append(o)
            out.append(o)
        return out

    async def _deliver(self, obs: list[Observation]) -> None:
        assert self._sink is not None
        await self._sink.deliver(obs)

    def _master(self) -> Iec103Master:
        assert self.master is not None
        return self.master

    async def _idle(self) -> None:
        now = time.monotonic()
        due = [r.next_poll if r.up else r.next_attempt for r in self.relays.values()]
        wait = max(0.0, min(due, default=now + 1) - now)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), min(wait, 1.0))


def _utcnow() -> datetime:
    return datetime.now(UTC)
