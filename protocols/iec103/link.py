"""The FT1.2 primary station: the only module with serial I/O and a thread.

`SerialPort` owns one pyserial port (a device path, a pty, or a `socket://` URL of a
serial-to-Ethernet converter) and one worker thread; each request/answer exchange runs
there as one blocking call, so the asyncio side never blocks and requests on a bus are
serialised by construction.

`Iec103Master` implements the link procedure per relay (`Station`):

- reset CU, after which the first FCV=1 frame carries FCB=1;
- a retry repeats the *same* FCB, so the relay repeats its last answer instead of
  losing it;
- the FCB toggles only when the caller calls `acknowledge` - the driver does that after the
  answer's events are durable, because the toggle is what tells the relay to drop them;
- ACD (class-1 data waiting) and DFC (relay buffer full) are recorded from every answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import serial

from protocols.config import SerialBusConfig
from protocols.errors import LinkError
from protocols.iec103.codec.frames import (
    Control,
    FixedFrame,
    Frame,
    FrameExtractor,
    PrimaryFunction,
    SecondaryFunction,
    SingleCharFrame,
    VariableFrame,
    encode_frame,
)

log = logging.getLogger(__name__)
trace = logging.getLogger(__name__ + ".trace")  # hex dumps, DEBUG only

_T = TypeVar("_T")

READ_SLICE_S = 0.02  # pyserial read timeout: how often the worker re-checks its deadline


class StationSilent(LinkError):
    """One relay did not answer after all retries (the bus itself is fine)."""


class StationRefused(LinkError):
    """The relay answered NACK (function 1) to a send/confirm."""


@dataclass(frozen=True, slots=True)
class Reply:
    frame: Frame

    @property
    def control(self) -> Control | None:
        return None if isinstance(self.frame, SingleCharFrame) else self.frame.control

    @property
    def acd(self) -> bool:
        return self.control.acd if self.control else False

    @property
    def dfc(self) -> bool:
        return self.control.dfc if self.control else False

    @property
    def function(self) -> int:
        """E5 is a positive acknowledgement (or "no data" to a class poll)."""
        return self.control.function if self.control else SecondaryFunction.ACK

    @property
    def asdu(self) -> bytes | None:
        return self.frame.asdu if isinstance(self.frame, VariableFrame) else None


@dataclass
class Station:
    """Link-layer state of one relay on the bus."""

    address: int
    device_id: str
    retries: int = 2
    fcb: bool = True  # the FCB of the next *new* FCV=1 exchange
    pending_ack: bool = False  # the last FCV=1 answer is not acknowledged yet
    acd: bool = False
    dfc: bool = False
    counters: Counter[str] = field(default_factory=Counter)


class SerialPort:
    """One serial port and the thread that does all its blocking I/O."""

    def __init__(self, bus: SerialBusConfig) -> None:
        self.bus = bus
        self.timeout_s = bus.timeout_ms / 1000
        self.extractor = FrameExtractor()
        self.stale_frames = 0
        self.bytes_out = 0
        self.bytes_in = 0
        self._serial: serial.SerialBase | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"iec103-{bus.id}")

    async def open(self) -> None:
        await self._call(self._open_blocking)

    async def close(self) -> None:
        try:
            await asyncio.shield(self._call(self._close_blocking))
        finally:
            self._executor.shutdown(wait=False)

    async def exchange(self, request: bytes, address: int) -> Frame | None:
        """Send one request and wait for the answer of `address`; None on timeout."""
        return await self._call(self._exchange_blocking, request, address)

    def counters(self) -> dict[str, int]:
        """What the port has seen: bytes each way, and what the frame reader threw away."""
        ex = self.extractor
        return {
            "garbage_bytes": ex.garbage_bytes,
            "bad_frames": ex.bad_frames,
            "stale_frames": self.stale_frames,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
        }

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"bus {self.bus.id} ({self.bus.port}): {exc}") from exc

    # --- worker thread ---------------------------------------------------------------------

    def _open_blocking(self) -> None:
        bus = self.bus
        self._serial = serial.serial_for_url(
            bus.port,
            baudrate=bus.baudrate,
            bytesize=bus.bytesize,
            parity=bus.parity,
            stopbits=bus.stopbits,
            timeout=min(READ_SLICE_S, self.timeout_s),
            write_timeout=max(1.0, self.timeout_s),
        )
        self._serial.reset_input_buffer()
        log.info(
            "bus %s: opened %s at %d baud %d%s%d",
            bus.id,
            bus.port,
            bus.baudrate,
            bus.bytesize,
            bus.parity,
            bus.stopbits,
        )

    def _close_blocking(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def _exchange_blocking(self, request: bytes, address: int) -> Frame | None:
        port = self._serial
        if port is None:
            raise LinkError(f"bus {self.bus.id}: not open")
        waiting = port.in_waiting
        if waiting:  # late answers to an earlier, timed-out request: never mistake them
            stale = port.read(waiting)
            self.bytes_in += len(stale)
            self.stale_frames += len(self.extractor.feed(stale))
        self.stale_frames += len(self.extractor.flush())
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("bus %s >> %s", self.bus.id, request.hex(" "))
        port.write(request)
        self.bytes_out += len(request)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            self.bytes_in += len(data)
            if trace.isEnabledFor(logging.DEBUG):
                trace.debug("bus %s << %s", self.bus.id, data.hex(" "))
            for frame in self.extractor.feed(data):
                if _answers(frame, address):
                    return frame
                self.stale_frames += 1
        for frame in self.extractor.flush():
            if _answers(frame, address):
                return frame
            self.stale_frames += 1
        return None


def _answers(frame: Frame, address: int) -> bool:
    if isinstance(frame, SingleCharFrame):
        return True
    return not frame.control.prm and frame.address == address


class Iec103Master:
    """The primary-station procedure over one `SerialPort`, for several stations."""

    def __init__(self, port: SerialPort) -> None:
        self.port = port

    async def reset(self, st: Station, retries: int | None = None) -> Reply:
        """Reset CU: the relay restarts its link and queues ASDU 5 (so ACD follows)."""
        reply = await self._exchange(
            st, FixedFrame(Control.primary(PrimaryFunction.RESET_CU), st.address), retries
        )
        st.fcb, st.pending_ack = True, False
        st.counters["resets"] += 1
        return reply

    async def poll(self, st: Station, klass: int) -> Reply:
        function = (
            PrimaryFunction.REQUEST_CLASS_1 if klass == 1 else (PrimaryFunction.REQUEST_CLASS_2)
        )
        return await self._fcv(st, FixedFrame(self._control(st, function), st.address))

    async def send(self, st: Station, asdu: bytes) -> Reply:
        """Send/confirm user data (ASDU 6, 7, 21); raises `StationRefused` on NACK."""
        frame = VariableFrame(self._control(st, PrimaryFunction.SEND_CONFIRM), st.address, asdu)
        reply = await self._fcv(st, frame)
        if reply.function == SecondaryFunction.NACK:
            self.acknowledge(st)
            st.counters["nacks"] += 1
            raise StationRefused(f"link address {st.address}: NACK to send/confirm")
        return reply

    def acknowledge(self, st: Station) -> None:
        """The last answer is processed (its events durable): toggle FCB for the next
        exchange, which tells the relay it may drop that answer."""
        if st.pending_ack:
            st.fcb = not st.fcb
            st.pending_ack = False

    def _control(self, st: Station, function: int) -> Control:
        # While an answer is unacknowledged the same FCB goes out again: a repeat.
        return Control.primary(function, fcb=st.fcb, fcv=True)

    async def _fcv(self, st: Station, frame: FixedFrame | VariableFrame) -> Reply:
        if st.pending_ack:
            st.counters["repeats"] += 1
        reply = await self._exchange(st, frame, None)
        st.pending_ack = True
        return reply

    async def _exchange(
        self, st: Station, frame: FixedFrame | VariableFrame, retries: int | None
    ) -> Reply:
        raw = encode_frame(frame)
        tries = 1 + (st.retries if retries is None else retries)
        for attempt in range(tries):
            if attempt:
                st.counters["retries"] += 1
            answer = await self.port.exchange(raw, st.address)
            if answer is not None:
                reply = Reply(answer)
                if reply.control is not None:
                    st.acd, st.dfc = reply.acd, reply.dfc
                else:
                    st.acd = st.dfc = False
                st.counters["exchanges"] += 1
                return reply
            st.counters["timeouts"] += 1
        raise StationSilent(f"no answer from link address {st.address}")
