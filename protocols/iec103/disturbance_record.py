"""Assembling one transferred disturbance record into a `DisturbanceObservation`: pure,
no I/O. The transfer procedure (`transfer.py`) feeds it the ASDUs 26-30 in order; it checks
they are consistent (fault number, channel count, samples counted without gaps) and
raises `RecordInvalid` otherwise, so a half or garbled record is never delivered.

Scaling of a single disturbance value (SDV), implemented by `channel_scale`:

    secondary value = SDV / RFA
    primary value   = secondary value x RPV / RSV = SDV x RPV / (RSV x RFA)

with RPV, RSV and RFA from the channel's ASDU 27. Source and discussion: the protocol
README, "Disturbance records".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from protocols.errors import DecodeError
from protocols.iec103.codec.asdu_disturbance import DisturbanceRecord
from protocols.iec103.codec.asdu_transfer import (
    ChannelReady,
    DisturbanceReady,
    DisturbanceValues,
    Tags,
)
from protocols.iec103.codec.time import cp32_to_datetime, cp56_to_datetime
from protocols.observations import AnalogChannel, DigitalChannel, DisturbanceObservation, Scalar

# ACC (actual channel) 1-8 of the standard: name, unit, phase. 9-63 are reserved for
# future compatible use, 64-255 are private ("ACC<n>", no unit we could know).
STANDARD_CHANNELS: dict[int, tuple[str, str, str]] = {
    1: ("IA", "A", "A"),  # IL1
    2: ("IB", "A", "B"),  # IL2
    3: ("IC", "A", "C"),  # IL3
    4: ("IN", "A", "N"),
    5: ("UA", "V", "A"),  # UL1E
    6: ("UB", "V", "B"),  # UL2E
    7: ("UC", "V", "C"),  # UL3E
    8: ("UN", "V", "N"),  # UEN
}
DPI_ON, DPI_OFF = 2, 1


class RecordInvalid(ValueError):
    """The relay's ASDUs do not make up one consistent record."""


def channel_scale(primary: float, secondary: float, reference: float) -> float:
    """Primary units per raw count: RPV / (RSV x RFA)."""
    if not all(math.isfinite(x) for x in (primary, secondary, reference)):
        raise RecordInvalid(f"channel scaling not finite: RPV={primary} RSV={secondary}")
    if secondary == 0 or reference == 0:
        raise RecordInvalid(f"channel scaling: RSV={secondary}, RFA={reference} (0 divides)")
    return primary / (secondary * reference)


@dataclass
class _Channel:
    ready: ChannelReady
    samples: list[int] = field(default_factory=list)
    base: int | None = None  # number of the first element: 0 here, 1 for some relays


