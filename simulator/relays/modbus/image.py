"""A simulated Modbus relay's memory, laid out by its profile's `[modbus]` section.

Pure data: four register tables, and the operations a scenario drives (append an event record to the
ring, set a status bit, change a setting, change the firmware, write a fault report). The server
side (`simulator/relays/modbus/relay.py`) copies from here into pymodbus on every read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from protocols.modbus import codec
from protocols.modbus.profile import NUMBER_WORDS, ModbusProfile

TABLES = ("coils", "discrete", "holding", "input")


class RegisterImage:
    """Registers of one unit. Bit tables are kept packed, 16 bits per register."""

    def __init__(self, profile: ModbusProfile, spare: int = 16) -> None:
        self.profile = profile
        size = dict.fromkeys(TABLES, 1)

        def need(table: str, end: int) -> None:
            size[table] = max(size[table], end)

        ident = profile.identity
        if ident is not None:
            for field in (ident.model, ident.serial, ident.firmware, ident.manufacturer):
                if field is not None and not isinstance(field, str):
                    need(ident.table, field.address + field.words)
            if ident.checksum is not None:
                need(ident.table, ident.checksum.address + NUMBER_WORDS[ident.checksum.type])
        for word in profile.status:
            need(word.table, word.address + (16 if word.table in ("coils", "discrete") else 1))
        for m in profile.measurements:
            need(m.table, m.address + NUMBER_WORDS[m.type])
        for group in profile.settings_groups:
            need(group.table, group.start + group.length)
        if profile.settings_change_counter is not None:
            need(profile.settings_change_counter.table, profile.settings_change_counter.address + 1)
        ring = profile.event_log
        if ring is not None:
            need(ring.table, ring.pointer_register + 2)
            need(ring.table, ring.first_register + ring.capacity * ring.record_registers)
        report = profile.fault_report
        if report is not None:
            need(report.table, report.counter_register + 2)
            need(report.table, report.first_register + report.record_registers)
        self.tables: dict[str, list[int]] = {
            t: [0] * ((n + 15) // 16 + 1 if t in ("coils", "discrete") else n + spare)
            for t, n in size.items()
        }
        self.events_written = 0
        self._sequence = 0

    # --- raw access -------------------------------------------------------------------------

    def write(self, table: str, address: int, registers: list[int]) -> None:
        self.tables[table][address : address + len(registers)] = registers

    def read(self, table: str, address: int, count: int) -> list[int]:
        return self.tables[table][address : address + count]

    def set_bit(self, table: str, register: int, bit: int, on: bool) -> None:
        if table in ("coils", "discrete"):
            index = register + bit  # coil address; packed 16 per register
            register, bit = divmod(index, 16)
        regs = self.tables[table]
        regs[register] = regs[register] | (1 << bit) if on else regs[register] & ~(1 << bit)

    # --- identity ---------------------------------------------------------------------------

    def set_identity(
        self,
        model: str | None = None,
        serial: str | None = None,
        firmware: str | None = None,
        checksum_hex: str | None = None,
        manufacturer: str | None = None,
    ) -> None:
        ident = self.profile.identity
        if ident is None:
            return
        for value, field in (
            (model, ident.model),
            (serial, ident.serial),
            (firmware, ident.firmware),
            (manufacturer, ident.manufacturer),
        ):
            if value is not None and field is not None and not isinstance(field, str):
                regs = codec.encode_ascii(value, field.words, field.swap_bytes)
                self.write(ident.table, field.address, regs)
        if checksum_hex is not None and ident.checksum is not None:
            value_int = int(checksum_hex, 16) if checksum_hex else 0
            regs = codec.encode_number(value_int, ident.checksum.type)
            self.write(ident.table, ident.checksum.address, regs)

    # --- status, measurements, settings -----------------------------------------------------

    def set_status(self, name: str, on: bool) -> None:
        for word in self.profile.status:
            for bit, bit_name in word.bits.items():
                if bit_name == name:
                    self.set_bit(word.table, word.address, bit, on)
                    return
        raise KeyError(f"no status bit {name!r} in the profile")

    def set_measurement(self, name: str, value: float) -> None:
        m = next((m for m in self.profile.measurements if m.name == name), None)
        if m is None:
            raise KeyError(f"no measurement {name!r} in the profile")
        raw = (value - m.offset) / m.scale
        raw_value: float = raw if m.type == "f32" else round(raw)
        self.write(m.table, m.address, codec.encode_number(raw_value, m.type, m.word_order))

    def set_setting(self, name: str, value: bool | int | float | str) -> None:
        for group in self.profile.settings_groups:
            for item in group.settings:
                if item.name != name:
                    continue
                if item.type == "ascii":
                    regs = codec.encode_ascii(str(value), item.words)
                else:
                    raw = float(value) / item.scale
                    number: float = raw if item.type == "f32" else round(raw)
                    regs = codec.encode_number(number, item.type, item.word_order)
                self.write(group.table, group.start + item.offset, regs)
                self._count_settings_change()
                return
        raise KeyError(f"no setting {name!r} in the profile")

    def _count_settings_change(self) -> None:
        counter = self.profile.settings_change_counter
        if counter is not None:
            (count,) = self.read(counter.table, counter.address, 1)
            self.write(counter.table, counter.address, [(count + 1) & 0xFFFF])

    # --- event ring -------------------------------------------------------------------------

    def append_event(
        self,
        code: int,
        raised: bool = True,
        when: datetime | None = None,
        fields: Mapping[str, int | float] | None = None,
    ) -> int:
        """Write one record at the pointer and advance it, overwriting the oldest when the
        ring is full (as a relay does). Returns the slot written."""
        ring = self.profile.event_log
        if ring is None:
            raise KeyError("the profile declares no event log")
        pointer = self.pointer()
        slot = pointer % ring.capacity
        values: dict[str, int | float] = dict(fields or {})
        values[ring.code_field] = code
        if ring.state_field:
            values[ring.state_field] = 1 if raised else 0
        if ring.sequence_field:
            self._sequence += 1
            values[ring.sequence_field] = self._sequence
        if ring.timestamp is not None:
            values.update(codec.time_fields(ring.timestamp, when or datetime.now(UTC)))
        regs = codec.encode_record(ring, values)
        self.write(ring.table, ring.first_register + slot * ring.record_registers, regs)
        self.set_pointer((pointer + 1) % ring.modulus)
        self.events_written += 1
        return slot

    def pointer(self) -> int:
        ring = self.profile.event_log
        assert ring is not None
        words = 1 if ring.pointer_type == "u16" else 2
        return int(codec.decode_number(self.read(ring.table, ring.pointer_register, words),
                                       ring.pointer_type))  # fmt: skip

    def set_pointer(self, value: int) -> None:
        ring = self.profile.event_log
        assert ring is not None
        self.write(ring.table, ring.pointer_register, codec.encode_number(value, ring.pointer_type))

    # --- fault report -----------------------------------------------------------------------

    def write_fault_report(self, values: Mapping[str, int | float]) -> int:
        """Overwrite the fault report block, then change its counter (as a relay does: the
        counter announces a complete report). Returns the new counter."""
        report = self.profile.fault_report
        if report is None:
            raise KeyError("the profile declares no fault report")
        self.write(report.table, report.first_register, codec.encode_record(report, values))
        words = 1 if report.counter_type == "u16" else 2
        regs = self.read(report.table, report.counter_register, words)
        counter = (int(codec.decode_number(regs, report.counter_type)) + 1) % (1 << 16 * words)
        self.write(report.table, report.counter_register,
                   codec.encode_number(counter, report.counter_type))  # fmt: skip
        return counter
