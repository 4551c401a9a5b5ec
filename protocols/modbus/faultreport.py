"""Reading a relay's fault report block: a new report each time its counter changes.

A relay that keeps a fault report in registers (fault type, phases, distance, currents,
trip time) overwrites it with each new fault and changes a counter register. We read the
counter with the status; when it differs from the last one delivered we read the block,
read the counter again (a report written meanwhile would tear the one we read: read it
once more), decode it with the Struct built from the profile and hand back a
`FaultReportObservation`. The counter is saved only once the report is durable, in the
device's state directory, so a report written while the agent was away is read at start
and none is delivered twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from protocols.errors import DecodeError
from protocols.modbus import codec
from protocols.modbus.eventlog import save_json
from protocols.modbus.profile_records import FaultReport, Scaled
from protocols.modbus.readers import DeviceReader
from protocols.observations import FaultReportObservation, Observation, Scalar

log = logging.getLogger(__name__)

# Reads of a block the relay keeps rewriting before we give up until the next poll.
MAX_TORN_READS = 3


class FaultReportDecoder:
    """Pure: record bytes to a `FaultReportObservation`, by the profile's layout."""

    def __init__(self, layout: FaultReport) -> None:
        self.layout = layout
        self.struct = codec.record_struct(layout)
        self.size = 2 * layout.record_registers
        self.zone = codec.zone_of(layout.timestamp)

    def decode(self, device_id: str, data: bytes, counter: int) -> FaultReportObservation:
        layout = self.layout
        values = codec.parse_record(self.struct, self.size, data, "fault report")
        fault_time = None
        details: dict[str, Scalar] = {"counter": counter}
        if layout.timestamp is not None:
            fault_time, flags = codec.record_time(values, layout.timestamp, self.zone)
            if flags:
                details["time_flags"] = ",".join(flags)
        fault_type = None
        if layout.fault_type is not None:
            raw = int(values[layout.fault_type.field])
            fault_type = layout.fault_type.codes.get(raw)
            if fault_type is None:
                details["fault_type_code"] = raw  # a code the profile does not list
        if layout.phases is not None:
            phases = codec.record_phases(values, layout.phases)
        else:
            phases = _letters_of(fault_type or "")
        used = {name for name in layout.referenced() if name}
        details.update({k: v for k, v in values.items() if k not in used})
        return FaultReportObservation(
            device_id=device_id,
            fault_time=fault_time,
            fault_type=fault_type,
            phases=phases,
            distance_km=_float(values, layout.distance_km),
            trip_time_ms=_float(values, layout.trip_time_ms),
            currents_a={p: float(codec.scaled_field(values, s)) for p, s in _ordered(layout)},
            details=details,
        )


def _letters_of(fault_type: str) -> tuple[str, ...]:
    """Phases named by a fault type: its A, B, C, and N for earth (G or N)."""
    earth = "G" in fault_type or "N" in fault_type
    return tuple(p for p in "ABC" if p in fault_type) + (("N",) if earth else ())


def _float(values: Mapping[str, codec.Number], spec: Scaled | None) -> float | None:
    return None if spec is None else float(codec.scaled_field(values, spec))


def _ordered(layout: FaultReport) -> list[tuple[str, Scaled]]:
    return [(p, layout.currents_a[p]) for p in "ABCN" if p in layout.currents_a]


@dataclass(frozen=True)
class PendingReport:
    observation: FaultReportObservation
    counter: int

    @property
    def observations(self) -> list[Observation]:
        return [self.observation]


class FaultReportReader:
    def __init__(
        self, reader: DeviceReader, layout: FaultReport, state: Path | None, initial: str
    ) -> None:
        self.reader = reader
        self.layout = layout
        self.decoder = FaultReportDecoder(layout)
        self.store = CounterStore(reader.device_id, state)
        self.initial = initial
        self.delivered: int | None = self.store.load()
        self.reports = 0
        self.torn = 0

    async def counter(self) -> int:
        layout = self.layout
        words = 1 if layout.counter_type == "u16" else 2
        regs = await self.reader.registers(layout.table, layout.counter_register, words)
        return int(codec.decode_number(regs, layout.counter_type))

    async def collect(self) -> PendingReport | None:
        """The new report, if the counter moved since the last one delivered. On first
        contact (nothing stored), `initial = "new"` only notes the counter; `"all"` reads the
        report the relay holds (a counter of 0 means it holds none)."""
        counter = await self.counter()
        if counter == self.delivered:
            return None
        if self.delivered is None and (self.initial == "new" or counter == 0):
            self.remember(counter)
            return None
        layout = self.layout
        for _ in range(MAX_TORN_READS):
            regs = await self.reader.registers(
                layout.table, layout.first_register, layout.record_registers
            )
            after = await self.counter()
            if after == counter:
                data = codec.registers_to_bytes(regs)
                try:
                    observation = self.decoder.decode(self.reader.device_id, data, counter)
                except DecodeError as exc:
                    log.warning("%s: undecodable fault report: %s", self.reader.device_id, exc)
                    self.remember(counter)  # a bad block is not re-read forever
                    return None
                return PendingReport(observation, counter)
            self.torn += 1
            counter = after  # a newer report came in while we read: read that one
        log.warning("%s: fault report kept changing while read", self.reader.device_id)
        return None

    def committed(self, pending: PendingReport) -> None:
        """Called once the report is durable: only now is its counter remembered."""
        self.remember(pending.counter)

    def remember(self, counter: int) -> None:
        if self.delivered is not None and counter != self.delivered:
            self.reports += 1
        self.delivered = counter
        self.store.save(counter)


class CounterStore:
    """The last fault report counter delivered, in a small JSON file (or memory)."""

    def __init__(self, device_id: str, path: Path | None) -> None:
        self.device_id = device_id
        self.path = path

    def load(self) -> int | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            data = json.loads(self.path.read_text())
            return int(data["counter"]) if data.get("device") == self.device_id else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable fault report state %s: %s", self.device_id, self.path, exc)
            return None

    def save(self, counter: int) -> None:
        if self.path is not None:
            save_json(self.path, {"device": self.device_id, "counter": counter})
