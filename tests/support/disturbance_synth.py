"""Synthetic disturbance records with known answers, as a relay's driver would deliver them.

A three-phase feeder on load; at `inception_ms` a fault on `phases` raises their current to
`fault_a` RMS and dips their voltage to `dip_to` of nominal; the trip channel sets at
`trip_ms`, the breaker opens at `clearing_ms` (all currents fall to zero, the source-side
voltages recover). Sine waves at `frequency_hz`, sampled every `interval_us`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from protocols.observations import AnalogChannel, DigitalChannel, DisturbanceObservation

T_FAULT = datetime(2025, 3, 1, 8, 0, 0, 120_000, tzinfo=UTC)
ANGLE = {"A": 0.0, "B": -120.0, "C": 120.0}


@dataclass(frozen=True)
class Fault:
    phases: tuple[str, ...] = ("A",)
    ground: bool = True  # False: a two-phase fault current flows out of one phase, into the other
    load_a: float = 200.0
    fault_a: float = 3000.0
    nominal_v: float = 63_500.0  # phase to ground, RMS
    dip_to: float = 0.3
    inception_ms: float = 100.0
    trip_ms: float = 160.0
    clearing_ms: float = 180.0
    duration_ms: float = 400.0
    interval_us: int = 1000
    frequency_hz: float = 50.0
    current_scale: float = 0.25  # A per raw count
    voltage_scale: float = 4.0  # V per raw count
    extra_channels: int = 0  # further analog channels (e.g. to reach 10), flat zero
    trigger_time: datetime = T_FAULT
    fault_number: int = 17
    details: dict[str, float] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return round(self.duration_ms * 1000 / self.interval_us)

    def index(self, ms: float) -> int:
        return round(ms * 1000 / self.interval_us)


def _current(f: Fault, phase: str, k: int) -> float:
    t = k * f.interval_us / 1e6
    if k >= f.index(f.clearing_ms):
        return 0.0
    faulted = phase in f.phases and k >= f.index(f.inception_ms)
    rms, lag = (f.fault_a, 80.0) if faulted else (f.load_a, 25.0)
    angle = ANGLE[phase] - lag
    if faulted and not f.ground and len(f.phases) == 2:
        # Phase to phase: the loop current, out of the first phase and back in the second.
        angle = ANGLE[f.phases[0]] - 30.0 - lag + (180.0 if phase == f.phases[1] else 0.0)
    return rms * math.sqrt(2) * math.sin(2 * math.pi * f.frequency_hz * t + math.radians(angle))


def _voltage(f: Fault, phase: str, k: int) -> float:
    t = k * f.interval_us / 1e6
    during = f.index(f.inception_ms) <= k < f.index(f.clearing_ms)
    rms = f.nominal_v * (f.dip_to if during and phase in f.phases else 1.0)
    return (
        rms * math.sqrt(2) * math.sin(2 * math.pi * f.frequency_hz * t + math.radians(ANGLE[phase]))
    )


def _channel(
    name: str, unit: str, phase: str | None, scale: float, values: list[float]
) -> AnalogChannel:
    return AnalogChannel(
        name=name,
        unit=unit,
        phase=phase,
        primary=1000.0 if unit == "A" else 110_000.0,
        secondary=1.0 if unit == "A" else 100.0,
        reference=1.0,
        scale=scale,
        samples=tuple(round(v / scale) for v in values),
    )


def observation(f: Fault = Fault(), device_id: str = "feeder-1") -> DisturbanceObservation:
    n = f.samples
    analog = [
        _channel(f"I{p}", "A", p, f.current_scale, [_current(f, p, k) for k in range(n)])
        for p in "ABC"
    ]
    analog += [
        _channel(f"U{p}", "V", p, f.voltage_scale, [_voltage(f, p, k) for k in range(n)])
        for p in "ABC"
    ]
    analog += [
        _channel(f"AUX{i}", "A", None, 1.0, [0.0] * n) for i in range(1, f.extra_channels + 1)
    ]
    digital = (
        DigitalChannel("trip", False, ((f.index(f.trip_ms), True),)),
        DigitalChannel("breaker_closed", True, ((f.index(f.clearing_ms), False),)),
    )
    first = f.trigger_time - timedelta(milliseconds=f.inception_ms)
    return DisturbanceObservation(
        device_id=device_id,
        fault_number=f.fault_number,
        trigger_time=f.trigger_time,
        first_sample_time=first,
        sample_interval_us=f.interval_us,
        analog=tuple(analog),
        digital=digital,
        details=dict(f.details),
    )
