"""The register answers the link registers with pymodbus (protocols/modbus/answers.py)
decode what pymodbus' own classes decode, and refuse what they refuse."""

from __future__ import annotations

import pytest
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from protocols.modbus.answers import HoldingRegisters, InputRegisters

PAIRS: list[tuple[type[ModbusPDU], type[ModbusPDU]]] = [
    (HoldingRegisters, ReadHoldingRegistersResponse),
    (InputRegisters, ReadInputRegistersResponse),
]
FRAMES = [
    bytes([68]) + bytes(range(68)),  # 34 registers
    bytes([4, 0xFF, 0xFE, 0x00, 0x01]),
    bytes([5, 1, 2, 3, 4, 5]),  # an odd byte count: the last byte is not a register
    bytes([0, 9]),
]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
@pytest.mark.parametrize("frame", FRAMES)
def test_the_same_registers_as_pymodbus(
    ours: type[ModbusPDU], theirs: type[ModbusPDU], frame: bytes
) -> None:
    fast, reference = ours(), theirs()
    fast.decode(frame)
    reference.decode(frame)
    assert fast.registers == reference.registers
    assert isinstance(fast.registers, list)
    assert fast.function_code == reference.function_code


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_a_byte_count_past_the_frame_is_refused_like_pymodbus(
    ours: type[ModbusPDU], theirs: type[ModbusPDU]
) -> None:
    for cls in (ours, theirs):
        with pytest.raises(ModbusIOException):
            cls().decode(bytes([8, 1, 2]))


def test_its_text_is_short() -> None:
    answer = HoldingRegisters(registers=list(range(34)), dev_id=3, transaction_id=7)
    assert str(answer) == "HoldingRegisters(dev_id=3, transaction_id=7, registers=34)"
