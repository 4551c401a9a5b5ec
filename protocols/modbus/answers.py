"""pymodbus' register answers (function codes 3 and 4), decoded in one struct call.

pymodbus 3.16 decodes a register answer one register at a time and formats the whole
answer into a debug message even when debug logging is off: about 20 µs for 34 registers,
a tenth of the agent's CPU per poll. These subclasses of its own response classes are
registered with each client's decoder (`ModbusBaseClient.register`, pymodbus' API for
custom responses): the same registers from the same bytes, the same refusal of a byte
count longer than the frame, and a short `str`.

What arrives instead of a decodable answer is named here too (`classify_garbage`), from
the raw bytes the link's receive trace hook saw.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)


def decode_registers(pdu: HoldingRegisters | InputRegisters, data: bytes) -> None:
    """Byte count, then big-endian registers (an odd last byte is ignored, as pymodbus
    does), kept also as their bytes in `raw`; a byte count past the end of the frame is
    refused."""
    if (byte_count := data[0]) >= len(data):
        raise ModbusIOException(
            f"byte_count {byte_count} > length of packet {len(data)}",
            function_code=pdu.function_code,
        )
    words = byte_count // 2
    pdu.registers = list(struct.unpack_from(f">{words}H", data, 1))
    pdu.raw = data[1 : 1 + 2 * words]  # the same registers as bytes (the measurements' path)


def brief(pdu: ModbusPDU) -> str:
    return (
        f"{type(pdu).__name__}(dev_id={pdu.dev_id}, transaction_id={pdu.transaction_id}, "
        f"registers={len(pdu.registers)})"
    )


class HoldingRegisters(ReadHoldingRegistersResponse):
    """Function code 3's answer."""

    raw = b""

    def decode(self, data: bytes) -> None:
        decode_registers(self, data)

    def __str__(self) -> str:
        return brief(self)


class InputRegisters(ReadInputRegistersResponse):
    """Function code 4's answer."""

    raw = b""

    def decode(self, data: bytes) -> None:
        decode_registers(self, data)

    def __str__(self) -> str:
        return brief(self)


ANSWERS: tuple[type[ModbusPDU], ...] = (HoldingRegisters, InputRegisters)


@dataclass(frozen=True, slots=True)
class Expect:
    """What the link asked for: the unit, the function code, how many registers or bits."""

    unit: int
    function_code: int
    count: int


def rtu_crc(data: bytes) -> int:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF), as the two wire bytes read big-endian."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return ((crc & 0xFF) << 8) | (crc >> 8)


def expected_pdu_length(expect: Expect) -> int | None:
    """Length of a normal answer's PDU (function code onwards), where it is fixed."""
    if expect.function_code in (3, 4):
        return 2 + 2 * expect.count
    if expect.function_code in (1, 2):
        return 2 + (expect.count + 7) // 8
    return None


def classify_garbage(rx: bytes, expect: Expect, framing: str) -> str:
    """Name what arrived instead of a decodable answer (pymodbus drops it silently)."""
    if framing == "socket":
        if len(rx) >= 7 and int.from_bytes(rx[4:6], "big") + 6 != len(rx):
            return "wrong_byte_count"
        return "garbled"
    if len(rx) >= 3 and rx[0] != expect.unit:
        return "wrong_unit"
    want = expected_pdu_length(expect)
    if (
        len(rx) >= 3
        and rx[1] == expect.function_code
        and want is not None
        and (rx[2] != want - 2 or len(rx) != want + 3)
    ):
        return "wrong_byte_count"
    if len(rx) >= 4 and rtu_crc(rx[:-2]) != int.from_bytes(rx[-2:], "big"):
        return "bad_crc"
    return "garbled"
