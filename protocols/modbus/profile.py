"""The `[modbus]` section of a device profile: where a relay keeps what we read.

Everything a model-specific driver would hard-code is declared here instead, and validated
(unknown keys rejected) when the profile loads, before any port opens:

- `[modbus.identity]`: model, serial, firmware as ASCII registers, a firmware checksum;
- `[[modbus.status]]`: status/alarm bit-fields, each bit a point `status:<name>`;
- `[[modbus.measurements]]`: scaled values, points `measurement:<name>`;
- `[[modbus.settings_groups]]`: register ranges with names, units and scale;
- `[modbus.settings_change_counter]`: a register the relay increments when its settings
  change, so a change is read at once rather than at the next periodic read;
- `[modbus.event_log]`: the ring buffer and its record layout, from which a `construct`
  Struct is built at load time (see `codec.record_struct`); code C becomes point `event:C`.

Addresses are protocol addresses as sent (0-based), not 4xxxx "Modicon" numbers.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from protocols.config import StrictModel

RegisterTable = Literal["holding", "input"]
BitTable = Literal["holding", "input", "coils", "discrete"]
NumberType = Literal["u16", "i16", "u32", "i32", "f32"]
FieldType = Literal["u8", "i8", "u16", "i16", "u32", "i32", "f32", "pad8", "pad16"]
NAME = r"^[a-z][a-z0-9_]*$"
Register = Field(ge=0, le=65535)

FIELD_BYTES: dict[str, int] = {
    "u8": 1, "i8": 1, "pad8": 1, "u16": 2, "i16": 2, "pad16": 2, "u32": 4, "i32": 4, "f32": 4,
}  # fmt: skip
NUMBER_WORDS: dict[str, int] = {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2}


class AsciiRegisters(StrictModel):
    """A string packed two characters per register (high byte first unless swapped)."""

    address: int = Register
    words: int = Field(ge=1, le=64)
    swap_bytes: bool = False


class Checksum(StrictModel):
    address: int = Register
    type: Literal["u16", "u32"] = "u16"


class IdentityBlock(StrictModel):
    table: RegisterTable = "holding"
    manufacturer: str | AsciiRegisters | None = Field(
        default=None, description="a fixed name, or ASCII registers that hold it"
    )
    model: AsciiRegisters | None = None
    serial: AsciiRegisters | None = None
    firmware: AsciiRegisters | None = None
    checksum: Checksum | None = None


class StatusWord(StrictModel):
    """One register (or a run of up to 16 coils/discrete inputs) of named bits."""

    table: BitTable = "holding"
    address: int = Register
    bits: dict[int, str] = Field(min_length=1, description="bit index (0 = LSB) -> point name")

    @model_validator(mode="after")
    def _bits(self) -> StatusWord:
        for bit, name in self.bits.items():
            if not 0 <= bit <= 15:
                raise ValueError(f"bit {bit}: expected 0..15")
            if not _is_name(name):
                raise ValueError(f"bit {bit}: name {name!r} must match {NAME}")
        return self


class Measurement(StrictModel):
    name: str = Field(pattern=NAME)
    table: RegisterTable = "input"
    address: int = Register
    type: NumberType = "i16"
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None


class SettingItem(StrictModel):
    name: str = Field(pattern=NAME)
    offset: int = Field(ge=0, le=124, description="registers from the group's start")
    type: NumberType | Literal["ascii"] = "u16"
    words: int = Field(default=1, ge=1, le=64, description="ascii: registers it spans")
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    unit: str | None = None


class SettingsGroup(StrictModel):
    name: str = Field(pattern=NAME)
    table: RegisterTable = "holding"
    start: int = Register
    settings: list[SettingItem] = Field(min_length=1)

    @property
    def length(self) -> int:
        return max(s.offset + _item_words(s) for s in self.settings)


class ChangeCounter(StrictModel):
    """A u16 register the relay increments whenever its settings change (a parameter-set
    counter): read with the status, a new value makes the settings read at once."""

    table: RegisterTable = "holding"
    address: int = Register


class RecordField(StrictModel):
    name: str = Field(pattern=NAME)
    type: FieldType


class EventTimestamp(StrictModel):
    """How a record's time is made of its fields.

    `fields`: year/month/day/hour/minute/second[/millisecond] fields (`year_base` is added,
    e.g. 2000 for a two-digit year). `epoch`: one field counting seconds or ms since 1970.
    The relay's clock zone is `timezone` (IANA name); device times are converted to UTC.
    """

    kind: Literal["fields", "epoch"] = "fields"
    year: str | None = None
    month: str | None = None
    day: str | None = None
    hour: str | None = None
    minute: str | None = None
    second: str | None = None
    millisecond: str | None = None
    year_base: int = 0
    epoch: str | None = None
    epoch_unit: Literal["s", "ms"] = "s"
    timezone: str = "UTC"

    def field_names(self) -> list[str]:
        if self.kind == "epoch":
            return [self.epoch] if self.epoch else []
        names = [self.year, self.month, self.day, self.hour, self.minute, self.second]
        names.append(self.millisecond)
        return [n for n in names if n]

    @model_validator(mode="after")
    def _complete(self) -> EventTimestamp:
        if self.kind == "epoch" and not self.epoch:
            raise ValueError("kind 'epoch' needs 'epoch' (the field name)")
        if self.kind == "fields" and not all(
            (self.year, self.month, self.day, self.hour, self.minute, self.second)
        ):
            raise ValueError("kind 'fields' needs year, month, day, hour, minute and second")
        return self


class EventLog(StrictModel):
    """The relay's event ring buffer.

    `pointer_kind = "count"`: the pointer register counts every record ever written (it
    wraps at 2^16 or 2^32); record n sits in slot n mod capacity. A wrap we missed is then
    exactly measurable. `"write_index"`: the register is the next slot to write; a full lap
    between two polls cannot be seen unless the records carry a `sequence_field`.
    """

    table: RegisterTable = "holding"
    pointer_register: int = Register
    pointer_kind: Literal["count", "write_index"] = "count"
    pointer_type: Literal["u16", "u32"] = "u16"
    first_register: int = Register
    capacity: int = Field(ge=1, le=65535)
    record_registers: int = Field(ge=1, le=125)
    byte_order: Literal["big", "little"] = "big"
    fields: list[RecordField] = Field(min_length=1)
    code_field: str = "code"
    state_field: str | None = Field(
        default=None, description="a field whose non-zero value means raised (else: raised)"
    )
    sequence_field: str | None = None
    timestamp: EventTimestamp | None = None

    @property
    def modulus(self) -> int:
        """Values the pointer register can take before it wraps."""
        if self.pointer_kind == "write_index":
            return self.capacity
        return 1 << (16 if self.pointer_type == "u16" else 32)

    @model_validator(mode="after")
    def _layout(self) -> EventLog:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("fields: duplicate field names")
        size = sum(FIELD_BYTES[f.type] for f in self.fields)
        if size > 2 * self.record_registers:
            raise ValueError(
                f"fields take {size} bytes, more than record_registers={self.record_registers} "
                f"({2 * self.record_registers} bytes)"
            )
        wanted = [self.code_field, self.state_field, self.sequence_field]
        if self.timestamp is not None:
            wanted.extend(self.timestamp.field_names())
        for name in wanted:
            if name is not None and name not in names:
                raise ValueError(f"field {name!r} is referenced but not in fields {names}")
        end = self.first_register + self.capacity * self.record_registers
        if end > 65536:
            raise ValueError("the ring runs past register 65535")
        if self.pointer_kind == "count" and self.modulus % self.capacity:
            raise ValueError(
                f"pointer_kind 'count' needs a capacity dividing 2^{self.modulus.bit_length() - 1}"
                f" (slot = count mod capacity); found {self.capacity}: use 'write_index'"
            )
        return self


class ModbusProfile(StrictModel):
    identity: IdentityBlock | None = None
    status: list[StatusWord] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    settings_groups: list[SettingsGroup] = Field(default_factory=list)
    settings_change_counter: ChangeCounter | None = None
    event_log: EventLog | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> ModbusProfile:
        for what, names in (
            ("status bit", [n for w in self.status for n in w.bits.values()]),
            ("measurement", [m.name for m in self.measurements]),
            ("settings group", [g.name for g in self.settings_groups]),
            ("setting", [s.name for g in self.settings_groups for s in g.settings]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"duplicate {what} name {name!r}")
                seen.add(name)
        if self.settings_change_counter is not None and not self.settings_groups:
            raise ValueError("settings_change_counter needs settings_groups to re-read")
        for group in self.settings_groups:
            if group.length > 125:
                raise ValueError(f"settings group {group.name!r} spans more than 125 registers")
        return self

    def addresses(self) -> list[str]:
        """Every point address this section can produce (events: only those seen)."""
        return [f"status:{n}" for w in self.status for n in w.bits.values()] + [
            f"measurement:{m.name}" for m in self.measurements
        ]


def _item_words(item: SettingItem) -> int:
    return item.words if item.type == "ascii" else NUMBER_WORDS[item.type]


def _is_name(name: str) -> bool:
    return re.fullmatch(NAME, name) is not None


ADDRESS_PATTERN = r"event:\d{1,10}|status:[a-z][a-z0-9_]*|measurement:[a-z][a-z0-9_]*"
