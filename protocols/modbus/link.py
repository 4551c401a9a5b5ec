"""The Modbus link: one pymodbus client (TCP socket, serial port or `socket://` RTU) and
the read-only choke point every request passes.

**Read-only.** `ModbusLink.execute` is the only code that hands a request to pymodbus, and
it first calls `require_read_only`: function codes 1, 2, 3, 4 and 43/14 pass, anything else
raises `WriteRefused`. A second check sits on the bytes themselves (pymodbus' send trace
hook sees every frame just before it is written) so that even a request built around
`execute` cannot put a write function code on the wire. No profile or config can widen it.

**One request in flight per link**, under a FIFO lock: that serialises an RS-485 bus and is
all a Modbus TCP connection allows anyway. Per-unit timeouts are the caller's (`answer_s`
argument); pymodbus' own timeout and retries are disabled so that a dead unit costs exactly
its own timeout and never makes pymodbus close a connection the other units still use.

**Malformed answers** are classified from the raw bytes (the receive trace hook), counted per
unit, and the line is left quiet for a moment before the next request so a garbled frame's
tail cannot be mistaken for the next answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
)

from common.tasks import cancel_safe
from protocols.config import SerialBusConfig
from protocols.errors import DecodeError, LinkError, ProtocolError, WriteRefused
from protocols.modbus.answers import ANSWERS, Expect, classify_garbage, expected_pdu_length
from protocols.modbus.codec import bytes_to_registers, registers_to_bytes

log = logging.getLogger(__name__)
trace = logging.getLogger(__name__ + ".trace")

READ_FUNCTION_CODES = frozenset({1, 2, 3, 4})
MEI = 0x2B
MEI_READ_DEVICE_ID = 0x0E


class UnitNoResponse(ProtocolError):
    """A unit did not answer in time (or answered garbage): that unit, not the link."""


class ModbusExceptionResponse(ProtocolError):
    """The unit answered with a Modbus exception (illegal address, busy, …)."""

    def __init__(self, unit: int, function_code: int, exception_code: int) -> None:
        super().__init__(f"unit {unit}: exception {exception_code} to function {function_code}")
        self.exception_code = exception_code


def require_read_only(request: ModbusPDU) -> None:
    """The read-only rule, on the request object."""
    fc = int(request.function_code)
    if fc in READ_FUNCTION_CODES:
        return
    if fc == MEI and getattr(request, "sub_function_code", None) == MEI_READ_DEVICE_ID:
        return
    raise WriteRefused(f"function code {fc} is not a read; only 1, 2, 3, 4 and 43/14 may be sent")


def require_read_only_frame(frame: bytes, framing: str) -> None:
    """The same rule on the encoded frame, just before it is written."""
    offset = 7 if framing == "socket" else 1
    if len(frame) <= offset:
        raise WriteRefused(f"refusing to send a frame too short to carry a read: {frame.hex()}")
    fc = frame[offset]
    if fc in READ_FUNCTION_CODES:
        return
    if fc == MEI and len(frame) > offset + 1 and frame[offset + 1] == MEI_READ_DEVICE_ID:
        return
    raise WriteRefused(f"frame with function code {fc} refused on the wire: {frame.hex()}")


@dataclass(slots=True)
class UnitCounters:
    """What happened on the wire for one unit; `driver.counters` exposes these."""

    requests: int = 0
    responses: int = 0
    no_response: int = 0
    exception_responses: int = 0
    bad_crc: int = 0
    wrong_byte_count: int = 0
    trailing_garbage: int = 0
    garbled: int = 0
    wrong_unit: int = 0

    @property
    def malformed(self) -> int:
        return (
            self.bad_crc + self.wrong_byte_count + self.trailing_garbage + self.garbled
            + self.wrong_unit
        )  # fmt: skip

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "malformed": self.malformed}


class ModbusLink:
    """One pymodbus client and the only path from the agent to the wire."""

    def __init__(
        self,
        name: str,
        *,
        host: str | None = None,
        port: int = 502,
        bus: SerialBusConfig | None = None,
        quiet_s: float = 0.02,
    ) -> None:
        self.name = name
        self.framing = "socket" if bus is None else "rtu"
        self.counters: dict[int, UnitCounters] = {}
        self._lock = asyncio.Lock()
        self._expect: Expect | None = None
        self._rx = b""
        self._quiet_s = quiet_s
        self._quiet_until = 0.0
        self._lost = asyncio.Event()
        self._connected = False
        # The answer awaited, when it times out (loop time), and the one timer that
        # watches it (see `_watch`).
        self._answer: asyncio.Future[ModbusPDU] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        common: dict[str, Any] = {
            "reconnect_delay": 0,  # the supervisor reconnects, not pymodbus
            "retries": 0,  # the poller retries per unit
            "timeout": 30.0,  # a ceiling only; per-unit timeouts are enforced here
            "trace_packet": self._trace_packet,
            "trace_connect": self._trace_connect,
        }
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if bus is None:
            if host is None:
                raise ValueError("a TCP link needs a host")
            self._client = AsyncModbusTcpClient(host, port=port, **common)
        else:
            self._client = AsyncModbusSerialClient(
                bus.port,
                framer=FramerType.RTU,
                baudrate=bus.baudrate,
                bytesize=bus.bytesize,
                parity=bus.parity,
                stopbits=bus.stopbits,
                **common,
            )
        for answer in ANSWERS:  # register answers decoded in one struct call
            self._client.register(answer)

    # --- lifetime ---------------------------------------------------------------------------

    async def open(self, connect_timeout_s: float = 5.0) -> None:
        try:
            async with asyncio.timeout(connect_timeout_s):
                ok = await cancel_safe(self._client.connect())  # its wait_for drops a stop
        except TimeoutError:
            ok = False
        except OSError as exc:
            raise LinkError(f"{self.name}: cannot connect: {exc}") from exc
        if not ok:
            raise LinkError(f"{self.name}: cannot connect")
        self._connected = True
        self._lost.clear()
        log.info("%s: link open", self.name)

    def close(self) -> None:
        self._connected = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._client.close()

    async def wait_lost(self) -> None:
        """Returns (raising LinkError) when the connection drops; run it in the driver's group."""
        await self._lost.wait()
        raise LinkError(f"{self.name}: connection lost")

    def _trace_connect(self, connected: bool) -> None:
        if not connected and self._connected:
            log.warning("%s: connection lost", self.name)
            self._connected = False
            self._lost.set()

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            require_read_only_frame(data, self.framing)  # last line of defence, on the bytes
            if trace.isEnabledFor(logging.DEBUG):
                trace.debug("%s: > %s", self.name, data.hex(" "))
            return data
        if self._expect is None:
            if data:
                self.unit_counters(0).garbled += 1  # nobody asked: a late or stray answer
            return data
        self._rx = data
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug("%s: < %s", self.name, data.hex(" "))
        return data

    def unit_counters(self, unit: int) -> UnitCounters:
        counters = self.counters.get(unit)
        if counters is None:
            counters = self.counters[unit] = UnitCounters()
        return counters

    # --- requests ---------------------------------------------------------------------------

    async def read_registers(
        self, unit: int, table: str, address: int, count: int, answer_s: float
    ) -> list[int]:
        return bytes_to_registers(
            await self.read_register_bytes(unit, table, address, count, answer_s)
        )

    async def read_register_bytes(
        self, unit: int, table: str, address: int, count: int, answer_s: float
    ) -> bytes:
        """The registers as they came, two big-endian bytes each."""
        cls = ReadHoldingRegistersRequest if table == "holding" else ReadInputRegistersRequest
        response = await self.execute(cls(address=address, count=count, dev_id=unit), answer_s)
        raw: bytes | None = getattr(response, "raw", None)  # answers.py's answers keep it
        if raw is None:
            raw = registers_to_bytes(response.registers)
        if len(raw) != 2 * count:
            self.unit_counters(unit).wrong_byte_count += 1
            raise DecodeError(
                f"unit {unit}: asked {count} registers at {address}, got {len(raw) // 2}"
            )
        return raw

    async def read_bits(
        self, unit: int, table: str, address: int, count: int, answer_s: float
    ) -> list[bool]:
        cls = ReadCoilsRequest if table == "coils" else ReadDiscreteInputsRequest
        response = await self.execute(cls(address=address, count=count, dev_id=unit), answer_s)
        bits = list(response.bits)
        if len(bits) < count:
            self.unit_counters(unit).wrong_byte_count += 1
            raise DecodeError(f"unit {unit}: asked {count} bits at {address}, got {len(bits)}")
        return bits[:count]

    async def read_device_information(self, unit: int, answer_s: float) -> dict[int, bytes]:
        """FC 43/14, basic objects (vendor, product code, revision)."""
        response = await self.execute(ReadDeviceInformationRequest(dev_id=unit), answer_s)
        info: dict[int, bytes] = dict(getattr(response, "information", {}) or {})
        return info

    async def execute(self, request: ModbusPDU, answer_s: float) -> ModbusPDU:
        """The choke point: every request the agent sends goes through here."""
        require_read_only(request)
        unit = int(request.dev_id)
        counters = self.unit_counters(unit)
        async with self._lock:
            if not self._connected:
                raise LinkError(f"{self.name}: not connected")
            wait = self._quiet_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._expect = Expect(unit, int(request.function_code), int(request.count))
            self._rx = b""
            counters.requests += 1
            try:
                response = await self._exchange(request, answer_s)
            except TimeoutError:
                kind = (
                    "no_response"
                    if not self._rx
                    else classify_garbage(self._rx, self._expect, self.framing)
                )
                setattr(counters, kind, getattr(counters, kind) + 1)
                self._quiet_until = time.monotonic() + self._quiet_s
                if not self._connected:
                    raise LinkError(f"{self.name}: connection lost") from None
                raise UnitNoResponse(f"unit {unit}: {kind.replace('_', ' ')}") from None
            except ConnectionException as exc:
                raise LinkError(f"{self.name}: {exc}") from exc
            except ModbusException as exc:
                counters.garbled += 1
                self._quiet_until = time.monotonic() + self._quiet_s
                raise DecodeError(f"unit {unit}: {exc}") from exc
            finally:
                rx, expect, self._expect = self._rx, self._expect, None
        self._check_length(counters, rx, expect)
        if response.isError():
            counters.exception_responses += 1
            code = int(getattr(response, "exception_code", 0))
            raise ModbusExceptionResponse(unit, int(request.function_code), code)
        counters.responses += 1
        return response

    async def _exchange(self, request: ModbusPDU, answer_s: float) -> ModbusPDU:
        """One request and its answer through pymodbus' transaction manager: its framer
        builds the frame and its receive path decodes the answer into `response_future`,
        as in `TransactionManager.execute` (pymodbus 3.16) with no retries, less what this
        link already does: one request at a time (its lock) and the unit's own timeout,
        here the link's timer on the answer (TimeoutError, `_watch`) rather than
        pymodbus' `wait_for` and a cancel scope around it."""
        manager = self._client.ctx
        if not manager.transport:
            raise ConnectionException(f"{self.name}: not connected")
        request.transaction_id = manager.getNextTID()
        manager.recv_buffer = b""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ModbusPDU] = loop.create_future()
        manager.response_future = answer
        try:
            manager.pdu_send(request)
            self._watch(loop, answer, loop.time() + answer_s)
            response = await answer
        finally:
            self._answer = None
        if request.dev_id and response.dev_id != request.dev_id:
            raise ModbusIOException(f"asked unit {request.dev_id}, unit {response.dev_id} answered")
        if response.transaction_id and response.transaction_id != request.transaction_id:
            raise ModbusIOException(
                f"transaction {response.transaction_id} answered, {request.transaction_id} asked"
            )
        return response

    def _watch(
        self, loop: asyncio.AbstractEventLoop, answer: asyncio.Future[ModbusPDU], deadline: float
    ) -> None:
        """Time `answer` out at `deadline`. One timer per link, not one per request: a
        timer already set to go off no later is kept, and when it goes off before the
        answer's deadline it is set again for the rest (`_timer_fired`). Polled every
        100 ms with a 1 s timeout, a link sets about one timer a second instead of ten,
        and cancels none."""
        self._answer, self._deadline = answer, deadline
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = loop.call_at(deadline, self._timer_fired, deadline)

    def _timer_fired(self, when: float) -> None:
        self._timer = None
        answer = self._answer
        if answer is None or answer.done():
            return  # answered: the next request sets a timer again
        if self._deadline <= when:
            answer.set_exception(TimeoutError())
        else:
            self._timer = answer.get_loop().call_at(
                self._deadline, self._timer_fired, self._deadline
            )

    def _check_length(self, counters: UnitCounters, rx: bytes, expect: Expect) -> None:
        """A good answer followed by extra bytes: pymodbus swallows them; we count them."""
        pdu = expected_pdu_length(expect)
        if pdu is None or not rx:
            return
        if rx[1 if self.framing == "rtu" else 7] & 0x80:
            pdu = 2  # an exception answer: function code and exception code
        frame = pdu + (3 if self.framing == "rtu" else 7)  # unit+CRC, or MBAP
        if len(rx) > frame:
            counters.trailing_garbage += 1
            self._quiet_until = time.monotonic() + self._quiet_s


LinkFactory = Callable[..., ModbusLink]
