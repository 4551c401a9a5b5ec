"""What one device's profile says to read, turned into register reads and decoded values.

The read plan (which spans, coalesced) is computed once per device, so a poll cycle is a
few `link` calls and a little arithmetic: the budget is ~250 µs of CPU per read.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.modbus import codec
from protocols.modbus.codec import Number, Span
from protocols.modbus.link import ModbusLink
from protocols.modbus.profile import (
    NUMBER_WORDS,
    Measurement,
    ModbusProfile,
    SettingItem,
    StatusWord,
)
from protocols.observations import IdentityObservation, SettingValue

_FAST = {t: struct.Struct(f) for t, f in codec.NUMBER_FORMATS.items()}


@dataclass(frozen=True, slots=True)
class _Placed:
    """A value's registers inside a coalesced read: read `span_index`, at `offset`."""

    span_index: int
    offset: int


class DeviceReader:
    """Register reads for one unit on one link, with a per-unit timeout."""

    def __init__(self, device_id: str, unit: int, link: ModbusLink, timeout: float) -> None:
        self.device_id = device_id
        self.unit = unit
        self.link = link
        self.timeout = timeout

    async def registers(self, table: str, address: int, count: int) -> list[int]:
        return await self.link.read_registers(self.unit, table, address, count, self.timeout)

    async def bits(self, table: str, address: int, count: int) -> list[bool]:
        return await self.link.read_bits(self.unit, table, address, count, self.timeout)

    async def spans(self, spans: Sequence[Span]) -> list[list[int]]:
        return [await self.registers(s.table, s.start, s.count) for s in spans]

    async def span_bytes(self, spans: Sequence[Span]) -> list[bytes]:
        """Each span's registers as they came, two big-endian bytes each."""
        out = []
        for s in spans:
            out.append(
                await self.link.read_register_bytes(
                    self.unit, s.table, s.start, s.count, self.timeout
                )
            )
        return out


def _place(spans: list[Span], table: str, register: int) -> _Placed:
    for i, span in enumerate(spans):
        if span.table == table and span.start <= register < span.end:
            return _Placed(i, register - span.start)
    raise AssertionError(f"register {table}:{register} not in the read plan")  # planning bug


class ProfileReads:
    """The profile's identity, status, measurements and settings, planned once."""

    def __init__(self, profile: ModbusProfile, reader: DeviceReader) -> None:
        self.profile = profile
        self.reader = reader
        # Measurements: coalesced into as few reads as possible.
        m_spans = [Span(m.table, m.address, NUMBER_WORDS[m.type]) for m in profile.measurements]
        self.measurement_spans = codec.coalesce(m_spans)
        self.measurement_places = [
            (m, _place(self.measurement_spans, m.table, m.address)) for m in profile.measurements
        ]
        # Hot path (every poll of every unit): one precompiled struct per value, unpacked
        # straight from the span's bytes; little-endian word order takes the general path.
        self._measurement_codecs = [
            (m, place, _FAST.get(m.type) if m.word_order == "big" else None)
            for m, place in self.measurement_places
        ]
        self._span_structs = _span_structs(self.measurement_spans, self.measurement_places)
        # Status words in registers are coalesced too; coils/discrete are read per word.
        reg_words = [w for w in profile.status if w.table in ("holding", "input")]
        self.status_spans = codec.coalesce([Span(w.table, w.address, 1) for w in reg_words])
        self.status_places = [(w, _place(self.status_spans, w.table, w.address)) for w in reg_words]
        self.status_bitwords = [w for w in profile.status if w.table in ("coils", "discrete")]

    # --- measurements ---------------------------------------------------------------------

    async def measurements(self) -> list[tuple[Measurement, Number]]:
        values = await self.measurement_values()
        return [(m, v) for (m, _, _), v in zip(self._measurement_codecs, values, strict=True)]

    async def measurement_values(self) -> list[Number]:
        """Every measurement's value, in the profile's order (the poll's hot path)."""
        return self.decode_measurement_bytes(await self.reader.span_bytes(self.measurement_spans))

    def decode_measurements(self, blocks: list[list[int]], general: bool = False) -> list[Number]:
        """The same from registers."""
        return self.decode_measurement_bytes([codec.registers_to_bytes(r) for r in blocks], general)

    def decode_measurement_bytes(self, data: list[bytes], general: bool = False) -> list[Number]:
        """The values in the bytes of the measurement spans: one struct call per span
        where the layout allows, else (or when `general`) value by value."""
        if self._span_structs is not None and not general:
            return self._unpacked(data, self._span_structs)
        return self._value_by_value(data)

    def _value_by_value(self, data: list[bytes]) -> list[Number]:
        out: list[Number] = []
        for m, place, fast in self._measurement_codecs:
            raw: Number
            if fast is None:
                regs = codec.bytes_to_registers(data[place.span_index])
                raw = codec.decode_number(regs[place.offset :], m.type, m.word_order)
            else:
                raw = fast.unpack_from(data[place.span_index], 2 * place.offset)[0]
                if m.type == "f32":
                    raw = codec.round_f32(raw)
            out.append(codec.scaled(raw, m.scale, m.offset))
        return out

    def _unpacked(self, data: list[bytes], plan: _SpanStructs) -> list[Number]:
        """One struct call per span for every value in it, then scale and round."""
        if plan.plain is not None:  # one span, nothing scaled: round the f32 only
            words = plan.layouts[0].unpack(data[0])
            round_f32 = codec.round_f32
            return [round_f32(words[i]) if f32 else words[i] for i, f32 in plan.plain]
        raws = [layout.unpack(d) for layout, d in zip(plan.layouts, data, strict=True)]
        out: list[Number] = []
        for span_index, index, f32, scale, offset in plan.values:
            raw: Number = raws[span_index][index]
            if f32:
                raw = codec.round_f32(raw)
            out.append(raw if scale == 1.0 and offset == 0.0 else raw * scale + offset)
        return out

    # --- status ---------------------------------------------------------------------------

    async def status(self) -> dict[str, bool]:
        values: dict[str, bool] = {}
        blocks = await self.reader.spans(self.status_spans)
        for word, place in self.status_places:
            _bits_of(word, blocks[place.span_index][place.offset], values)
        for word in self.status_bitwords:
            count = max(word.bits) + 1
            bits = await self.reader.bits(word.table, word.address, count)
            for bit, name in word.bits.items():
                values[name] = bits[bit]
        return values

    # --- identity ---------------------------------------------------------------------------

    async def identity(self, manufacturer: str | None = None) -> IdentityObservation:
        block = self.profile.identity
        found: dict[str, str | None] = {"model": None, "serial": None, "firmware": None}
        checksum: str | None = None
        if block is not None:
            if isinstance(block.manufacturer, str):
                manufacturer = block.manufacturer
            elif block.manufacturer is not None:
                field = block.manufacturer
                regs = await self.reader.registers(block.table, field.address, field.words)
                manufacturer = codec.decode_ascii(regs, field.swap_bytes)
            for key in found:
                field = getattr(block, key)
                if field is not None:
                    regs = await self.reader.registers(block.table, field.address, field.words)
                    found[key] = codec.decode_ascii(regs, field.swap_bytes)
            if block.checksum is not None:
                words = NUMBER_WORDS[block.checksum.type]
                regs = await self.reader.registers(block.table, block.checksum.address, words)
                value = int(codec.decode_number(regs, block.checksum.type))
                checksum = f"{value:0{4 * words}X}"
        return IdentityObservation(
            device_id=self.reader.device_id,
            manufacturer=manufacturer,
            model=found["model"],
            serial=found["serial"],
            firmware_version=found["firmware"],
            checksum=checksum,
            details={"unit_id": self.reader.unit},
        )

    # --- settings ---------------------------------------------------------------------------

    async def settings_change_count(self) -> int | None:
        counter = self.profile.settings_change_counter
        if counter is None:
            return None
        (value,) = await self.reader.registers(counter.table, counter.address, 1)
        return value

    async def settings(self) -> tuple[SettingValue, ...]:
        out: list[SettingValue] = []
        for group in self.profile.settings_groups:
            regs = await self.reader.registers(group.table, group.start, group.length)
            out.extend(
                SettingValue(item.name, _setting_value(item, regs), item.unit, group.name)
                for item in group.settings
            )
        return tuple(out)


