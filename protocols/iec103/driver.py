"""The IEC 103 driver: one serial bus, several relays (link addresses), one task.

Per relay, after a reset CU: class-1 polls while ACD (ASDU 5 gives the identity), time
sync if enabled, general interrogation, the list of recorded disturbances, settings
through generic services (`procedures.py`); then cyclic class-2 polls, with class-1 polls
whenever ACD is set, and every announced disturbance record fetched (`transfer.py`).

Sharing the bus: the main loop gives each relay a turn; a procedure that takes several
exchanges (GI, settings read, record transfer) lends the bus between its exchanges, so
every other relay gets its polling turn meanwhile (`_others_turn`).

Durability: every answer's observations (decoded and judged in `answers.py`) are delivered
(`sink.deliver`, durable) *before* `Iec103Master.acknowledge` toggles the FCB that
acknowledges the answer to the relay.

Isolation: a relay that stops answering is reported down and tried again every
`offline_retry_s` with a single reset; the others keep being polled. Only a failure of the
port itself ends `run` with `LinkError`.

Data flow control: user data (time sync, GI, generic reads, disturbance orders) never goes
to a relay whose last answer had DFC=1. The pending step is abandoned for this turn (`DataFlowWait`)
and run again from the start once an answer has DFC=0; meanwhile that relay is only
polled, at its poll interval, and the other relays on the bus have their turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from protocols.driver import (
    RESTARTS,
    ObservationSink,
    PollKind,
    PollResult,
    SettingsResult,
)
from protocols.errors import LinkError
from protocols.iec103 import ondemand
from protocols.iec103.answers import read_answer
from protocols.iec103.codec.asdu import encode_asdu
from protocols.iec103.codec.asdu_base import Asdu
from protocols.iec103.config import Iec103Device, Iec103ProfileSection
from protocols.iec103.link import (
    Iec103Master,
    Reply,
    SerialPort,
    Station,
    StationRefused,
    StationSilent,
)
from protocols.iec103.procedures import read_settings, run_steps
from protocols.iec103.records import RecordQueue
from protocols.iec103.relay import (
    STEP_GI,
    STEP_RECORD_LIST,
    STEP_TIME_SYNC,
    DataFlowWait,
    Relay,
)
from protocols.iec103.transfer import fetch_record
from protocols.observations import (
    LinkStateObservation,
    Observation,
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
            relay = Relay(cfg, station, scale)
            if cfg.disturbance_records:
                state = plan.state_dir / "iec103" / f"{cfg.id}.json" if plan.state_dir else None
                relay.records = RecordQueue(cfg.id, state)
            self.relays[cfg.id] = relay
        self.port: SerialPort | None = None
        self.master: Iec103Master | None = None
        self._sink: ObservationSink | None = None
        self._wake = asyncio.Event()
        self._lending = False  # `_others_turn` is running

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
            if not relay.config.read_settings:
                raise ValueError(f"device {device_id}: read_settings = false, no settings read")
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

    def device_counters(self) -> dict[str, dict[str, int]]:
        return {device_id: relay.all_counters() for device_id, relay in self.relays.items()}

    def bus_counters(self) -> dict[str, int]:
        return {} if self.port is None else self.port.counters()

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
            self._check_identity(relay, now)
            holding = relay.station.dfc and relay.user_data_due(now)
            if not relay.station.dfc:
                relay.dfc_since = None
            if holding:
                # buffer full: no user data, only polls (below) until an answer has DFC=0
                self._check_dfc_wait(relay, now)
            elif relay.steps:
                await run_steps(self, relay)
                return True
            elif relay.settings_read_due(now):
                await read_settings(self, relay)
                return True
            elif relay.records is not None and (entry := relay.records.due(now)) is not None:
                await fetch_record(self, relay, entry)
                return True
            return await self._poll_turn(relay, now, holding)
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

    async def _poll_turn(self, relay: Relay, now: float, holding: bool = False) -> bool:
        """A relay's polling turn: class 2 when its poll interval has passed and it has
        not announced class-1 data, then class 1 while ACD (at most `MAX_CLASS1_PER_TURN`):
        an event announced in a class-2 answer is fetched in the same turn, not a turn
        later. True when it used the bus."""
        used = relay.station.acd or now >= relay.next_poll
        relay.counters["dfc_waits"] += holding and used
        if not relay.station.acd and now >= relay.next_poll:
            relay.next_poll = now + relay.config.poll_interval_ms / 1000
            await self._poll(relay, 2)
        for _ in range(MAX_CLASS1_PER_TURN):
            if not relay.station.acd:
                break
            await self._poll(relay, 1)
        return used

    async def _others_turn(self, busy: Relay) -> None:
        """Between two exchanges of a procedure of `busy` (GI, settings read, record
        transfer), every other relay that is up gets its polling turn, so no procedure
        holds up another relay's events by more than one turn. Their own procedures
        wait for their own turn of the main loop."""
        if self._lending:
            return  # a turn is being lent already: polls only, never nested
        self._lending = True
        try:
            for other in self.relays.values():
                if other is busy or not other.up:
                    continue
                now = time.monotonic()
                holding = other.station.dfc and other.user_data_due(now)
                try:
                    await self._poll_turn(other, now, holding)
                except StationSilent as exc:
                    await self._down(other, str(exc))
        finally:
            self._lending = False

    def _check_identity(self, relay: Relay, now: float) -> None:
        """ASDU 5 may come some polls after the reset (ACD is not always set at once):
        warn only when it has not come within the procedure timeout."""
        if relay.identity is None and now >= relay.identity_due:
            relay.identity_due = float("inf")
            relay.counters["identity_missing"] += 1
            log.warning(
                "device %s: no ASDU 5 (identification) within %.0f s of the reset",
                relay.id,
                PROCEDURE_TIMEOUT_S,
            )

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
        relay.counters[RESTARTS] += not first  # back after it went down, the bus ran on
        relay.up = True
        await self.deliver([LinkStateObservation(relay.id, True, "reset")])
        relay.identity_due = time.monotonic() + PROCEDURE_TIMEOUT_S
        await self.drain_class1(relay)
        # config validation tied time_sync to allow_commands
        relay.steps = deque([STEP_TIME_SYNC, STEP_GI] if relay.config.time_sync else [STEP_GI])
        if relay.records is not None:
            relay.steps.append(STEP_RECORD_LIST)
        relay.dfc_since = None
        await run_steps(self, relay)

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
            await self.deliver([LinkStateObservation(relay.id, False, reason)])
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

    def _check_dfc_wait(self, relay: Relay, now: float) -> None:
        """Start the DFC wait, or end it with `StationRefused` once it has lasted too long."""
        if relay.dfc_since is None:
            relay.dfc_since = now
        elif now - relay.dfc_since > PROCEDURE_TIMEOUT_S:
            raise StationRefused(f"device {relay.id}: buffer full (DFC) for too long")

    async def _poll(self, relay: Relay, klass: int) -> Asdu | None:
        reply = await self._master().poll(relay.station, klass)
        return await self._handle(relay, reply)

    async def drain_class1(self, relay: Relay) -> None:
        """Poll class 1 while the relay has it (lending the bus between polls)."""
        for _ in range(256):
            if not relay.station.acd:
                return
            await self._poll(relay, 1)
            await self._others_turn(relay)

    async def poll_until(self, relay: Relay, done: Callable[[Asdu], bool]) -> Asdu | None:
        """Poll (class 1 while ACD, else class 2) until an ASDU satisfies `done`."""
        deadline = time.monotonic() + PROCEDURE_TIMEOUT_S
        while time.monotonic() < deadline:
            asdu = await self._poll(relay, 1 if relay.station.acd else 2)
            await self._others_turn(relay)
            if asdu is not None and done(asdu):
                return asdu
            if not relay.station.acd:
                await asyncio.sleep(0.01)
        log.warning("device %s: procedure timed out", relay.id)
        return None

    async def _handle(self, relay: Relay, reply: Reply) -> Asdu | None:
        """Make an answer's observations durable, then acknowledge it (FCB)."""
        asdu, obs = read_answer(relay, reply.asdu)
        if obs:
            await self.deliver(obs)
        self._master().acknowledge(relay.station)
        return asdu

    async def deliver(self, obs: Sequence[Observation]) -> None:
        """Hand observations to the sink; returns once they are durable."""
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
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # comes with the wake-up, and the link would then never stop (common/mqtt_client.py).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(wait, 1.0)):
                await self._wake.wait()
