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
  Struct is built at load time (see `codec.record_struct`); code C becomes point `event:C`;
- `[modbus.fault_report]`: the relay's fault report block and the counter that says a new
  one was written (layouts: `profile_records.py`).

Addresses are protocol addresses as sent (0-based), not 4xxxx "Modicon" numbers.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from common.config import StrictModel
from protocols.modbus.profile_records import (
    FIELD_BYTES,
    NAME,
    EventLog,
    EventTimestamp,
    FaultReport,
    Register,
    RegisterTable,
    unused,
)

__all__ = ["FIELD_BYTES", "EventLog", "EventTimestamp", "FaultReport", "ModbusProfile"]

BitTable = Literal["holding", "input", "coils", "discrete"]
NumberType = Literal["u16", "i16", "u32", "i32", "f32"]
NUMBER_WORDS: dict[str, int] = {"u16": 1, "i16": 1, "u32": 2, "i32": 2, "f32": 2}


class AsciiRegisters(StrictModel):
    """A string packed two characters per register (high byte first unless swapped)."""

    address: int = Field(ge=0, le=65535, description="the first register")
    words: int = Field(ge=1, le=64, description="registers (two characters each)")
    swap_bytes: bool = Field(default=False, description="low byte first in each register")


class Checksum(StrictModel):
    """The firmware checksum the relay reports, sent as hex."""

    address: int = Register
    type: Literal["u16", "u32"] = "u16"


class IdentityBlock(StrictModel):
    """Where the relay keeps its identity: the firmware report's raw material."""

    table: RegisterTable = Field(default="holding", description="of every field below")
    manufacturer: str | AsciiRegisters | None = Field(
        default=None, description="a fixed name, or ASCII registers that hold it"
    )
    model: AsciiRegisters | None = None
    serial: AsciiRegisters | None = None
    firmware: AsciiRegisters | None = None
    checksum: Checksum | None = None

    @model_validator(mode="after")
    def _table_used(self) -> IdentityBlock:
        read = [self.model, self.serial, self.firmware, self.checksum]
        if not isinstance(self.manufacturer, AsciiRegisters) and not any(read):
            unused(self, ["table"], "no identity field is read from registers")
        return self


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
    """A value read every `measurements_interval_s`: point `measurement:<name>`, sent as
    `raw * scale + offset`."""

    name: str = Field(pattern=NAME)
    table: RegisterTable = "input"
    address: int = Register
    type: NumberType = "i16"
    word_order: Literal["big", "little"] = Field(
        default="big", description="two-register types: low word first when little"
    )
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = Field(default=None, description="put into the record's details")

    @model_validator(mode="after")
    def _word_order_used(self) -> Measurement:
        if NUMBER_WORDS[self.type] == 1:
            unused(self, ["word_order"], f"a {self.type} is one register")
        return self


class SettingItem(StrictModel):
    """One setting: a name as the profile's [[settings]] lists it, read as
    `raw * scale` (numbers) or text (`ascii`)."""

    name: str = Field(pattern=NAME)
    offset: int = Field(ge=0, le=124, description="registers from the group's start")
    type: NumberType | Literal["ascii"] = "u16"
    words: int = Field(default=1, ge=1, le=64, description="ascii: registers it spans")
    word_order: Literal["big", "little"] = Field(
        default="big", description="two-register types: low word first when little"
    )
    scale: float = Field(default=1.0, description="numbers only")
    unit: str | None = None

    @model_validator(mode="after")
    def _keys_used(self) -> SettingItem:
        if self.type == "ascii":
            unused(self, ["word_order", "scale"], "type 'ascii' is text")
        else:
            unused(self, ["words"], "only type 'ascii' spans a chosen number of registers")
            if NUMBER_WORDS[self.type] == 1:
                unused(self, ["word_order"], f"a {self.type} is one register")
        return self


class SettingsGroup(StrictModel):
    """A run of setting registers read in one request (at most 125 registers)."""

    name: str = Field(pattern=NAME, description="the settings' group on the wire")
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


class ModbusProfile(StrictModel):
    # No class docstring: the reference (docs/profiles.md) shows the module's.
    identity: IdentityBlock | None = None
    status: list[StatusWord] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    settings_groups: list[SettingsGroup] = Field(default_factory=list)
    settings_change_counter: ChangeCounter | None = None
    event_log: EventLog | None = None
    fault_report: FaultReport | None = None

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

    def cross_check(
        self, point_addresses: frozenset[str], setting_names: frozenset[str]
    ) -> list[str]:
        """A [[points]] address this section can never produce (no such status bit or
        measurement, or events without an event log) would silently mean nothing."""
        known = set(self.addresses())
        problems = [
            f"points: {a!r}: no such {a.partition(':')[0]} in the [modbus] section"
            for a in sorted(point_addresses)
            if a.partition(":")[0] in ("status", "measurement") and a not in known
        ]
        if self.event_log is None:
            problems += [
                f"points: {a!r}: events need a [modbus.event_log]"
                for a in sorted(point_addresses)
                if a.startswith("event:")
            ]
        return problems


def _item_words(item: SettingItem) -> int:
    return item.words if item.type == "ascii" else NUMBER_WORDS[item.type]


def _is_name(name: str) -> bool:
    return re.fullmatch(NAME, name) is not None


ADDRESS_PATTERN = r"event:\d{1,10}|status:[a-z][a-z0-9_]*|measurement:[a-z][a-z0-9_]*"
