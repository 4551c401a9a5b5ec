"""A recorded disturbance replayed: the master fetches a record from a simulated relay
(real codec, pty bus), the agent writes it as COMTRADE, the relay serves those files again
(`simulator/relays/iec103/replay.py`), and the master fetches the same record a second time:
the same channels, raw samples, RPV/RSV/RFA, tags and pre-trigger time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.disturbance import comtrade_record
from agent.normalize import DeviceContext
from center.disturbance.analysis import analyse
from gateway import comtrade
from protocols.observations import DisturbanceObservation
from protocols.profile_loader import load_named
from simulator.relays.iec103.replay import ReplayError, replay_record
from simulator.waveforms import FaultSpec
from tests.protocols.iec103.conftest import make_bench, running
from tests.protocols.iec103.test_disturbance_transfer import initialised, stored

CONTEXT = DeviceContext("north", "gw1", "relay1", "iec103", load_named("line-protection-103"))


def _comtrade(record: DisturbanceObservation) -> tuple[bytes, bytes]:
    return comtrade.write(comtrade_record(CONTEXT, record))


async def test_a_replayed_comtrade_record_reaches_the_master_as_it_was_recorded(
    tmp_path: Path,
) -> None:
    bench = await make_bench(tmp_path)
    relay = bench.relays["relay1"]
    spec = FaultSpec(channels=10, samples=300)  # ACC 1-8 and two private channels
    async with running(bench):
        await initialised(bench)
        t0 = datetime.now(UTC).replace(microsecond=250_000)
        (fan,) = await relay.record(spec, t0)
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
        (field,) = stored(bench)
        cfg, dat = _comtrade(field)
        later = t0 + timedelta(seconds=30)
        await relay.replay(replay_record(comtrade.read(cfg, dat)), 42, later)
        await bench.until(lambda: relay.recorder.acknowledged == [fan, 42])
    # the status channels carry the profile's point names, so the center finds the trip
    # (21 ms after inception) and the breaker (open at 65 ms) in the record
    written = comtrade.read(cfg, dat)
    assert [(d.name, d.ccbm) for d in written.digital] == [
        ("breaker_closed", "128/27"),
        ("trip_phase_a", "128/69"),
        ("start", "128/84"),
    ]
    analysis = analyse(written)
    assert (analysis["trip_ms"], analysis["breaker_ms"]) == (pytest.approx(21), pytest.approx(65))
    lab = stored(bench)[1]
    assert lab.fault_number == 42
    assert lab.trigger_time == later
    assert lab.trigger_time - lab.first_sample_time == field.trigger_time - field.first_sample_time
    assert lab.sample_interval_us == field.sample_interval_us
    assert lab.analog == field.analog  # names, raw samples, RPV, RSV, RFA (as R32), scale
    assert lab.digital == field.digital  # the tags, as "<fun>/<inf>"
    # and so the COMTRADE the agent writes is the same but for the times
    lab_cfg, lab_dat = _comtrade(lab)
    assert lab_dat == dat
    assert lab_cfg.splitlines()[:-6] == cfg.splitlines()[:-6]


def _record(**changes: Any) -> comtrade.Record:
    trace = comtrade.AnalogTrace("IA", "A", "A", 0.5, 0.0, 1200.0, 1.0, (0, 1, -1))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return replace(
        comtrade.Record("north", "line1", start, start, 1000.0, 50.0, (trace,)), **changes
    )


def test_names_become_channels_and_what_103_cannot_carry_is_refused() -> None:
    other = comtrade.AnalogTrace("Feeder I", "A", "", 0.5, 0.0, 1200.0, 1.0, (0, 0, 0))
    acc9 = comtrade.AnalogTrace("ACC9", "", "", 0.5, 0.0, 1200.0, 1.0, (0, 0, 0))
    record = replay_record(_record(analog=(_record().analog[0], other, acc9)))
    assert [(c.acc, c.name) for c in record.synth.analog] == [
        (1, "IA"),
        (64, "Feeder I"),
        (9, "ACC9"),
    ]
    assert record.synth.analog[0].reference == pytest.approx(1200 / (1.0 * 0.5))
    with pytest.raises(ReplayError, match="'<fun>/<inf>'"):
        replay_record(_record(digital=(comtrade.DigitalTrace("Trip", False),)))
    offset = comtrade.AnalogTrace("IA", "A", "A", 0.5, 3.0, 1200.0, 1.0, (0, 0, 0))
    with pytest.raises(ReplayError, match="offset b"):
        replay_record(_record(analog=(offset,)))
    with pytest.raises(ReplayError, match="interval"):
        replay_record(_record(sample_rate_hz=10.0))
