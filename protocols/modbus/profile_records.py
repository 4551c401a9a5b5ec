"""Register records in a Modbus profile: the event ring and the fault report block.

Both are fixed-size records in consecutive registers whose layout the profile lists field
by field (a `construct` Struct is built from it when the profile loads, see
`codec.record_struct`). What the fields mean is declared next to the layout:

- `timestamp`: which fields make the record's device time (date fields, or a count of
  seconds or milliseconds since 1970, either with an optional millisecond field);
- `phase` (a code or a bit mask) and `value` (a scaled number) of an event;
- the fault report's type, phases, distance, trip time and currents.

Every key is validated against what it is used with: a key the chosen layout would not
read (e.g. `year` with `kind = "epoch"`) is an error, never silently ignored.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, model_validator

from common.config import StrictModel

RegisterTable = Literal["holding", "input"]
FieldType = Literal["u8", "i8", "u16", "i16", "u32", "i32", "f32", "pad8", "pad16"]
PhaseName = Literal["A", "B", "C", "N", "AB", "BC", "CA", "ABC"]
PhaseLetter = Literal["A", "B", "C", "N"]
NAME = r"^[a-z][a-z0-9_]*$"
Register = Field(ge=0, le=65535)

FIELD_BYTES: dict[str, int] = {
    "u8": 1, "i8": 1, "pad8": 1, "u16": 2, "i16": 2, "pad16": 2, "u32": 4, "i32": 4, "f32": 4,
}  # fmt: skip
DATE_KEYS = ("year", "month", "day", "hour", "minute", "second")


def unused(model: BaseModel, keys: list[str], why: str) -> None:
    """Refuse keys the model was given but would not read in this combination: a profile
    key is either used or an error, never silently ignored."""
    given = [k for k in keys if k in model.model_fields_set]
    if given:
        raise ValueError(f"{', '.join(given)} not used here ({why})")


class RecordField(StrictModel):
    """One field of a record, in order. Padding (`pad8`, `pad16`) takes no name."""

    name: str | None = Field(default=None, pattern=NAME, description="unique in the record")
    type: FieldType = Field(description="u/i: unsigned/signed, bits; f32: IEEE float")

    @model_validator(mode="after")
    def _named(self) -> RecordField:
        if self.type.startswith("pad") and self.name is not None:
            raise ValueError(f"{self.type} is padding: it takes no name (found: {self.name!r})")
        if not self.type.startswith("pad") and self.name is None:
            raise ValueError(f"a {self.type} field needs a name")
        return self


class EventTimestamp(StrictModel):
    """How a record's device time is made of its fields.

    `kind = "fields"`: year, month, day, hour, minute and second fields, optionally
    `millisecond`; `year_base` is added to the year (2000 for a two-digit year).
    `kind = "epoch"`: one field counting seconds (`epoch_unit = "s"`, optionally with a
    `millisecond` field for the fraction) or milliseconds (`"ms"`) since 1970-01-01.

    `timezone` (IANA name) is the zone of the relay's clock. Date fields are local time in
    it; an epoch count is UTC unless `timezone` is set, in which case the relay counts
    local wall-clock seconds since 1970-01-01 00:00 local (as relays set to local time do).
    Device times are converted to UTC.
    """

    kind: Literal["fields", "epoch"] = "fields"
    year: str | None = Field(default=None, description="fields: the year's field")
    month: str | None = Field(default=None, description="fields: 1-12")
    day: str | None = Field(default=None, description="fields: 1-31")
    hour: str | None = Field(default=None, description="fields: 0-23")
    minute: str | None = Field(default=None, description="fields: 0-59")
    second: str | None = Field(default=None, description="fields: 0-59")
    millisecond: str | None = Field(
        default=None, description="0-999; with fields, or with an epoch in seconds"
    )
    year_base: int = Field(default=0, description="fields: added to the year field")
    epoch: str | None = Field(default=None, description="epoch: the field counting from 1970")
    epoch_unit: Literal["s", "ms"] = Field(default="s", description="epoch: its unit")
    timezone: str | None = Field(default=None, description="IANA zone of the relay's clock")

    def field_names(self) -> list[str]:
        names = [self.epoch] if self.kind == "epoch" else [getattr(self, k) for k in DATE_KEYS]
        names.append(self.millisecond)
        return [n for n in names if n]

    @model_validator(mode="after")
    def _complete(self) -> EventTimestamp:
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown IANA zone {self.timezone!r}") from None
        if self.kind == "epoch":
            unused(self, [*DATE_KEYS, "year_base"], "kind 'epoch' counts from 1970")
            if not self.epoch:
                raise ValueError("kind 'epoch' needs 'epoch' (the field name)")
            if self.millisecond and self.epoch_unit == "ms":
                raise ValueError(
                    "millisecond: an epoch counted in ms already has its milliseconds "
                    "(use epoch_unit = 's' with a separate millisecond field)"
                )
        else:
            unused(self, ["epoch", "epoch_unit"], "kind 'fields' is made of date fields")
            if not all(getattr(self, k) for k in DATE_KEYS):
                raise ValueError("kind 'fields' needs year, month, day, hour, minute and second")
        return self


class Scaled(StrictModel):
    """A numeric field read as `raw * scale + offset`."""

    field: str = Field(description="a field name of the record")
    scale: float = 1.0
    offset: float = 0.0


class EventValue(Scaled):
    """The field that is the event's value (else the value is raised/cleared as a bool);
    `unit` goes into the event's details."""

    unit: str | None = Field(default=None, description="put into the event's details")


