"""pymodbus' register answers (function codes 3 and 4), decoded in one struct call.

pymodbus 3.16 decodes a register answer one register at a time and formats the whole
answer into a debug message even when debug logging is off: about 20 µs for 34 registers,
a tenth of the agent's CPU per poll. These subclasses of its own response classes are
registered with each client's decoder (`ModbusBaseClient.register`, pymodbus' API for
custom responses): the same registers from the same bytes, the same refusal of a byte
count longer than the frame, and a short `str`.
"""

from __future__ import annotations

import struct

from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)


def decode_registers(pdu: ModbusPDU, data: bytes) -> None:
    """Byte count, then big-endian registers (an odd last byte is ignored, as pymodbus
    does); a byte count past the end of the frame is refused."""
    if (byte_count := data[0]) >= len(data):
        raise ModbusIOException(
            f"byte_count {byte_count} > length of packet {len(data)}",
            function_code=pdu.function_code,
        )
    pdu.registers = list(struct.unpack_from(f">{byte_count // 2}H", data, 1))


def brief(pdu: ModbusPDU) -> str:
    return (
        f"{type(pdu).__name__}(dev_id={pdu.dev_id}, transaction_id={pdu.transaction_id}, "
        f"registers={len(pdu.registers)})"
    )


class HoldingRegisters(ReadHoldingRegistersResponse):
    """Function code 3's answer."""

    def decode(self, data: bytes) -> None:
        decode_registers(self, data)

    def __str__(self) -> str:
        return brief(self)


class InputRegisters(ReadInputRegistersResponse):
    """Function code 4's answer."""

    def decode(self, data: bytes) -> None:
        decode_registers(self, data)

    def __str__(self) -> str:
        return brief(self)


ANSWERS: tuple[type[ModbusPDU], ...] = (HoldingRegisters, InputRegisters)