@dataclass(frozen=True, slots=True)
class _SpanStructs:
    """Each coalesced span as one struct (values in register order, gaps skipped), and
    per measurement in the profile's order: its span, its index there, f32 or not, scale
    and offset."""

    layouts: list[struct.Struct]
    values: list[tuple[int, int, bool, float, float]]
    # With one span and no value scaled or offset: each value's index and f32 or not.
    plain: list[tuple[int, bool]] | None = None


def _span_structs(
    spans: list[Span], places: list[tuple[Measurement, _Placed]]
) -> _SpanStructs | None:
    """None when some value is little-endian in its words or overlaps another: those take
    the general path."""
    if any(m.word_order != "big" and NUMBER_WORDS[m.type] == 2 for m, _ in places):
        return None
    layouts: list[struct.Struct] = []
    index_of: dict[int, int] = {}  # id(measurement) -> index in its span's tuple
    for i, span in enumerate(spans):
        inside = sorted(((p.offset, id(m), m) for m, p in places if p.span_index == i))
        fmt, at = ">", 0
        for n, (offset, key, m) in enumerate(inside):
            if offset < at:
                return None  # overlapping values
            fmt += f"{2 * (offset - at)}x" if offset > at else ""
            fmt += codec.NUMBER_FORMATS[m.type][1:]
            at = offset + NUMBER_WORDS[m.type]
            index_of[key] = n
        fmt += f"{2 * (span.count - at)}x" if span.count > at else ""
        layouts.append(struct.Struct(fmt))
    values = [
        (p.span_index, index_of[id(m)], m.type == "f32", m.scale, m.offset) for m, p in places
    ]
    plain = None
    if len(spans) == 1 and all(scale == 1.0 and offset == 0.0 for *_, scale, offset in values):
        plain = [(index, f32) for _, index, f32, _, _ in values]
    return _SpanStructs(layouts, values, plain)


def _bits_of(word: StatusWord, register: int, into: dict[str, bool]) -> None:
    for bit, name in word.bits.items():
        into[name] = bool(register >> bit & 1)


def _setting_value(item: SettingItem, regs: list[int]) -> Number | str:
    chunk = regs[item.offset :]
    if item.type == "ascii":
        return codec.decode_ascii(chunk[: item.words])
    raw = codec.decode_number(chunk, item.type, item.word_order)
    value = codec.scaled(raw, item.scale)
    return round(value, 6) if isinstance(value, float) else value
