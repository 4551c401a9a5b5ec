"""Fault analysis of one disturbance record: what a service engineer reads first. Pure.

Method (one cycle = `N` samples at the record's line frequency):

- Inception: the first sample at which any phase current differs from the same point one
  cycle earlier (`|i[k] - i[k-N]|`, the cycle-to-cycle delta of numerical relays) by more
  than 20 % of that phase's pre-fault peak or 5 % of the record's largest current.
- Clearing: the fault current stops matching itself one cycle later: the last sample of a
  faulted phase whose delta exceeds the threshold, minus one cycle, plus one. Accepted only
  if the cycle after it carries less than half the fault current (else the fault is still
  on at the end of the record and `clearing_ms` is None).
- Pre-fault RMS: the cycle before inception. Fault RMS: the largest one-cycle RMS inside
  the fault (the first cycle after inception when the fault is shorter than a cycle).
  Fault peak: the largest instantaneous value between inception and clearing.
- Faulted phases: a phase whose fault RMS exceeds 1.5 × its pre-fault RMS and 10 % of the
  largest phase fault RMS; `N` (ground) when the residual current (an `N` channel, else
  IA + IB + IC) does the same against 10 % of the largest phase fault RMS.
- Voltage dip per phase: 100 × (1 − smallest one-cycle RMS inside the fault / pre-fault RMS).
- Trip: the first sample at which a status channel whose name contains "trip" is set;
  breaker: the first change of a channel whose name contains "breaker" or "cb".

Times are milliseconds from inception, except `inception_offset_ms` (from the trigger).
"""

from __future__ import annotations

import math
from typing import Any

from gateway.comtrade import AnalogTrace, Record, sample_time

PHASES = ("A", "B", "C")


def _is_current(ch: AnalogTrace) -> bool:
    return ch.unit.strip().lower() in ("a", "ka")


def _is_voltage(ch: AnalogTrace) -> bool:
    return ch.unit.strip().lower() in ("v", "kv")


def _windows(x: list[float], n: int) -> list[float]:
    """RMS of every one-cycle window: entry k covers x[k : k + n]."""
    if len(x) < n:
        return []
    acc = sum(v * v for v in x[:n])
    out = [math.sqrt(max(acc, 0.0) / n)]
    for k in range(n, len(x)):
        acc += x[k] * x[k] - x[k - n] * x[k - n]
        out.append(math.sqrt(max(acc, 0.0) / n))
    return out


def _rms(x: list[float]) -> float:
    return math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0


def _first_over(x: list[float], n: int, threshold: float) -> int | None:
    return next((k for k in range(n, len(x)) if abs(x[k] - x[k - n]) > threshold), None)


def _last_over(x: list[float], n: int, threshold: float, start: int) -> int | None:
    return next(
        (k for k in range(len(x) - 1, max(start, n) - 1, -1) if abs(x[k] - x[k - n]) > threshold),
        None,
    )


def _fault_window_rms(rms: list[float], start: int, end: int, n: int, pick: Any) -> float:
    """`pick` (max or min) of the one-cycle RMS windows inside [start, end)."""
    inside = rms[start : max(start + 1, end - n + 1)]
    return float(pick(inside)) if inside else 0.0


