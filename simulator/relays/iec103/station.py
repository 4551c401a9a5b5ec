"""The link layer of a simulated IEC 103 relay: an IEC 60870-5-2 secondary station.

Kept apart from the relay's application (`simulator/relays/iec103/relay.py`: its points, settings,
identity and records) because the link procedures are the same whatever the relay holds,
and most link tests only need these: an FCV frame with the FCB of the last one gets the
last answer again (a repeat); a new FCB acknowledges it, and only then is a class-1 entry
gone (`delivered`); a reset puts an unacknowledged entry back at the head of the queue.

Data flow control: `hold_busy(n)` fills the buffer for the next n answers (each DFC=1); a
send/confirm of user data meanwhile is answered NACK with DFC=1 and not executed, as a new
exchange (its FCB is taken, so a repeat must toggle it). `nack_next_send` refuses the next
send although DFC was not announced. `received` records every frame addressed to the
station (`ReceivedFrame`). Fault injection: `garbage_next`, `corrupt_next`, `ignore_next`,
`queue_raw`.

The application fills `class1` and answers through the hooks `_on_request`, `_on_reset`,
`_command`, `_class1_transfer` and `_class2_answer`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from protocols.iec103.codec.frames import (
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


class SecondaryStation:
    def __init__(self, link_address: int) -> None:
        self.link_address = link_address
        self.online = True
        self.class1: deque[tuple[bytes, Any]] = deque()
        self.delivered: list[Any] = []  # tags of class-1 entries the master acknowledged
        self.last_fcb: bool | None = None
        self.retained: tuple[bytes, tuple[bytes, Any] | None] | None = None
        self.requests = 0
        self.repeats = 0
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

    def handle(self, frame: Frame) -> bytes | None:
        if not self.online or not isinstance(frame, FixedFrame | VariableFrame):
            return None
        self.requests += 1
        self._on_request()
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

    # --- the application's hooks -----------------------------------------------------------

    def _on_request(self) -> None:
        """Called for every frame addressed to the station while it is online."""

    def _on_reset(self, function: int) -> None:
        """A reset CU or reset FCB (`function`, a `PrimaryFunction`), after the
        unacknowledged entry went back to the head of `class1`."""

    def _command(self, raw: bytes) -> None:
        """User data the station accepted."""

    def _class1_transfer(self) -> bytes | None:
        """A class-1 answer once `class1` is empty (None: nothing more)."""
        return None

    def _class2_answer(self) -> bytes | None:
        """The ASDU of a class-2 answer (None: no data)."""
        return None

    @property
    def _acd(self) -> bool:
        return bool(self.class1)

    # --- the link procedures ---------------------------------------------------------------

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
    def _busy(self) -> bool:
        return self.busy_answers > 0

    def _answer_frame(self, frame: FixedFrame | VariableFrame) -> bytes | None:
        c = frame.control
        if c.function in (PrimaryFunction.RESET_CU, PrimaryFunction.RESET_FCB):
            self._requeue_unacknowledged()
            self._on_reset(c.function)
            self.last_fcb, self.retained = None, None
            return self._fixed(SecondaryFunction.ACK)
        if c.function == PrimaryFunction.REQUEST_STATUS:
            return self._fixed(SecondaryFunction.STATUS)
        if c.fcv and (repeated := self._repeat_or_advance(c.fcb)) is not None:
            return repeated
        entry: tuple[bytes, Any] | None = None
        if c.function in (PrimaryFunction.SEND_CONFIRM, PrimaryFunction.SEND_NO_REPLY):
            answer = self._answer_send(frame)
        elif c.function == PrimaryFunction.REQUEST_CLASS_1 and self.class1:
            entry = self.class1.popleft()
            answer = self._data(entry[0])
        elif c.function == PrimaryFunction.REQUEST_CLASS_1 and (
            (raw := self._class1_transfer()) is not None
        ):
            answer = self._data(raw)  # after the events
        elif c.function == PrimaryFunction.REQUEST_CLASS_2 and (
            (raw := self._class2_answer()) is not None
        ):
            answer = self._data(raw)
        else:
            answer = self._fixed(SecondaryFunction.NO_DATA)
        if c.fcv:
            self.retained = (answer, entry)
        return None if c.function == PrimaryFunction.SEND_NO_REPLY else answer

    def _repeat_or_advance(self, fcb: bool) -> bytes | None:
        """The retained answer again for a repeated FCB; else the new FCB acknowledges it."""
        if self.last_fcb is not None and fcb == self.last_fcb and self.retained:
            self.repeats += 1
            return self.retained[0]
        if self.retained and self.retained[1] is not None:
            self.delivered.append(self.retained[1][1])  # the new FCB acknowledged it
        self.retained = None
        self.last_fcb = fcb
        return None

    def _answer_send(self, frame: FixedFrame | VariableFrame) -> bytes:
        user_data = isinstance(frame, VariableFrame)
        if user_data and self.last_dfc:
            self.sends_after_dfc += 1
        if user_data and (self._busy or self.nack_next_send):
            # buffer full: "message not accepted, data flow control" (NACK, DFC=1)
            if self.nack_next_send:
                self.nack_next_send -= 1
                self.busy_answers = max(self.busy_answers, 1)
            self.refused_sends += 1
            return self._fixed(SecondaryFunction.NACK)
        if isinstance(frame, VariableFrame):
            self._command(frame.asdu)
            if self.busy_after_send:  # accepted, and now the buffer is full
                self.busy_answers, self.busy_after_send = self.busy_after_send, 0
        return self._fixed(SecondaryFunction.ACK)

    def _requeue_unacknowledged(self) -> None:
        if self.retained and self.retained[1] is not None:
            self.class1.appendleft(self.retained[1])
        self.retained = None

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