class PhaseField(StrictModel):
    """Which phases a field names: either `codes` (value -> phase, e.g. 1 = "A", 5 = "AB")
    or `bits` (bit index, 0 = LSB -> "A", "B", "C" or "N"). A value not listed, or no bit
    set, names no phase."""

    field: str = Field(description="a field name of the record")
    codes: dict[int, PhaseName] | None = Field(default=None, description="value -> phase")
    bits: dict[int, PhaseLetter] | None = Field(
        default=None, description="bit index (0 = LSB) -> phase letter"
    )

    @model_validator(mode="after")
    def _one_encoding(self) -> PhaseField:
        if (self.codes is None) == (self.bits is None):
            raise ValueError("give exactly one of codes (a phase code) or bits (a bit mask)")
        for bit in self.bits or {}:
            if not 0 <= bit <= 31:
                raise ValueError(f"bits: bit {bit}: expected 0..31")
        return self


class FaultTypeField(StrictModel):
    """A field holding the relay's fault type code, e.g. 1 = "AG", 4 = "AB", 7 = "ABC"
    (letters A, B, C for phases, G or N for earth)."""

    field: str = Field(description="a field name of the record")
    codes: dict[int, str] = Field(min_length=1, description="value -> fault type")

    @model_validator(mode="after")
    def _letters(self) -> FaultTypeField:
        for code, name in self.codes.items():
            if not re.fullmatch(r"[ABCGN]{1,4}", name):
                raise ValueError(f"codes: {code}: expected letters of A, B, C, G, N ({name!r})")
        return self


class RecordLayout(StrictModel):
    """The part every register record shares: its size, byte order, fields and time."""

    record_registers: int = Field(ge=1, le=125, description="registers per record")
    byte_order: Literal["big", "little"] = Field(
        default="big", description="of multi-byte fields within the record's bytes"
    )
    fields: list[RecordField] = Field(min_length=1, description="the record's layout, in order")
    timestamp: EventTimestamp | None = Field(default=None, description="the device time")

    def referenced(self) -> list[str | None]:
        """Field names the layout's other keys use (checked to exist and not be padding)."""
        names: list[str | None] = []
        if self.timestamp is not None:
            names.extend(self.timestamp.field_names())
        return names

    @model_validator(mode="after")
    def _layout(self) -> RecordLayout:
        names = [f.name for f in self.fields if f.name is not None]
        if len(set(names)) != len(names):
            raise ValueError("fields: duplicate field names")
        size = sum(FIELD_BYTES[f.type] for f in self.fields)
        if size > 2 * self.record_registers:
            raise ValueError(
                f"fields take {size} bytes, more than record_registers={self.record_registers} "
                f"({2 * self.record_registers} bytes)"
            )
        for name in self.referenced():
            if name is not None and name not in names:
                raise ValueError(f"field {name!r} is referenced but not in fields {names}")
        return self

    def field_type(self, name: str) -> str:
        return next(f.type for f in self.fields if f.name == name)