def analyse(record: Record) -> dict[str, Any]:
    n = max(2, round(record.sample_rate_hz / (record.line_frequency_hz or 50.0)))
    currents = {ch.phase: ch.values() for ch in record.analog if _is_current(ch) and ch.phase}
    voltages = {ch.phase: ch.values() for ch in record.analog if _is_voltage(ch) and ch.phase}
    phase_currents = {p: currents[p] for p in PHASES if p in currents}
    total = record.samples
    result: dict[str, Any] = {
        "samples_per_cycle": n,
        "faulted_phases": [],
        "fault_type": None,
        "inception": None,
        "inception_offset_ms": None,
        "clearing_ms": None,
        "trip_ms": None,
        "breaker_ms": None,
        "currents": {},
        "voltages": {},
    }
    if not phase_currents or total < 2 * n:
        result["summary"] = "not analysed: no phase currents or shorter than two cycles"
        return result
    largest = max(max(abs(v) for v in x) for x in phase_currents.values())
    thresholds = {
        p: max(0.2 * max(abs(v) for v in x[:n]), 0.05 * largest) for p, x in phase_currents.items()
    }
    starts = [
        k for p, x in phase_currents.items() if (k := _first_over(x, n, thresholds[p])) is not None
    ]
    if not starts:
        result["summary"] = "no fault detected"
        return result
    inception = min(starts)
    ms = 1000.0 / record.sample_rate_hz
    pre_from = max(0, inception - n)
    rms_of = {p: _windows(x, n) for p, x in phase_currents.items()}

    def fault_rms(p: str, x: list[float], end: int) -> float:
        return _fault_window_rms(rms_of[p], inception, end, n, max) if p in rms_of else 0.0

    # First pass over the whole rest of the record, to know which phases are faulted.
    stats = {
        p: (_rms(x[pre_from:inception]), fault_rms(p, x, total)) for p, x in phase_currents.items()
    }
    biggest = max(f for _, f in stats.values())
    faulted = [p for p, (pre, f) in stats.items() if f > 1.5 * pre and f > 0.1 * biggest]
    # Without a faulted phase (an earth fault too weak to lift a phase current by half),
    # every phase current tells when the fault ended.
    moved = faulted or list(phase_currents)
    ends = [
        k
        for p in moved
        if (k := _last_over(phase_currents[p], n, thresholds[p], inception + 1)) is not None
    ]
    clearing = max(ends) - n + 1 if ends else None
    if clearing is not None and (
        clearing <= inception
        or any(
            _rms(phase_currents[p][clearing : clearing + n]) > 0.5 * stats[p][1] for p in faulted
        )
    ):
        clearing = None
    end = clearing if clearing is not None else total
    for p, x in phase_currents.items():
        result["currents"][p] = {
            "prefault_rms": round(_rms(x[pre_from:inception]), 3),
            "fault_rms": round(fault_rms(p, x, end), 3),
            "fault_peak": round(max(abs(v) for v in x[inception:end]), 3),
        }
    residual = currents.get("N") or [sum(v) for v in zip(*phase_currents.values(), strict=True)]
    res_pre = _rms(residual[pre_from:inception])
    res_fault = _fault_window_rms(_windows(residual, n), inception, end, n, max)
    if len(phase_currents) == 3 or "N" in currents:
        ground = res_fault > 1.5 * res_pre and res_fault > 0.1 * biggest
        result["residual"] = {"prefault_rms": round(res_pre, 3), "fault_rms": round(res_fault, 3)}
    else:
        ground = False
    for p, v in voltages.items():
        pre = _rms(v[pre_from:inception])
        low = _fault_window_rms(_windows(v, n), inception, end, n, min)
        result["voltages"][p] = {
            "prefault_rms": round(pre, 3),
            "fault_rms": round(low, 3),
            "dip_pct": round(100.0 * (1 - low / pre), 2) if pre > 0 else None,
        }
    phases = sorted(faulted) + (["N"] if ground else [])
    result["faulted_phases"] = phases
    result["fault_type"] = "".join(sorted(faulted)) + ("G" if ground else "") or None
    result["inception"] = sample_time(record, inception).isoformat()
    trigger_offset = (record.trigger_time - record.start_time).total_seconds() * 1000
    result["inception_offset_ms"] = round(inception * ms - trigger_offset, 3)
    result["clearing_ms"] = round((clearing - inception) * ms, 3) if clearing else None
    for key, words in (("trip_ms", ("trip",)), ("breaker_ms", ("breaker", "cb"))):
        channel = next((d for d in record.digital if any(w in d.name.lower() for w in words)), None)
        if channel is None:
            continue
        at = channel.first_set() if key == "trip_ms" else next(iter(channel.changes), (None,))[0]
        if at is not None:
            result[key] = round((at - inception) * ms, 3)
    result["summary"] = summary(result)
    return result


def summary(a: dict[str, Any]) -> str:
    """One line for the ticket: phases, fault current, clearing, trip, dips."""
    if not a["faulted_phases"]:
        return a.get("summary") or "no fault detected"
    parts = [f"{a['fault_type']} fault"]
    phases = [(a["currents"][p]["fault_rms"], p) for p in a["faulted_phases"] if p in a["currents"]]
    if phases:
        rms, p = max(phases)
        parts.append(f"I{p} {rms:.0f} A RMS (peak {a['currents'][p]['fault_peak']:.0f} A)")
    elif "residual" in a:  # ground current only: a high-impedance earth fault
        parts.append(f"residual {a['residual']['fault_rms']:.0f} A RMS")
    cleared = a["clearing_ms"]
    parts.append(
        f"cleared in {cleared:.0f} ms" if cleared is not None else "not cleared in the record"
    )
    if a["trip_ms"] is not None:
        parts.append(f"trip at {a['trip_ms']:.0f} ms")
    dips = [
        f"U{p} -{v['dip_pct']:.0f} %"
        for p, v in sorted(a["voltages"].items())
        if v["dip_pct"] is not None and v["dip_pct"] >= 10
    ]
    if dips:
        parts.append("dip " + ", ".join(dips))
    return "; ".join(parts)
