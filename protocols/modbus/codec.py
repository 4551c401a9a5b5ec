"""Pure decoding: registers to numbers and strings, event records to typed values.

No I/O and no asyncio here, so the simulator can reuse the encoders and the tests can run
golden cases. Modbus registers are big-endian 16-bit words; a record's bytes are its
registers in order, high byte first.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import construct as cs

from protocols.errors import DecodeError
from protocols.modbus.profile import NUMBER_WORDS, EventLog, EventTimestamp
from protocols.modbus.profile_records import DATE_KEYS, PhaseField, RecordLayout, Scaled

Number = int | float

NUMBER_FORMATS = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f"}


def registers_to_bytes(registers: Sequence[int]) -> bytes:
    return struct.pack(f">{len(registers)}H", *registers)


def bytes_to_registers(data: bytes) -> list[int]:
    if len(data) % 2:
        data += b"\x00"
    return list(struct.unpack(f">{len(data) // 2}H", data))


def decode_number(registers: Sequence[int], type_: str, word_order: str = "big") -> Number:
    """One u16/i16/u32/i32/f32 value; `word_order="little"` puts the low word first."""
    words = NUMBER_WORDS[type_]
    if len(registers) < words:
        raise DecodeError(f"{type_} needs {words} registers, got {len(registers)}")
    regs = list(registers[:words])
    if word_order == "little":
        regs.reverse()
    value: Number = struct.unpack(NUMBER_FORMATS[type_], registers_to_bytes(regs))[0]
    return round_f32(value) if type_ == "f32" else value


def round_f32(value: float) -> float:
    """A float32 carries ~7 significant digits; don't report binary noise beyond them."""
    return float(f"{value:.7g}")


def encode_number(value: Number, type_: str, word_order: str = "big") -> list[int]:
    """The inverse of `decode_number` (used by the simulator)."""
    fmt = NUMBER_FORMATS[type_]
    packed = struct.pack(fmt, value if type_ == "f32" else int(value))
    regs = bytes_to_registers(packed)
    if word_order == "little":
        regs.reverse()
    return regs


def decode_ascii(registers: Sequence[int], swap_bytes: bool = False) -> str:
    """Two characters per register; NULs and padding spaces at the ends are dropped."""
    data = registers_to_bytes(registers)
    if swap_bytes:
        data = b"".join(data[i + 1 : i + 2] + data[i : i + 1] for i in range(0, len(data), 2))
    return data.replace(b"\x00", b" ").decode("ascii", errors="replace").strip()


def encode_ascii(text: str, words: int, swap_bytes: bool = False) -> list[int]:
    data = text.encode("ascii", errors="replace")[: 2 * words].ljust(2 * words, b"\x00")
    if swap_bytes:
        data = b"".join(data[i + 1 : i + 2] + data[i : i + 1] for i in range(0, len(data), 2))
    return bytes_to_registers(data)


def scaled(raw: Number, scale: float, offset: float = 0.0) -> Number:
    """Keep integers integral when the scale is 1, so settings hashes stay stable."""
    if scale == 1.0 and offset == 0.0:
        return raw
    return raw * scale + offset


# --- event records ------------------------------------------------------------------------


def record_struct(log: RecordLayout) -> cs.Struct:
    """Build the record decoder from the profile's field list (never hand-written per model)."""
    big = log.byte_order == "big"
    kinds: Mapping[str, Any] = {
        "u8": cs.Int8ub,
        "i8": cs.Int8sb,
        "u16": cs.Int16ub if big else cs.Int16ul,
        "i16": cs.Int16sb if big else cs.Int16sl,
        "u32": cs.Int32ub if big else cs.Int32ul,
        "i32": cs.Int32sb if big else cs.Int32sl,
        "f32": cs.Float32b if big else cs.Float32l,
        "pad8": cs.Padding(1),
        "pad16": cs.Padding(2),
    }
    ordered: list[Any] = [
        kinds[f.type] if f.name is None else f.name / kinds[f.type] for f in log.fields
    ]
    used = sum(kinds[f.type].sizeof() for f in log.fields)
    if used < 2 * log.record_registers:
        ordered.append(cs.Padding(2 * log.record_registers - used))
    return cs.Struct(*ordered)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One decoded ring-buffer record."""

    slot: int
    code: int
    raised: bool
    fields: Mapping[str, Number]
    device_time: datetime | None
    time_flags: tuple[str, ...]
    sequence: int | None
    phase: str | None = None  # from the ring's `phase` field, when it names one
    value: Number | None = None  # from the ring's `value` field (scaled)


class RecordDecoder:
    """Decodes raw record bytes with the Struct built from the profile."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.struct = record_struct(log)
        self.size = 2 * log.record_registers
        self.zone = zone_of(log.timestamp)

    def decode(self, slot: int, data: bytes) -> EventRecord:
        values = parse_record(self.struct, self.size, data, f"record slot {slot}")
        log = self.log
        device_time: datetime | None = None
        flags: tuple[str, ...] = ()
        if log.timestamp is not None:
            device_time, flags = record_time(values, log.timestamp, self.zone)
        phase = event_phase(record_phases(values, log.phase)) if log.phase else None
        return EventRecord(
            slot=slot,
            code=int(values[log.code_field]),
            raised=bool(values[log.state_field]) if log.state_field else True,
            fields=values,
            device_time=device_time,
            time_flags=flags,
            sequence=int(values[log.sequence_field]) if log.sequence_field else None,
            phase=phase,
            value=scaled_field(values, log.value) if log.value else None,
        )

    @staticmethod
    def is_blank(data: bytes) -> bool:
        """An all-zero (or all-0xFF) slot was never written: a fresh ring's empty tail."""
        return not data.strip(b"\x00") or not data.strip(b"\xff")


