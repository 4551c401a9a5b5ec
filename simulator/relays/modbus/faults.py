"""A simulated Modbus relay's fault recorder: scenario trips become a fault report block.

A relay opens a fault when protection starts (or trips without a start), and closes it when
every start and trip has dropped off; if it tripped, it writes the report: fault inception
time, faulted phases and type, time from inception to trip, currents and distance. Here the
phases are those of the trip points the scenario raised (a single phase is an earth fault,
"AG"); the magnitudes are fixed simulation values, below, since a scenario plays signals,
not waveforms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from protocols.modbus import codec
from protocols.modbus.profile_records import FaultReport

FAULT_CURRENT_A = 2400.0  # on each faulted phase
LOAD_CURRENT_A = 180.0  # on the healthy phases
DISTANCE_KM = 4.2


@dataclass
class FaultEpisode:
    started: datetime
    active: set[str] = field(default_factory=set)  # points picked up now
    phases: set[str] = field(default_factory=set)  # phases of the trips seen
    tripped: datetime | None = None


class FaultRecorder:
    """Follows one relay's start and trip points; `observe` returns the report's field
    values when a fault that tripped is over."""

    def __init__(self, layout: FaultReport) -> None:
        self.layout = layout
        self.episode: FaultEpisode | None = None

    def observe(
        self, point: str, kind: str, phase: str | None, raised: bool, when: datetime
    ) -> dict[str, codec.Number] | None:
        if kind not in ("start", "trip"):
            return None
        episode = self.episode
        if raised:
            if episode is None:
                episode = self.episode = FaultEpisode(started=when)
            episode.active.add(point)
            if kind == "trip":
                episode.tripped = episode.tripped or when
                episode.phases.update(p for p in phase or "ABC" if p in "ABC")
            return None
        if episode is None:
            return None
        episode.active.discard(point)
        if episode.active:
            return None
        self.episode = None
        return self.report(episode) if episode.tripped is not None else None

    def report(self, episode: FaultEpisode) -> dict[str, codec.Number]:
        layout = self.layout
        phases = "".join(p for p in "ABC" if p in episode.phases)
        fault_type = phases + "G" if len(phases) == 1 else phases
        values: dict[str, codec.Number] = {}
        if layout.timestamp is not None:
            values.update(codec.time_fields(layout.timestamp, episode.started))
        if layout.fault_type is not None:
            wanted = set(fault_type)
            code = next(
                (c for c, name in layout.fault_type.codes.items() if set(name) == wanted), 0
            )
            values[layout.fault_type.field] = code
        if layout.phases is not None:
            earth = "N" if len(phases) == 1 else ""
            values[layout.phases.field] = codec.phase_value(layout.phases, phases + earth)
        assert episode.tripped is not None
        trip_ms = (episode.tripped - episode.started).total_seconds() * 1000
        for spec, value in ((layout.trip_time_ms, trip_ms), (layout.distance_km, DISTANCE_KM)):
            if spec is not None:
                values[spec.field] = codec.unscaled(value, spec, layout.field_type(spec.field))
        for phase, spec in layout.currents_a.items():
            current = FAULT_CURRENT_A if phase in phases else LOAD_CURRENT_A
            if phase == "N":
                current = FAULT_CURRENT_A if len(phases) == 1 else 0.0
            values[spec.field] = codec.unscaled(current, spec, layout.field_type(spec.field))
        return values
