"""Reading a relay's event ring: only new records, delivered before the position moves.

One `collect` pass: read the pointer, compute what is new (`eventlog.pending`), read those
records in as few requests as the 125-register limit allows, read the pointer again to
drop any slot the relay reused meanwhile, decode, and hand back the observations with the
position to save *after* they are durable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from protocols.errors import DecodeError
from protocols.modbus import codec, eventlog
from protocols.modbus.codec import EventRecord, RecordDecoder
from protocols.modbus.eventlog import PositionStore
from protocols.modbus.profile import EventLog
from protocols.modbus.readers import DeviceReader
from protocols.observations import ConditionObservation, Observation, PointObservation

log = logging.getLogger(__name__)


@dataclass
class EventCounters:
    delivered: int = 0
    lost: int = 0
    undecodable: int = 0
    resets: int = 0


@dataclass
class Batch:
    observations: list[Observation]
    position: int
    records: list[EventRecord] = field(default_factory=list)


class EventLogReader:
    def __init__(
        self,
        reader: DeviceReader,
        ring: EventLog,
        store: PositionStore,
        initial: str = "all",
        near_full_ratio: float = 0.8,
    ) -> None:
        self.reader = reader
        self.ring = ring
        self.store = store
        self.initial = initial
        self.near_full_at = max(1, int(ring.capacity * near_full_ratio))
        self.decoder = RecordDecoder(ring)
        self.counters = EventCounters()
        self.position: int | None = store.load(ring)
        self._near_full = False
        self._last_sequence: int | None = None
        self._sequence_modulus = 1 << 32
        if ring.sequence_field:
            kind = next(f.type for f in ring.fields if f.name == ring.sequence_field)
            self._sequence_modulus = 1 << (8 * {"u8": 1, "u16": 2}.get(kind, 4))

    @property
    def device_id(self) -> str:
        return self.reader.device_id

    async def pointer(self) -> int:
        ring = self.ring
        words = 1 if ring.pointer_type == "u16" else 2
        regs = await self.reader.registers(ring.table, ring.pointer_register, words)
        value = int(codec.decode_number(regs, ring.pointer_type))
        if ring.pointer_kind == "write_index" and value >= ring.capacity:
            raise DecodeError(f"write index {value} beyond capacity {ring.capacity}")
        return value

    async def read_slots(self, first: int, count: int) -> list[tuple[int, bytes]]:
        """Records at pointer values first .. first+count-1, split at the ring's end and into
        requests of whole records."""
        ring = self.ring
        per_request = max(1, 125 // ring.record_registers)
        out: list[tuple[int, bytes]] = []
        done = 0
        while done < count:
            slot = eventlog.slot_of(ring, first + done)
            n = min(count - done, per_request, ring.capacity - slot)
            address = ring.first_register + slot * ring.record_registers
            regs = await self.reader.registers(ring.table, address, n * ring.record_registers)
            data = codec.registers_to_bytes(regs)
            size = 2 * ring.record_registers
            out.extend((slot + i, data[i * size : (i + 1) * size]) for i in range(n))
            done += n
        return out

    async def collect(self) -> Batch | None:
        """New records as observations, or None when there is nothing to deliver."""
        ring = self.ring
        pointer = await self.pointer()
        first_contact = self.position is None
        position = (
            eventlog.initial_position(ring, pointer, self.initial)
            if self.position is None
            else self.position
        )
        batch = eventlog.pending(ring, position, pointer)
        conditions: list[Observation] = self._near_full_conditions(batch.unread)
        if batch.count == 0 and not batch.reset and not batch.lost:
            if first_contact:
                return Batch(conditions, pointer)  # remember where the ring stands
            return Batch(conditions, pointer) if conditions else None
        raw = await self.read_slots(batch.first, batch.count)
        pointer_after = await self.pointer() if raw else pointer
        reused = eventlog.overwritten_meanwhile(ring, batch, pointer_after, pointer)
        lost = batch.lost + reused
        raw = raw[reused:]
        records = self._decode(raw, skip_blank=first_contact or ring.pointer_kind == "write_index")
        lost += self._sequence_gap(records)
        if batch.reset:
            self.counters.resets += 1
            conditions.append(
                ConditionObservation(
                    self.device_id,
                    "event_log_reset",
                    "raised",
                    f"event log of device {self.device_id} was cleared or its counter reset",
                    severity="info",
                    details={"pointer": pointer, "position": position},
                )
            )
        if lost:
            self.counters.lost += lost
            log.warning(
                "%s: %d events lost (ring of %d wrapped)", self.device_id, lost, ring.capacity
            )
            conditions.append(
                ConditionObservation(
                    self.device_id,
                    "events_lost",
                    "raised",
                    f"{lost} events lost on device {self.device_id}",
                    severity="major",
                    details={"lost": lost, "capacity": ring.capacity, "pointer": pointer},
                )
            )
        points = [self._observation(r) for r in records]
        return Batch([*conditions, *points], pointer, records)

    def committed(self, batch: Batch) -> None:
        """Called once the batch is durable: only now does the read position move."""
        self.store.save(self.ring, batch.position)
        self.position = batch.position
        self.counters.delivered += len(batch.records)
        if batch.records and batch.records[-1].sequence is not None:
            self._last_sequence = batch.records[-1].sequence

    def _decode(self, raw: list[tuple[int, bytes]], skip_blank: bool) -> list[EventRecord]:
        records: list[EventRecord] = []
        for slot, data in raw:
            if skip_blank and self.decoder.is_blank(data):
                continue
            try:
                records.append(self.decoder.decode(slot, data))
            except DecodeError as exc:
                self.counters.undecodable += 1
                log.warning(
                    "%s: undecodable event record in slot %d: %s", self.device_id, slot, exc
                )
        return records

    def _sequence_gap(self, records: list[EventRecord]) -> int:
        """Records carrying a sequence number reveal laps a write index cannot show."""
        if self._last_sequence is None or not records or records[0].sequence is None:
            return 0
        expected = (self._last_sequence + 1) % self._sequence_modulus
        return (records[0].sequence - expected) % self._sequence_modulus

    def _near_full_conditions(self, unread: int) -> list[Observation]:
        if unread >= self.near_full_at and not self._near_full:
            self._near_full = True
            return [
                ConditionObservation(
                    self.device_id,
                    "buffer_near_full",
                    "raised",
                    f"event log of device {self.device_id} holds {unread} unread records "
                    f"of {self.ring.capacity}",
                    severity="minor",
                    details={"unread": unread, "capacity": self.ring.capacity},
                )
            ]
        if unread < self.near_full_at // 2 and self._near_full:
            self._near_full = False
            return [
                ConditionObservation(
                    self.device_id,
                    "buffer_near_full",
                    "cleared",
                    f"event log of device {self.device_id} drained ({unread} unread)",
                    severity="minor",
                    details={"unread": unread, "capacity": self.ring.capacity},
                )
            ]
        return []

    def _observation(self, record: EventRecord) -> PointObservation:
        details: dict[str, int | float | str | bool | None] = dict(record.fields)
        details["slot"] = record.slot
        value_spec = self.ring.value
        if value_spec is not None and value_spec.unit:
            details["unit"] = value_spec.unit
        return PointObservation(
            device_id=self.device_id,
            address=f"event:{record.code}",
            # With a value field the event carries that number; raised/cleared is then said
            # by `raised` (the state field), not by the value's truth.
            value=record.value if value_spec is not None else record.raised,
            device_time=record.device_time,
            device_time_flags=record.time_flags,
            cause="spontaneous",  # the relay logged it as it happened
            cause_raw="event_log",
            details=details,
            phase=record.phase,
            raised=record.raised,
        )