class EventLog(RecordLayout):
    """The relay's event ring buffer.

    `pointer_kind = "count"`: the pointer register counts every record ever written (it
    wraps at 2^16 or 2^32); record n sits in slot n mod capacity. A wrap we missed is then
    exactly measurable. `"write_index"`: the register is the next slot to write; a full lap
    between two polls cannot be seen unless the records carry a `sequence_field`.
    """

    table: RegisterTable = "holding"
    pointer_register: int = Field(ge=0, le=65535, description="where the ring's pointer is")
    pointer_kind: Literal["count", "write_index"] = Field(
        default="count", description="what the pointer counts (above)"
    )
    pointer_type: Literal["u16", "u32"] = "u16"
    first_register: int = Field(ge=0, le=65535, description="slot 0's first register")
    capacity: int = Field(ge=1, le=65535, description="records the ring holds")
    code_field: str = Field(default="code", description="the field whose value C is event:C")
    state_field: str | None = Field(
        default=None, description="non-zero means raised; without it every record is raised"
    )
    sequence_field: str | None = Field(
        default=None, description="a field numbering records: reveals laps a write index hides"
    )
    phase: PhaseField | None = Field(default=None, description="the event's phase")
    value: EventValue | None = Field(default=None, description="the event's value")

    @property
    def modulus(self) -> int:
        """Values the pointer register can take before it wraps."""
        if self.pointer_kind == "write_index":
            return self.capacity
        return 1 << (16 if self.pointer_type == "u16" else 32)

    def referenced(self) -> list[str | None]:
        meaning = [
            self.phase.field if self.phase else None,
            self.value.field if self.value else None,
        ]
        return [
            *super().referenced(),
            self.code_field,
            self.state_field,
            self.sequence_field,
            *meaning,
        ]

    @model_validator(mode="after")
    def _ring(self) -> EventLog:
        end = self.first_register + self.capacity * self.record_registers
        if end > 65536:
            raise ValueError("the ring runs past register 65535")
        if self.pointer_kind == "count" and self.modulus % self.capacity:
            raise ValueError(
                f"pointer_kind 'count' needs a capacity dividing 2^{self.modulus.bit_length() - 1}"
                f" (slot = count mod capacity); found {self.capacity}: use 'write_index'"
            )
        return self


class FaultReport(RecordLayout):
    """The relay's latest fault report: one record at `first_register`, and a counter the
    relay changes each time it writes a new report (0 = none written yet). The agent reads
    the record when the counter changes. Fields not mapped to a meaning below are kept in
    the report's details."""

    table: RegisterTable = "holding"
    counter_register: int = Field(
        ge=0, le=65535, description="changes when the relay writes a new report"
    )
    counter_type: Literal["u16", "u32"] = "u16"
    first_register: int = Field(ge=0, le=65535, description="the report record's first register")
    fault_type: FaultTypeField | None = Field(default=None, description="e.g. AG, BC, ABC")
    phases: PhaseField | None = Field(
        default=None, description="faulted phases; without it, the letters of fault_type"
    )
    distance_km: Scaled | None = Field(default=None, description="distance to the fault, km")
    trip_time_ms: Scaled | None = Field(default=None, description="inception to trip, ms")
    currents_a: dict[PhaseLetter, Scaled] = Field(
        default_factory=dict, description="fault current per phase, primary A"
    )

    def referenced(self) -> list[str | None]:
        mapped = [self.fault_type, self.phases, self.distance_km, self.trip_time_ms]
        extra = [m.field if m else None for m in mapped]
        return [*super().referenced(), *extra, *(c.field for c in self.currents_a.values())]

    @model_validator(mode="after")
    def _block(self) -> FaultReport:
        if self.first_register + self.record_registers > 65536:
            raise ValueError("the fault report runs past register 65535")
        words = 1 if self.counter_type == "u16" else 2
        counter = range(self.counter_register, self.counter_register + words)
        block = range(self.first_register, self.first_register + self.record_registers)
        if counter.start < block.stop and block.start < counter.stop:
            raise ValueError("counter_register lies inside the report's registers")
        return self
