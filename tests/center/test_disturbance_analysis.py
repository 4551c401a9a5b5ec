"""Fault analysis on synthetic records whose answers are known by construction."""

from __future__ import annotations

import math
from typing import Any

import pytest

from agent.disturbance import comtrade_record
from agent.normalize import DeviceContext
from center.disturbance.analysis import analyse
from gateway import comtrade
from protocols.profile_loader import load_named
from tests.support.disturbance_synth import Fault, observation

CTX = DeviceContext("north", "gw1", "feeder-1", "iec103", load_named("line-protection"))


def _analyse(fault: Fault) -> dict[str, Any]:
    # Through the files, as the center sees them.
    return analyse(comtrade.read(*comtrade.write(comtrade_record(CTX, observation(fault)))))


def test_phase_a_to_ground_fault_of_known_magnitude_inception_and_clearing() -> None:
    fault = Fault(
        phases=("A",),
        load_a=200,
        fault_a=3000,
        dip_to=0.3,
        inception_ms=100,
        trip_ms=160,
        clearing_ms=180,
    )
    a = _analyse(fault)
    assert a["faulted_phases"] == ["A", "N"]
    assert a["fault_type"] == "AG"
    assert a["inception_offset_ms"] == pytest.approx(0, abs=1.0)  # trigger = inception here
    assert a["inception"].startswith("2025-03-01T08:00:00.12")
    assert a["clearing_ms"] == pytest.approx(80, abs=1.0)
    assert a["trip_ms"] == pytest.approx(60, abs=1e-9)
    assert a["breaker_ms"] == pytest.approx(80, abs=1e-9)
    ia, ib = a["currents"]["A"], a["currents"]["B"]
    assert ia["prefault_rms"] == pytest.approx(200, rel=0.01)
    assert ia["fault_rms"] == pytest.approx(3000, rel=0.01)
    assert ia["fault_peak"] == pytest.approx(3000 * math.sqrt(2), rel=0.01)
    assert ib["prefault_rms"] == pytest.approx(200, rel=0.01)
    assert ib["fault_rms"] == pytest.approx(200, rel=0.01)
    assert a["voltages"]["A"]["dip_pct"] == pytest.approx(70, abs=1.0)
    assert a["voltages"]["B"]["dip_pct"] == pytest.approx(0, abs=1.0)
    assert "AG fault" in a["summary"]
    assert "cleared in 80 ms" in a["summary"]


@pytest.mark.parametrize("inception_ms", [53.0, 97.0, 131.0])
@pytest.mark.parametrize("duration_ms", [15.0, 42.0, 120.0])
def test_inception_and_clearing_follow_the_fault_wherever_it_falls(
    inception_ms: float, duration_ms: float
) -> None:
    fault = Fault(
        inception_ms=inception_ms,
        clearing_ms=inception_ms + duration_ms,
        trip_ms=inception_ms + duration_ms - 10,
        duration_ms=inception_ms + duration_ms + 100,
    )
    a = _analyse(fault)
    assert a["faulted_phases"] == ["A", "N"]
    assert a["inception_offset_ms"] == pytest.approx(0, abs=1.0)
    assert a["clearing_ms"] == pytest.approx(duration_ms, abs=1.0)


def test_phase_to_phase_fault_has_no_ground() -> None:
    a = _analyse(Fault(phases=("B", "C"), ground=False, fault_a=2500))
    assert a["faulted_phases"] == ["B", "C"]
    assert a["fault_type"] == "BC"
    assert a["currents"]["B"]["fault_rms"] == pytest.approx(2500, rel=0.01)
    assert a["currents"]["C"]["fault_rms"] == pytest.approx(2500, rel=0.01)
    assert a["currents"]["A"]["fault_rms"] == pytest.approx(200, rel=0.01)


def test_three_phase_fault() -> None:
    a = _analyse(Fault(phases=("A", "B", "C"), fault_a=4000))
    assert a["faulted_phases"] == ["A", "B", "C"]
    assert a["fault_type"] == "ABC"


def test_a_fault_still_on_at_the_end_of_the_record_is_not_called_cleared() -> None:
    a = _analyse(Fault(clearing_ms=10_000, trip_ms=10_000, duration_ms=300))
    assert a["faulted_phases"] == ["A", "N"]
    assert a["clearing_ms"] is None
    assert "not cleared" in a["summary"]


def test_a_record_without_a_fault() -> None:
    a = _analyse(Fault(phases=(), clearing_ms=10_000, trip_ms=10_000))
    assert a["faulted_phases"] == []
    assert a["summary"] == "no fault detected"


def test_an_earth_fault_too_weak_to_lift_a_phase_current_by_half_is_found_by_its_residual() -> None:
    # IA moves from 1000 A to 1200 A RMS (and 55 degrees): no phase passes 1.5 x its load,
    # but about 1000 A now flows to ground.
    a = _analyse(Fault(load_a=1000, fault_a=1200, dip_to=0.9))
    assert a["faulted_phases"] == ["N"]
    assert a["fault_type"] == "G"
    assert a["residual"]["fault_rms"] == pytest.approx(1031, rel=0.02)
    assert a["clearing_ms"] == pytest.approx(80, abs=1.0)
    assert a["summary"].startswith("G fault; residual 10")
