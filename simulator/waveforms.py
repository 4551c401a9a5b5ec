"""Synthetic disturbance records: the sampled currents, voltages and binary channels a
relay records around a single-phase line fault. Pure (no I/O, no clock), so a record's
samples are a function of its `FaultSpec` alone and tests can know the answers.

The defaults follow the seed scenario's phase-A fault (`config/scenarios/
seed-phase-a-fault.toml`): start at inception, trip phase A 21 ms later, breaker open at
65 ms (the fault is cleared), trip reset at 80 ms, start reset at 100 ms.

Channels, in IEC 103 actual-channel (ACC) order: 1-3 phase currents IL1-IL3, 4 residual
current IN, 5-7 phase-to-earth voltages UL1E-UL3E, 8 residual voltage UEN; more than 8
channels adds private channels (ACC 64, 65, ...), the currents of a parallel line under
load. Tags (binary channels): general start, the faulted phase's trip and the breaker's
closed position (auxiliary input 1).

Each analog channel carries its rated primary (RPV) and secondary (RSV) values and a
reference factor (RFA); a raw sample is `round(secondary value x RFA)`, the inverse of the
rule the master applies (`protocols/iec103/disturbance_record.py`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from common.config import StrictModel

PHASES = ("A", "B", "C")
SHIFT = {"A": 0.0, "B": -2 * math.pi / 3, "C": 2 * math.pi / 3}
FULL_SCALE = 30_000  # raw counts at a channel's peak (headroom below 32767)
FUN = 128
INF_START = 84
INF_TRIP = {"A": 69, "B": 70, "C": 71}
INF_BREAKER = 27  # auxiliary input 1: breaker closed
ACC_PRIVATE = 64


class FaultSpec(StrictModel):
    """What a simulated record shows (the scenario's `record` table, all optional)."""

    phase: Literal["A", "B", "C"] = "A"
    channels: int = Field(default=8, ge=1, le=32, description="analog channels (ACC order)")
    samples: int = Field(default=400, ge=10, le=65535, description="samples per channel")
    sample_rate_hz: float = Field(default=1000.0, ge=16, le=100_000)
    frequency_hz: float = Field(default=50.0, gt=0)
    pre_fault_ms: float = Field(default=100.0, ge=0, description="first sample to inception")
    fault_duration_ms: float = Field(default=65.0, gt=0, description="inception to clearing")
    trip_delay_ms: float = Field(default=21.0, ge=0, description="inception to trip")
    trip_reset_ms: float = Field(default=80.0, ge=0, description="inception to trip reset")
    start_reset_ms: float = Field(default=100.0, ge=0, description="inception to start reset")
    load_current_a: float = Field(default=400.0, ge=0, description="primary RMS before")
    fault_current_a: float = Field(default=6000.0, ge=0, description="faulted phase RMS")
    voltage_kv: float = Field(default=220.0, gt=0, description="phase-to-phase, primary")
    dip: float = Field(default=0.4, ge=0, le=1, description="faulted phase voltage / rated")
    fault_angle_deg: float = Field(default=80.0, description="fault current lags voltage")
    ct_primary_a: float = Field(default=1200.0, gt=0)
    ct_secondary_a: float = Field(default=1.0, gt=0)
    vt_secondary_v: float = Field(default=100.0, gt=0, description="phase-to-phase")


@dataclass(frozen=True, slots=True)
class SynthChannel:
    acc: int
    name: str
    primary: float  # RPV
    secondary: float  # RSV
    reference: float  # RFA
    raw: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SynthTag:
    fun: int
    inf: int
    initial: bool
    changes: tuple[tuple[int, bool], ...]  # (sample index, new state)


@dataclass(frozen=True, slots=True)
class SynthRecord:
    interval_us: int
    samples: int
    inception_index: int
    analog: tuple[SynthChannel, ...]
    tags: tuple[SynthTag, ...]


def synthesise(spec: FaultSpec) -> SynthRecord:
    interval_us = max(1, min(65535, round(1e6 / spec.sample_rate_hz)))
    dt = interval_us / 1e6
    times = [n * dt for n in range(spec.samples)]
    t0 = spec.pre_fault_ms / 1000
    t1 = t0 + spec.fault_duration_ms / 1000
    w = 2 * math.pi * spec.frequency_hz
    v_rated = spec.voltage_kv * 1000 / math.sqrt(3)  # phase-to-earth RMS, primary
    lag_load, lag_fault = math.radians(30), math.radians(spec.fault_angle_deg)

    def current(phase: str, t: float) -> float:
        faulted = phase == spec.phase
        if faulted and t0 <= t < t1:
            rms, lag = spec.fault_current_a, lag_fault
        elif faulted and t >= t1:
            return 0.0  # the faulted pole is open after clearing
        else:
            rms, lag = spec.load_current_a, lag_load
        return math.sqrt(2) * rms * math.sin(w * t + SHIFT[phase] - lag)

    def voltage(phase: str, t: float) -> float:
        scale = spec.dip if phase == spec.phase and t0 <= t < t1 else 1.0
        return math.sqrt(2) * v_rated * scale * math.sin(w * t + SHIFT[phase])

    primary_i, secondary_i = spec.ct_primary_a, spec.ct_secondary_a
    primary_v, secondary_v = v_rated, spec.vt_secondary_v / math.sqrt(3)
    waves: list[tuple[int, str, float, float, list[float]]] = []
    for i, p in enumerate(PHASES):
        waves.append((1 + i, f"I{p}", primary_i, secondary_i, [current(p, t) for t in times]))
    residual_i = [sum(current(p, t) for p in PHASES) for t in times]
    waves.append((4, "IN", primary_i, secondary_i, residual_i))
    for i, p in enumerate(PHASES):
        waves.append((5 + i, f"U{p}", primary_v, secondary_v, [voltage(p, t) for t in times]))
    residual_u = [sum(voltage(p, t) for p in PHASES) for t in times]
    waves.append((8, "UN", primary_v, secondary_v, residual_u))
    for k in range(max(0, spec.channels - 8)):
        phase = PHASES[k % 3]
        values = [
            math.sqrt(2) * spec.load_current_a * math.sin(w * t + SHIFT[phase] - lag_load)
            for t in times
        ]
        waves.append((ACC_PRIVATE + k, f"I{phase}2", primary_i, secondary_i, values))
    analog = tuple(
        _quantise(acc, name, rpv, rsv, values)
        for acc, name, rpv, rsv, values in waves[: spec.channels]
    )
    index = _indexer(t0, dt, spec.samples)
    tags = (
        _pulse(INF_START, index(0), index(spec.start_reset_ms)),
        _pulse(INF_TRIP[spec.phase], index(spec.trip_delay_ms), index(spec.trip_reset_ms)),
        SynthTag(FUN, INF_BREAKER, True, _changes([(index(spec.fault_duration_ms), False)])),
    )
    return SynthRecord(interval_us, spec.samples, index(0) or 0, analog, tags)


def _quantise(acc: int, name: str, rpv: float, rsv: float, values: list[float]) -> SynthChannel:
    """Primary values to raw counts: secondary = primary x RSV / RPV, raw = secondary x RFA,
    with RFA chosen so the channel's peak is `FULL_SCALE` counts."""
    rpv, rsv = _f32(rpv), _f32(rsv)  # as the wire carries them (R32)
    secondary = [v * rsv / rpv for v in values]
    peak = max((abs(v) for v in secondary), default=0.0)
    rfa = _f32(round(FULL_SCALE / peak, 3) if peak > 1e-9 else 1.0)
    raw = tuple(max(-32768, min(32767, round(v * rfa))) for v in secondary)
    return SynthChannel(acc, name, rpv, rsv, rfa, raw)


def _f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _indexer(t0: float, dt: float, samples: int) -> Callable[[float], int | None]:
    """Sample index of a time after inception (ms), None when outside the record."""

    def index(after_ms: float) -> int | None:
        n = math.ceil(round((t0 + after_ms / 1000) / dt, 6))
        return n if 0 <= n < samples else None

    return index


def _changes(changes: list[tuple[int | None, bool]]) -> tuple[tuple[int, bool], ...]:
    return tuple((n, state) for n, state in changes if n is not None)


def _pulse(inf: int, on: int | None, off: int | None) -> SynthTag:
    if on == 0:  # already on at the first sample
        return SynthTag(FUN, inf, True, _changes([(off, False)]))
    return SynthTag(FUN, inf, False, _changes([(on, True), (off, False)]))
