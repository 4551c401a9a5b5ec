"""A simulated IEC 103 relay (secondary station), built on our codec.

Scenario relay:

    [[relays]]
    id = "line1"
    protocol = "iec103"
    profile = "line-protection-103"
    link = { port = "/tmp/relay-sim/rs485-1", link_address = 1, common_address = 1 }

`port` is a path (the simulator creates a pty and symlinks the path to it) or
`socket://127.0.0.1:PORT`; relays with the same port share one bus (see `bus.py`).
`relay.device_path` is the pty the master opens. Optional link keys: `fun` (the relay's
function type, default the FUN of the profile's first point).

Behaviour: reset CU queues ASDU 5. Point steps queue ASDU 1 (ASDU 2 with fault number for
starts and trips); a trip adds a disturbance record (ASDU 23); setting steps change a
generic-services entry and queue INF 22 "local parameter setting"; firmware steps change
the ASDU 5 software id (4 octets) and queue ASDU 5 with COT "start/restart"; offline stops
all answers. The link layer (FCB repeats, acknowledged class-1 entries in `delivered`, data
flow control with `hold_busy` and `nack_next_send`, the `received` frame log) is the
`SecondaryStation` in `simulator/relays/iec103/station.py`.

Test hooks (beside the station's): `send_identity` / `identity_after` (ASDU 5 never, or
only some requests after the reset), `answer_generic` (False: generic reads are never
answered), `interrupt_after` (restart, fall silent or stall in the middle of a record
transfer). Records and their transfer: `recorder` (`simulator/relays/iec103/records.py`),
`record(...)`; a recorded record replayed: `replay(...)` (`simulator/relays/iec103/replay.py`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from common.config import StrictModel
from profiles.model import PointSpec, Profile
from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_base import Asdu, Cot
from protocols.iec103.codec.asdu_disturbance import DisturbanceList
from protocols.iec103.codec.asdu_generic import GenericCommand
from protocols.iec103.codec.asdu_measurands import Measurand, Measurands2
from protocols.iec103.codec.asdu_messages import (
    GeneralInterrogation,
    Identification,
    RelativeTimeMessage,
    TimeSync,
    TimeTaggedMessage,
)
from protocols.iec103.codec.asdu_transfer import DisturbanceAck, DisturbanceOrder
from protocols.iec103.codec.frames import PrimaryFunction
from protocols.iec103.codec.time import cp32_from_datetime
from simulator.relays.iec103 import bus
from simulator.relays.iec103.records import RecordServer
from simulator.relays.iec103.replay import ReplayRecord
from simulator.relays.iec103.services import generic_read_answers, gi_answers
from simulator.relays.iec103.station import SecondaryStation
from simulator.scenario import RelaySpec
from simulator.waveforms import FaultSpec

log = logging.getLogger(__name__)


class Iec103Link(StrictModel):
    port: str
    link_address: int = Field(ge=0, le=254)
    common_address: int = Field(ge=0, le=254)
    fun: int | None = Field(default=None, ge=0, le=255)


class Iec103Relay(SecondaryStation):
    def __init__(self, spec: RelaySpec, profile: Profile) -> None:
        self.spec, self.profile = spec, profile
        self.link = Iec103Link.model_validate(spec.link)
        super().__init__(self.link.link_address)
        first = next((p.address for p in profile.points), "128/0")
        self.fun = self.link.fun if self.link.fun is not None else int(first.split("/")[0])
        self.manufacturer = spec.identity.manufacturer
        self.software = spec.identity.firmware_version
        self.settings: dict[str, bool | int | float | str] = dict(spec.settings)
        self.states: dict[str, int] = {}
        section = profile.section
        self.scale: dict[str, float] = dict(getattr(section, "scale", {}) or {})
        # measurands as fractions of range (wire form); start at a quarter of range
        self.measurands: dict[str, float] = {
            p.address: 0.25 for p in profile.points if p.kind == "measurement"
        }
        self.fault_number = 0
        self.fault_start: datetime | None = None
        self.recorder = RecordServer(self.link.common_address, self.fun)
        # what the record of a trip shows; None: trips record nothing (the relay replays
        # an incident's records instead, see `replay`)
        self.record_spec: FaultSpec | None = FaultSpec()
        self.bus: bus.SimulatedBus | None = None
        self.time_syncs = 0
        # Identification after a reset: at once (ACD in the reset's ACK), only after
        # `identity_after` more requests (ACD off meanwhile), or never (`send_identity`).
        self.send_identity = True
        self.identity_after = 0
        self._identity_countdown: int | None = None
        self.answer_generic = True  # False: generic reads are accepted but never answered
        self.interrupt_after: tuple[int, Literal["restart", "offline", "stall"]] | None = None

    @property
    def device_path(self) -> str | None:
        return self.bus.device_path if self.bus else None

    # --- SimulatedRelay ----------------------------------------------------------------

    async def start(self) -> None:
        self.bus = await bus.attach(self.link.port, self)

    async def stop(self) -> None:
        await bus.detach(self.link.port, self)
        self.bus = None

    async def emit(
        self,
        point: PointSpec,
        value: bool | int | float | str | None,
        quality: list[str],
        device_time: datetime,
    ) -> None:
        if point.kind == "measurement":
            self.measurands[point.address] = float(value or 0) / self.scale.get(point.address, 1)
            return
        fun, inf = (int(x) for x in point.address.split("/"))
        dpi = 2 if value and value != "off" else 1
        self.states[point.address] = dpi
        t = cp32_from_datetime(device_time, invalid="IV" in quality)
        head = {
            "cot": Cot.SPONTANEOUS,
            "common_address": self.link.common_address,
            "fun": fun,
            "inf": inf,
        }
        asdu: Asdu
        if point.kind in ("start", "trip"):
            if self.fault_start is None or (dpi == 2 and point.kind == "start"):
                self.fault_number = (self.fault_number + 1) & 0xFFFF
                self.fault_start = device_time
            ret = int((device_time - self.fault_start).total_seconds() * 1000)
            asdu = RelativeTimeMessage(
                **head,
                dpi=dpi,
                relative_time=max(0, min(ret, 65535)),
                fault_number=self.fault_number,
                time=t,
            )
        else:
            asdu = TimeTaggedMessage(**head, dpi=dpi, time=t)
        self._queue(asdu, ("point", point.address, dpi == 2))
        if point.kind == "trip" and dpi == 2 and self.record_spec is not None:
            inception = self.fault_start or device_time
            directory = self.recorder.add(self.fault_number, inception, self.record_spec)
            self._queue(directory, ("disturbance", self.fault_number))

    async def record(
        self,
        spec: FaultSpec,
        inception: datetime,
        *,
        count: int = 1,
        abort_after: int | None = None,
    ) -> list[int]:
        """Record `count` faults (a burst, 1 ms apart) and announce them in one ASDU 23;
        returns their fault numbers."""
        fans: list[int] = []
        directory: DisturbanceList | None = None
        for n in range(count):
            self.fault_number = (self.fault_number + 1) & 0xFFFF
            fans.append(self.fault_number)
            when = inception + timedelta(milliseconds=n)
            directory = self.recorder.add(self.fault_number, when, spec, abort_after=abort_after)
        if directory is not None:
            self._queue(directory, ("disturbance", fans[-1]))
        return fans

    async def replay(self, record: ReplayRecord, fault_number: int, trigger: datetime) -> None:
        """Announce a whole record again (an incident's `[[disturbances]]` entry)."""
        first = record.first_sample(trigger)
        directory = self.recorder.keep(fault_number, trigger, first, record.synth)
        self._queue(directory, ("disturbance", fault_number))

    async def set_online(self, online: bool) -> None:
        self.online = online

    async def set_setting(self, name: str, value: bool | int | float | str) -> None:
        self.settings[name] = value
        now = datetime.now(UTC)
        self._queue(
            TimeTaggedMessage(
                cot=Cot.SPONTANEOUS,
                common_address=self.link.common_address,
                fun=self.fun,
                inf=22,
                dpi=2,
                time=cp32_from_datetime(now),
            ),
            ("setting", name),
        )

    async def set_firmware(self, version: str) -> None:
        self.software = version
        self.recorder.reset()  # the relay restarts: a transfer in progress is lost
        self._queue(self._identification(Cot.START_RESTART), ("firmware", version))

    # --- the application behind the station's hooks ---------------------------------------

    def _on_request(self) -> None:
        if self._identity_countdown is not None:
            if self._identity_countdown <= 0:
                self._identity_countdown = None
                self._queue(self._identification(Cot.RESET_CU), ("identity",))
            else:
                self._identity_countdown -= 1

    def _on_reset(self, function: int) -> None:
        self.recorder.reset()
        cot = Cot.RESET_CU if function == PrimaryFunction.RESET_CU else Cot.RESET_FCB
        if self.send_identity and self.identity_after:
            self._identity_countdown = self.identity_after
        elif self.send_identity:
            self.class1.appendleft((encode_asdu(self._identification(cot)), ("identity",)))

    @property
    def _acd(self) -> bool:
        return bool(self.class1 or self.recorder.queue)

    def _class1_transfer(self) -> bytes | None:
        """The record transfer's answers, once the events are out."""
        if not self.recorder.queue:
            return None
        raw = self.recorder.next_answer()
        self._interrupt_transfer()
        return raw

    def _class2_answer(self) -> bytes | None:
        return encode_asdu(self._measurands()) if self.measurands else None

    def _interrupt_transfer(self) -> None:
        """`interrupt_after = (n, how)`: once n ASDU 30 have been served, the relay
        restarts (ASDU 5 start/restart, the transfer lost), falls silent, or stalls (drops
        the transfer without a word and goes on answering polls, as a relay whose recorder
        task hangs)."""
        if self.interrupt_after is None or self.recorder.values_served < self.interrupt_after[0]:
            return
        how = self.interrupt_after[1]
        self.interrupt_after = None
        if how == "restart":
            self.recorder.reset()
            self._queue(self._identification(Cot.START_RESTART), ("restart",))
        elif how == "stall":
            self.recorder.reset()
        else:
            self.online = False

    def _command(self, raw: bytes) -> None:
        asdu = decode_asdu(raw)
        if isinstance(asdu, TimeSync):
            self.time_syncs += 1
            self._queue(
                TimeSync(
                    cot=Cot.TIME_SYNC,
                    common_address=self.link.common_address,
                    fun=asdu.fun,
                    inf=0,
                    time=asdu.time,
                ),
                ("time_sync",),
            )
        elif isinstance(asdu, GeneralInterrogation):
            self._general_interrogation(asdu.scn)
        elif isinstance(asdu, DisturbanceOrder | DisturbanceAck):
            self.recorder.handle(asdu)
        elif isinstance(asdu, GenericCommand) and asdu.items and self.answer_generic:
            self._generic_read(asdu)

    def _general_interrogation(self, scn: int) -> None:
        for asdu, tag in gi_answers(self.profile, self.states, scn, self.link.common_address):
            self._queue(asdu, tag)

    def _generic_read(self, cmd: GenericCommand) -> None:
        for asdu in generic_read_answers(cmd, self.settings, self.link.common_address):
            self._queue(asdu, ("generic", cmd.inf))

    def _identification(self, cot: int) -> Identification:
        return Identification(
            cot=cot,
            common_address=self.link.common_address,
            fun=self.fun,
            inf=cot - 1
            if cot in (Cot.RESET_FCB, Cot.RESET_CU, Cot.START_RESTART, Cot.POWER_ON)
            else 0,
            col=2,
            manufacturer=self.manufacturer.encode("latin-1")[:8].ljust(8),
            software=self.software.encode("latin-1")[:4].ljust(4),
        )

    def _measurands(self) -> Measurands2:
        by_asdu: dict[str, dict[int, float]] = {}
        for address, value in self.measurands.items():
            base, _, index = address.partition(".")
            by_asdu.setdefault(base, {})[int(index or 1)] = value
        base, values = next(iter(sorted(by_asdu.items())))
        fun, inf = (int(x) for x in base.split("/"))
        words = tuple(Measurand.of(values.get(i, 0.0)) for i in range(1, max(values) + 1))
        return Measurands2(
            cot=Cot.CYCLIC, common_address=self.link.common_address, fun=fun, inf=inf, values=words
        )

    def _queue(self, asdu: Asdu, tag: Any) -> None:
        self.class1.append((encode_asdu(asdu), tag))


def make_relay(spec: RelaySpec, profile: Profile) -> Iec103Relay:
    return Iec103Relay(spec, profile)
