"""Synthetic disturbance records (`simulator/waveforms.py`) and the scenario's record step.

The waveforms are checked against the answers their spec implies, after scaling the raw
samples with the master's own rule (`channel_scale`): what a relay quantised with RFA
comes back as the primary currents and voltages the spec asked for.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.errors import ConfigError
from gateway import comtrade
from protocols.iec103.disturbance_record import channel_scale
from simulator.relays.iec103.relay import Iec103Relay
from simulator.runner import ScenarioRunner
from simulator.scenario import SCENARIOS_DIR, Scenario, ScenarioFile, load_scenario
from simulator.waveforms import FaultSpec, SynthChannel, synthesise


def primary(channel: SynthChannel) -> list[float]:
    scale = channel_scale(channel.primary, channel.secondary, channel.reference)
    return [v * scale for v in channel.raw]


def rms(values: list[float]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def test_a_phase_a_fault_has_the_magnitudes_times_and_channels_it_was_asked_for() -> None:
    spec = FaultSpec()  # the seed's phase-A fault: 6 kA for 65 ms, 400 A load, 220 kV
    record = synthesise(spec)
    assert record.interval_us == 1000
    assert record.samples == 400
    by_name = {c.name: c for c in record.analog}
    assert list(by_name) == ["IA", "IB", "IC", "IN", "UA", "UB", "UC", "UN"]
    assert [c.acc for c in record.analog] == [1, 2, 3, 4, 5, 6, 7, 8]
    inception, clearing = 100, 165  # samples at 1 kHz
    ia, ub = primary(by_name["IA"]), primary(by_name["UB"])
    cycle = 20  # samples per 50 Hz cycle
    assert rms(ia[inception - 3 * cycle : inception]) == pytest.approx(400, rel=0.01)
    assert rms(ia[inception + cycle : inception + 3 * cycle]) == pytest.approx(6000, rel=0.01)
    assert max(abs(v) for v in ia[clearing:]) == 0  # the faulted pole is open
    assert rms(primary(by_name["IB"])[inception : inception + 3 * cycle]) == pytest.approx(
        400, rel=0.01
    )
    u_rated = 220e3 / math.sqrt(3)
    ua = primary(by_name["UA"])
    assert rms(ua[:inception]) == pytest.approx(u_rated, rel=0.01)
    assert rms(ua[inception + cycle : inception + 3 * cycle]) == pytest.approx(
        0.4 * u_rated, rel=0.01
    )
    assert rms(ub[inception + cycle : inception + 3 * cycle]) == pytest.approx(u_rated, rel=0.01)
    # the residual current is the faulted phase's fault current less the healthy load
    assert rms(primary(by_name["IN"])[:inception]) == pytest.approx(0, abs=2)
    assert rms(primary(by_name["IN"])[inception + cycle : clearing]) > 5000
    tags = {(t.fun, t.inf): (t.initial, t.changes) for t in record.tags}
    assert tags == {
        (128, 84): (False, ((100, True), (200, False))),  # start, reset at 100 ms
        (128, 69): (False, ((121, True), (180, False))),  # trip L1 at 21 ms, reset at 80 ms
        (128, 27): (True, ((165, False),)),  # breaker open at 65 ms
    }
    assert all(max(abs(v) for v in c.raw) <= 30_000 for c in record.analog)


def test_more_channels_are_private_and_other_phases_fault_too() -> None:
    record = synthesise(FaultSpec(phase="C", channels=10, samples=2000))
    assert [c.acc for c in record.analog][8:] == [64, 65]
    assert all(len(c.raw) == 2000 for c in record.analog)
    ic = primary(record.analog[2])
    assert rms(ic[120:160]) == pytest.approx(6000, rel=0.01)
    assert {(t.fun, t.inf) for t in record.tags} == {(128, 84), (128, 71), (128, 27)}


def _scenario(steps: list[dict[str, Any]], protocol: str = "iec103", port: str = "") -> Scenario:
    profile = "line-protection-103" if protocol == "iec103" else "line-protection"
    link = {"port": port, "link_address": 1, "common_address": 1} if port else {"port": 1}
    parsed = ScenarioFile.model_validate(
        {
            "scenario": {"name": "records"},
            "relays": [{"id": "line1", "protocol": protocol, "profile": profile, "link": link}],
            "steps": steps,
        }
    )
    return Scenario(parsed, SCENARIOS_DIR / "records.toml")


async def test_a_record_step_records_a_burst_on_a_103_relay(tmp_path: Path) -> None:
    step = {
        "at_ms": 0,
        "relay": "line1",
        "action": "record",
        "count": 3,
        "abort_after": 2,
        "record": {"phase": "B", "fault_current_a": 3000, "samples": 200},
    }
    runner = ScenarioRunner(_scenario([step], port=str(tmp_path / "bus")), progress=print)
    await runner.start()
    try:
        await runner.play()
        relay = runner.relays["line1"]
        assert isinstance(relay, Iec103Relay)
        records = list(relay.recorder.records.values())
        assert [r.entry.fault_number for r in records] == [1, 2, 3]
        assert all(r.abort_after == 2 and r.synth.samples == 200 for r in records)
        ib = primary(records[0].synth.analog[1])
        assert rms(ib[120:160]) == pytest.approx(3000, rel=0.01)
        assert len(relay.class1) == 1  # one ASDU 23 announces the burst
        first = records[0].first_sample
        assert first.tzinfo is UTC
        assert first < datetime.now(UTC)
    finally:
        await runner.stop()


def test_record_steps_are_checked() -> None:
    with pytest.raises(ConfigError, match="iec103 relays only"):
        _scenario([{"at_ms": 0, "relay": "line1", "action": "record"}], protocol="iec104")
    with pytest.raises(ValueError, match="belong to a record step"):
        _scenario([{"at_ms": 0, "relay": "line1", "point": "start", "count": 2}])
    with pytest.raises(ValueError, match="fault_current_a"):
        _scenario(
            [{"at_ms": 0, "relay": "line1", "action": "record", "record": {"fault_current_a": -1}}]
        )


def test_the_103_scenario_records_its_faults() -> None:
    scenario = load_scenario(SCENARIOS_DIR / "line-fault-103.toml")
    assert any(s.action == "record" for s in scenario.steps)


def _write_comtrade(directory: Path, spec: FaultSpec) -> None:
    """The record a relay made of `spec`, as COMTRADE (what an incident export writes)."""
    synth = synthesise(spec)
    start = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    record = comtrade.Record(
        station="north",
        device="line1",
        start_time=start,
        trigger_time=start + timedelta(milliseconds=spec.pre_fault_ms),
        sample_rate_hz=1e6 / synth.interval_us,
        line_frequency_hz=50.0,
        analog=tuple(
            comtrade.AnalogTrace(
                c.name,
                "A",
                "",
                channel_scale(c.primary, c.secondary, c.reference),
                0.0,
                c.primary,
                c.secondary,
                c.raw,
            )
            for c in synth.analog
        ),
        digital=tuple(
            comtrade.DigitalTrace(f"{t.fun}/{t.inf}", t.initial, t.changes) for t in synth.tags
        ),
    )
    cfg, dat = comtrade.write(record)
    (directory / "r.cfg").write_bytes(cfg)
    (directory / "r.dat").write_bytes(dat)


def _replaying(tmp_path: Path, steps: list[dict[str, Any]]) -> Scenario:
    parsed = ScenarioFile.model_validate(
        {
            "scenario": {"name": "replay"},
            "relays": [
                {
                    "id": "line1",
                    "protocol": "iec103",
                    "profile": "line-protection-103",
                    "link": {"port": str(tmp_path / "bus"), "link_address": 1, "common_address": 1},
                }
            ],
            "steps": steps,
            "disturbances": [
                {
                    "relay": "line1",
                    "fault_number": 17,
                    "trigger_at_ms": 30,
                    "cfg": "r.cfg",
                    "dat": "r.dat",
                }
            ],
        }
    )
    return Scenario(parsed, tmp_path / "incident.toml")


async def test_a_scenario_record_is_announced_at_its_trigger_and_served_as_recorded(
    tmp_path: Path,
) -> None:
    spec = FaultSpec(fault_current_a=4200, fault_duration_ms=58, samples=300)
    _write_comtrade(tmp_path, spec)
    trip = {"at_ms": 30, "relay": "line1", "point": "trip_phase_a", "value": True}
    runner = ScenarioRunner(_replaying(tmp_path, [trip]), progress=print)
    await runner.start()
    try:
        await runner.play()
        relay = runner.relays["line1"]
        assert isinstance(relay, Iec103Relay)
        [(ref, trigger)] = runner.replayed
        assert ref.fault_number == 17
        [kept] = relay.recorder.records.values()  # the trip step recorded nothing itself
        assert kept.entry.fault_number == 17
        assert trigger == next(p.device_time for p in runner.played)  # the same time line
        assert kept.first_sample == trigger - timedelta(milliseconds=100)
        synth = synthesise(spec)
        assert [c.raw for c in kept.synth.analog] == [c.raw for c in synth.analog]
        assert [(c.acc, c.primary, c.secondary) for c in kept.synth.analog] == [
            (c.acc, c.primary, c.secondary) for c in synth.analog
        ]
        for got, sent in zip(kept.synth.analog, synth.analog, strict=True):
            assert got.reference == pytest.approx(sent.reference, rel=1e-12)
        assert kept.synth.tags == synth.tags
    finally:
        await runner.stop()


async def test_a_record_the_relay_cannot_serve_stops_the_start_naming_it(tmp_path: Path) -> None:
    (tmp_path / "r.cfg").write_text("not COMTRADE\r\n")
    (tmp_path / "r.dat").write_bytes(b"")
    runner = ScenarioRunner(_replaying(tmp_path, []), progress=print)
    with pytest.raises(ConfigError, match=r"disturbances\[0\]: .*r\.cfg"):
        await runner.start()
    assert runner.relays == {}