@dataclass
class RecordAssembly:
    """The parts of one record as they arrive."""

    entry: DisturbanceRecord  # from the directory (ASDU 23): FAN, SOF, fault time
    ready: DisturbanceReady | None = None
    channels: dict[int, _Channel] = field(default_factory=dict)
    tags: list[tuple[int, int, int, int]] = field(default_factory=list)  # (pos, fun, inf, dpi)

    @property
    def fault_number(self) -> int:
        return self.entry.fault_number

    def start(self, ready: DisturbanceReady) -> None:
        self._same_fault(ready.fault_number)
        if ready.elements == 0 or ready.interval_us == 0:
            raise RecordInvalid(f"record {self.fault_number}: no samples ({ready})")
        self.ready = ready

    def add_tags(self, asdu: Tags) -> None:
        self._same_fault(asdu.fault_number)
        self.tags.extend((asdu.position, t.fun, t.inf, t.dpi) for t in asdu.tags)

    def start_channel(self, ready: ChannelReady) -> None:
        self._same_fault(ready.fault_number)
        channel_scale(ready.primary, ready.secondary, ready.reference)
        self.channels[ready.channel] = _Channel(ready)  # a channel sent again starts over

    def add_values(self, asdu: DisturbanceValues) -> None:
        self._same_fault(asdu.fault_number)
        channel = self.channels.get(asdu.channel)
        if channel is None:
            raise RecordInvalid(f"values for channel {asdu.channel} before its ASDU 27")
        if channel.base is None and asdu.first in (0, 1):
            channel.base = asdu.first
        expected = (channel.base or 0) + len(channel.samples)
        if asdu.first != expected:
            raise RecordInvalid(
                f"channel {asdu.channel}: values from element {asdu.first}, "
                f"expected {expected} (gap or repeat)"
            )
        channel.samples.extend(asdu.values)

    def channel_complete(self, acc: int) -> bool:
        channel = self.channels.get(acc)
        return (
            channel is not None
            and self.ready is not None
            and len(channel.samples) == self.ready.elements
        )

    def build(self, device_id: str) -> DisturbanceObservation:
        ready = self.ready
        if ready is None:
            raise RecordInvalid(f"record {self.fault_number}: no ASDU 26")
        if len(self.channels) != ready.channels:
            raise RecordInvalid(
                f"record {self.fault_number}: {len(self.channels)} channels, "
                f"ASDU 26 announced {ready.channels}"
            )
        for acc in self.channels:
            if not self.channel_complete(acc):
                raise RecordInvalid(f"record {self.fault_number}: channel {acc} incomplete")
        try:
            trigger = cp56_to_datetime(self.entry.time)
        except DecodeError as exc:
            raise RecordInvalid(f"record {self.fault_number}: fault time: {exc}") from exc
        try:
            first = cp32_to_datetime(ready.time, trigger)
        except DecodeError as exc:
            raise RecordInvalid(f"record {self.fault_number}: first sample time: {exc}") from exc
        details: dict[str, Scalar] = {
            "sof": self.entry.sof,
            "trip": self.entry.trip,
            "test": self.entry.test,
            "other_event": self.entry.other_event,
            "grid_faults": ready.faults,
            "tov": ready.tov,
            "samples": ready.elements,
            "trigger_time_flags": ",".join(self.entry.time.flags),
            "first_sample_time_flags": ",".join(ready.time.flags),
        }
        return DisturbanceObservation(
            device_id=device_id,
            fault_number=self.fault_number,
            trigger_time=trigger,
            first_sample_time=first,
            sample_interval_us=ready.interval_us,
            analog=tuple(_analog(c) for _, c in sorted(self.channels.items())),
            digital=_digital(self.tags),
            details=details,
        )

    def _same_fault(self, fault_number: int) -> None:
        if fault_number != self.fault_number:
            raise RecordInvalid(f"fault number {fault_number} within record {self.fault_number}")


def _analog(channel: _Channel) -> AnalogChannel:
    r = channel.ready
    name, unit, phase = STANDARD_CHANNELS.get(r.channel, (f"ACC{r.channel}", "", ""))
    return AnalogChannel(
        name=name,
        unit=unit,
        phase=phase or None,
        primary=r.primary,
        secondary=r.secondary,
        reference=r.reference,
        scale=channel_scale(r.primary, r.secondary, r.reference),
        samples=tuple(channel.samples),
    )


def _digital(tags: list[tuple[int, int, int, int]]) -> tuple[DigitalChannel, ...]:
    """Tags by point. A point's state at position 0 is its initial state; a point whose
    first tag comes later was in the other state before it. DPI other than on/off
    (transient, error) is left out: a digital channel has two states."""
    points: dict[tuple[int, int], list[tuple[int, bool]]] = {}
    for position, fun, inf, dpi in sorted(tags, key=lambda t: t[0]):
        if dpi in (DPI_ON, DPI_OFF):
            points.setdefault((fun, inf), []).append((position, dpi == DPI_ON))
    out: list[DigitalChannel] = []
    for (fun, inf), states in sorted(points.items()):
        initial = states[0][1] if states[0][0] == 0 else not states[0][1]
        changes: list[tuple[int, bool]] = []
        current = initial
        for position, state in states:
            if state != current:
                changes.append((position, state))
                current = state
        out.append(DigitalChannel(f"{fun}/{inf}", initial, tuple(changes)))
    return tuple(out)