def parse_record(struct: cs.Struct, size: int, data: bytes, what: str) -> dict[str, Number]:
    """A record's named field values (padding dropped)."""
    if len(data) != size:
        raise DecodeError(f"{what}: {len(data)} bytes, expected {size}")
    try:
        parsed = struct.parse(data)
    except cs.ConstructError as exc:
        raise DecodeError(f"{what}: {exc}") from exc
    return {k: v for k, v in parsed.items() if not k.startswith("_")}


def zone_of(ts: EventTimestamp | None) -> ZoneInfo | None:
    return ZoneInfo(ts.timezone) if ts is not None and ts.timezone else None


EPOCH = datetime(1970, 1, 1)


def record_time(
    values: Mapping[str, Number], ts: EventTimestamp, zone: ZoneInfo | None
) -> tuple[datetime | None, tuple[str, ...]]:
    """The record's device time in UTC, or None with the `invalid` flag when it is nonsense
    (a relay with an unset clock writes zeros; we keep the event and say its time is bad)."""
    try:
        ms = int(values[ts.millisecond]) if ts.millisecond else 0
        if not 0 <= ms <= 999:
            raise ValueError(f"millisecond {ms}")
        if ts.kind == "epoch":
            raw = values[ts.epoch or ""]
            if ts.epoch_unit == "ms":
                count = timedelta(milliseconds=int(raw))
            else:
                count = timedelta(seconds=int(raw), milliseconds=ms)
            # A local-time relay counts wall-clock seconds: the count is a local date.
            local = (EPOCH + count).replace(tzinfo=zone or UTC)
        else:
            local = datetime(
                int(values[ts.year or ""]) + ts.year_base,
                int(values[ts.month or ""]),
                int(values[ts.day or ""]),
                int(values[ts.hour or ""]),
                int(values[ts.minute or ""]),
                int(values[ts.second or ""]),
                ms * 1000,
                tzinfo=zone or UTC,
            )
        return local.astimezone(UTC), ()
    except (ValueError, OverflowError, KeyError, TypeError):
        return None, ("invalid",)


def time_fields(ts: EventTimestamp, when: datetime) -> dict[str, int]:
    """The inverse of `record_time`: field values for an aware time (the simulator's)."""
    local = when.astimezone(zone_of(ts) or UTC)
    out: dict[str, int] = {}
    if ts.millisecond:
        out[ts.millisecond] = local.microsecond // 1000
    if ts.kind == "epoch":
        count = local.replace(tzinfo=None) - EPOCH
        ms_total = count // timedelta(milliseconds=1)
        out[ts.epoch or ""] = ms_total if ts.epoch_unit == "ms" else ms_total // 1000
        return out
    date = (local.year - ts.year_base, local.month, local.day, local.hour, local.minute,
            local.second)  # fmt: skip
    out.update({getattr(ts, key): value for key, value in zip(DATE_KEYS, date, strict=True)})
    return out


def record_phases(values: Mapping[str, Number], phase: PhaseField) -> tuple[str, ...]:
    """The phases a phase field names, as letters in A, B, C, N order."""
    raw = int(values[phase.field])
    if phase.codes is not None:
        name = phase.codes.get(raw)
        return tuple(p for p in "ABCN" if name and p in name)
    bits = phase.bits or {}
    return tuple(p for p in "ABCN" if any(raw >> b & 1 for b, q in bits.items() if q == p))


# The wire's phase names for sets of phases; earth (N) with phases is named by the phases.
_WIRE_PHASE = {("A", "B"): "AB", ("B", "C"): "BC", ("A", "C"): "CA", ("A", "B", "C"): "ABC"}


def event_phase(phases: tuple[str, ...]) -> str | None:
    """One wire phase (A, B, C, N, AB, BC, CA, ABC) for a set of phase letters."""
    lines = tuple(p for p in phases if p != "N")
    if not lines:
        return "N" if phases else None
    return lines[0] if len(lines) == 1 else _WIRE_PHASE[lines]


def scaled_field(values: Mapping[str, Number], spec: Scaled) -> Number:
    value = scaled(values[spec.field], spec.scale, spec.offset)
    return round(value, 6) if isinstance(value, float) else value


def unscaled(value: float, spec: Scaled, type_: str) -> Number:
    """The raw field value for a scaled one (the simulator's inverse of `scaled_field`)."""
    raw = (value - spec.offset) / spec.scale
    return raw if type_ == "f32" else round(raw)


def encode_record(log: RecordLayout, values: Mapping[str, Number]) -> list[int]:
    """Record registers from field values (the simulator writes its records with this)."""
    named = [f.name for f in log.fields if f.name is not None]
    data = record_struct(log).build({name: values.get(name, 0) for name in named})
    return bytes_to_registers(data)


# --- read planning -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    table: str
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def coalesce(spans: Sequence[Span], max_gap: int = 8, max_count: int = 125) -> list[Span]:
    """Merge nearby spans of one table into as few reads as possible (one request costs far
    more than a few extra registers), never past the 125-register limit of FC 3/4."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.table, s.start)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.table == span.table
            and span.start <= last.end + max_gap
            and max(last.end, span.end) - last.start <= max_count
        ):
            merged[-1] = Span(last.table, last.start, max(last.end, span.end) - last.start)
        else:
            merged.append(span)
    return merged


def phase_value(phase: PhaseField, phases: str) -> int:
    """The field value that names `phases` (e.g. "A", "CA", "ABN"): the simulator's inverse
    of `record_phases`; 0 when the profile has no code for them."""
    wanted = set(phases)
    if phase.codes is not None:
        return next((code for code, name in phase.codes.items() if set(name) == wanted), 0)
    return sum(1 << bit for bit, letter in (phase.bits or {}).items() if letter in wanted)
