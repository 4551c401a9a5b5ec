"""A simulated IEC 103 relay (secondary station), built on our codec.

Scenario relay:

    [[relays]]
    id = "line1"
    protocol = "iec103"
    profile = "line-protection-103"
    link = { port = "/tmp/relay-sim/rs485-1", link_address = 1, common_address = 1 }

`port` is a path (the simulator creates a pty and symlinks the path to it) or
`socket://127.0.0.1:PORT`; relays with the same port share one bus (see `iec103_bus`).
`relay.device_path` is the pty the master opens. Optional link keys: `fun` (the relay's
function type, default the FUN of the profile's first point).

Behaviour: reset CU queues ASDU 5; an FCV frame with the FCB of the last one gets the last
answer again (a repeat); a new FCB acknowledges it, and only then is a class-1 entry gone
(`delivered` lists them, for tests). A reset puts an unacknowledged entry back at the head.
Point steps queue ASDU 1 (ASDU 2 with fault number for starts and trips); a trip adds a
disturbance record (ASDU 23); setting steps change a generic-services entry and queue
INF 22 "local parameter setting"; firmware steps change the ASDU 5 software id (4 octets)
and queue ASDU 5 with COT "start/restart"; offline stops all answers.

Data flow control (IEC 60870-5-2): `hold_busy(n)` fills the relay's buffer for its next
n answers. Each of them carries DFC=1, and a send/confirm of user data that arrives
meanwhile is not executed but answered NACK with DFC=1 ("message not accepted, data flow
control"), as a new exchange (its FCB is taken, so a repeat must toggle it). With
`after_next_send=True` the next user data is still accepted, and its ACK already says
DFC=1. `nack_next_send` refuses the next send although DFC was not announced (the buffer
filled between two exchanges). `received` records every frame addressed to the relay
(`ReceivedFrame`), so a test can check what the master sent and when.

Test hooks: `garbage_next`, `corrupt_next`, `ignore_next`, `queue_raw`, `hold_busy`,
`nack_next_send`, `send_identity` / `identity_after` (ASDU 5 never, or only some requests
after the reset), `answer_generic` (False: generic reads are never answered),
`interrupt_after` (restart or fall silent in the middle of a record transfer). Records and
their transfer: `recorder` (`simulator/iec103_records.py`), `record(...)`; a recorded
record replayed: `replay(...)` (`simulator/iec103_replay.py`).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from agent.profiles import PointSpec, Profile
from protocols.config import StrictModel
from protocols.iec103.asdu import decode_asdu, encode_asdu
from protocols.iec103.asdu_base import Asdu, Cot
from protocols.iec103.asdu_disturbance import DisturbanceList
from protocols.iec103.asdu_generic import (
    GenericCommand,
)
from protocols.iec103.asdu_measurands import Measurand, Measurands2
from protocols.iec103.asdu_messages import (
    GeneralInterrogation,
    Identification,
    RelativeTimeMessage,
    TimeSync,
    TimeTaggedMessage,
)
from protocols.iec103.asdu_transfer import DisturbanceAck, DisturbanceOrder
from protocols.iec103.frames import (
    START_FIXED,
    START_VARIABLE,
    Control,
    FixedFrame,
    Frame,
    PrimaryFunction,
    SecondaryFunction,
    VariableFrame,
    encode_frame,
)
from protocols.iec103.time import cp32_from_datetime
from simulator import iec103_bus
from simulator.iec103_records import RecordServer
from simulator.iec103_replay import ReplayRecord
from simulator.iec103_services import generic_read_answers, gi_answers
from simulator.scenario import RelaySpec
from simulator.waveforms import FaultSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """One frame from the master, as the relay saw it, and what it answered."""

    function: int  # PrimaryFunction
    fcb: bool
    fcv: bool
    type_id: int | None  # the ASDU type of user data, None for a fixed frame
    busy: bool  # the relay's buffer was full when the frame arrived
    dfc_announced: bool  # the relay's previous answer carried DFC=1
    answer: int | None  # SecondaryFunction of the answer (None: none, or the E5 char)
    answer_dfc: bool  # the answer carried DFC=1
    repeat: bool  # same FCB as the last FCV frame: the retained answer went out again

    @property
    def user_data(self) -> bool:
        return self.type_id is not None and self.function in (
            PrimaryFunction.SEND_CONFIRM,
            PrimaryFunction.SEND_NO_REPLY,
        )


class Iec103Link(StrictModel):
    port: str
    link_address: int = Field(ge=0, le=254)
    common_address: int = Field(ge=0, le=254)
    fun: int | None = Field(default=None, ge=0, le=255)


class Iec103Relay:
    def __init__(self, spec: RelaySpec, profile: Profile) -> None:
        self.spec, self.profile = spec, profile
        self.link = Iec103Link.model_validate(spec.link)
        self.link_address = self.link.link_address
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
        self.online = True
        self.class1: deque[tuple[bytes, Any]] = deque()
        self.delivered: list[Any] = []  # tags of class-1 entries the master acknowledged
        self.fault_number = 0
        self.fault_start: datetime | None = None
        self.recorder = RecordServer(self.link.common_address, self.fun)
        # what the record of a trip shows; None: trips record nothing (the relay replays
        # an incident's records instead, see `replay`)
        self.record_spec: FaultSpec | None = FaultSpec()
        self.last_fcb: bool | None = None
        self.retained: tuple[bytes, tuple[bytes, Any] | None] | None = None
        self.bus: iec103_bus.SimulatedBus | None = None
        self.requests = 0
        self.repeats = 0
        self.time_syncs = 0
        # test hooks
        self.garbage_next = b""
        self.corrupt_next = 0
        self.ignore_next = 0
        # Data flow control: while `busy_answers` > 0 the relay's buffer is full: every
        # answer carries DFC=1 and a send/confirm of user data is refused (NACK, not
        # executed). `nack_next_send` refuses the next one even before DFC was announced
        # (the buffer filled between two exchanges). See `hold_busy`.
        self.busy_answers = 0
        self.busy_after_send = 0  # the buffer fills with the next accepted user data
        self.nack_next_send = 0
        self.refused_sends = 0
        self.sends_after_dfc = 0  # user data sent although the last answer said DFC=1
        self.last_dfc = False
        self.received: list[ReceivedFrame] = []
        # Identification after a reset: at once (ACD in the reset's ACK), only after
        # `identity_after` more requests (ACD off meanwhile), or never (`send_identity`).
        self.send_identity = True
        self.identity_after = 0
        self._identity_countdown: int | None = None
        self.answer_generic = True  # False: generic reads are accepted but never answered
        self.interrupt_after: tuple[int, Literal["restart", "offline"]] | None = None

    @property
    def device_path(self) -> str | None:
        return self.bus.device_path if self.bus else None

    # --- SimulatedRelay ----------------------------------------------------------------

    async def start(self) -> None:
        self.bus = await iec103_bus.attach(self.link.port, self)

    async def stop(self) -> None:
        await iec103_bus.detach(self.link.port, self)
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

    def queue_raw(self, asdu: bytes, tag: Any = "raw") -> None:
        self.class1.append((asdu, tag))

    def hold_busy(self, answers: int, *, after_next_send: bool = False) -> None:
        """Report a full buffer (DFC=1) in the next `answers` answers, refusing user data
        meanwhile; 0 empties it at once. With `after_next_send`, the buffer fills only
        when the next user data has been accepted (its ACK is the first DFC=1 answer)."""
        if after_next_send:
            self.busy_after_send = answers
        else:
            self.busy_answers = answers

    # --- the secondary station -----------------------------------------------------------

    def handle(self, frame: Frame) -> bytes | None:
        if not self.online or not isinstance(frame, FixedFrame | VariableFrame):
            return None
        self.requests += 1
        if self._identity_countdown is not None:
            if self._identity_countdown <= 0:
                self._identity_countdown = None
                self._queue(self._identification(Cot.RESET_CU), ("identity",))
            else:
                self._identity_countdown -= 1
        if self.ignore_next:
            self.ignore_next -= 1
            return None
        answer = self._answer(frame)
        if answer is None:
            return None
        if self.corrupt_next:
            self.corrupt_next -= 1
            answer = answer[:-2] + bytes([(answer[-2] + 1) & 0xFF]) + answer[-1:]
        if self.garbage_next:
            answer, self.garbage_next = self.garbage_next + answer, b""
        return answer

    def _answer(self, frame: FixedFrame | VariableFrame) -> bytes | None:
        busy, announced, repeats = self._busy, self.last_dfc, self.repeats
        answer = self._answer_frame(frame)
        reply = _answer_control(answer)
        if answer is not None:
            self.last_dfc = reply.dfc if reply is not None else False
        if self.busy_answers:
            self.busy_answers -= 1
        c = frame.control
        self.received.append(
            ReceivedFrame(
                function=c.function,
                fcb=c.fcb,
                fcv=c.fcv,
                type_id=frame.asdu[0] if isinstance(frame, VariableFrame) and frame.asdu else None,
                busy=busy,
                dfc_announced=announced,
                answer=reply.function if reply is not None else None,
                answer_dfc=reply.dfc if reply is not None else False,
                repeat=self.repeats != repeats,
            )
        )
        return answer

    @property
    def _acd(self) -> bool:
        return bool(self.class1 or self.recorder.queue)

    @property
    def _busy(self) -> bool:
        return self.busy_answers > 0

    def _answer_frame(self, frame: FixedFrame | VariableFrame) -> bytes | None:
        c = frame.control
        if c.function in (PrimaryFunction.RESET_CU, PrimaryFunction.RESET_FCB):
            self._requeue_unacknowledged()
            self.recorder.reset()
            cot = Cot.RESET_CU if c.function == PrimaryFunction.RESET_CU else Cot.RESET_FCB
            if self.send_identity and self.identity_after:
                self._identity_countdown = self.identity_after
            elif self.send_identity:
                self.class1.appendleft((encode_asdu(self._identification(cot)), ("identity",)))
            self.last_fcb, self.retained = None, None
            return self._fixed(SecondaryFunction.ACK)
        if c.function == PrimaryFunction.REQUEST_STATUS:
            return self._fixed(SecondaryFunction.STATUS)
        if c.fcv:
            if self.last_fcb is not None and c.fcb == self.last_fcb and self.retained:
                self.repeats += 1
                return self.retained[0]
            if self.retained and self.retained[1] is not None:
                self.delivered.append(self.retained[1][1])  # the new FCB acknowledged it
            self.retained = None
            self.last_fcb = c.fcb
        entry: tuple[bytes, Any] | None = None
        if c.function in (PrimaryFunction.SEND_CONFIRM, PrimaryFunction.SEND_NO_REPLY):
            user_data = isinstance(frame, VariableFrame)
            if user_data and self.last_dfc:
                self.sends_after_dfc += 1
            if user_data and (self._busy or self.nack_next_send):
                # buffer full: "message not accepted, data flow control" (NACK, DFC=1)
                if self.nack_next_send:
                    self.nack_next_send -= 1
                    self.busy_answers = max(self.busy_answers, 1)
                self.refused_sends += 1
                answer = self._fixed(SecondaryFunction.NACK)
            else:
                if isinstance(frame, VariableFrame):
                    self._command(frame.asdu)
                    if self.busy_after_send:  # accepted, and now the buffer is full
                        self.busy_answers, self.busy_after_send = self.busy_after_send, 0
                answer = self._fixed(SecondaryFunction.ACK)
        elif c.function == PrimaryFunction.REQUEST_CLASS_1 and self.class1:
            entry = self.class1.popleft()
            answer = self._data(entry[0])
        elif c.function == PrimaryFunction.REQUEST_CLASS_1 and self.recorder.queue:
            raw = self.recorder.next_answer()  # after the events
            self._interrupt_transfer()
            answer = self._data(raw)
        elif c.function == PrimaryFunction.REQUEST_CLASS_2 and self.measurands:
            answer = self._data(encode_asdu(self._measurands()))
        else:
            answer = self._fixed(SecondaryFunction.NO_DATA)
        if c.fcv:
            self.retained = (answer, entry)
        return None if c.function == PrimaryFunction.SEND_NO_REPLY else answer

    def _interrupt_transfer(self) -> None:
        """`interrupt_after = (n, how)`: once n ASDU 30 have been served, the relay
        restarts (ASDU 5 start/restart, the transfer lost) or falls silent."""
        if self.interrupt_after is None or self.recorder.values_served < self.interrupt_after[0]:
            return
        how = self.interrupt_after[1]
        self.interrupt_after = None
        if how == "restart":
            self.recorder.reset()
            self._queue(self._identification(Cot.START_RESTART), ("restart",))
        else:
            self.online = False

    def _requeue_unacknowledged(self) -> None:
        if self.retained and self.retained[1] is not None:
            self.class1.appendleft(self.retained[1])
        self.retained = None

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

    def _fixed(self, function: int) -> bytes:
        control = Control.secondary(function, acd=self._acd, dfc=self._busy)
        return encode_frame(FixedFrame(control, self.link_address))

    def _data(self, asdu: bytes) -> bytes:
        control = Control.secondary(SecondaryFunction.USER_DATA, acd=self._acd, dfc=self._busy)
        return encode_frame(VariableFrame(control, self.link_address, asdu))


def _answer_control(answer: bytes | None) -> Control | None:
    """The control field of an encoded answer (None for no answer or the E5 char)."""
    if not answer:
        return None
    if answer[0] == START_FIXED and len(answer) >= 2:
        return Control.from_byte(answer[1])
    if answer[0] == START_VARIABLE and len(answer) >= 5:
        return Control.from_byte(answer[4])
    return None


def make_relay(spec: RelaySpec, profile: Profile) -> Iec103Relay:
    return Iec103Relay(spec, profile)
