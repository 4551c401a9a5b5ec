"""COMTRADE writer against an independent reader (the PyPI `comtrade` package) and our own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import comtrade as independent
import pytest

from agent.disturbance import comtrade_record
from agent.normalize import DeviceContext
from gateway import comtrade
from protocols.profile_loader import load_named
from tests.support.disturbance_synth import Fault, observation

CTX = DeviceContext("north", "gw1", "feeder-1", "iec103", load_named("line-protection"))


def _many_digitals() -> comtrade.Record:
    """19 status channels (two status words), raw extremes, an odd sample rate."""
    analog = (
        comtrade.AnalogTrace("IA", "A", "A", 0.125, 0.0, 600.0, 1.0, tuple(range(-25, 25))),
        comtrade.AnalogTrace(
            "UN", "kV", "N", 0.003, 0.0, 110.0, 0.1, tuple((-32767, 32767, 0, 1, -1) * 10)
        ),
    )
    digital = tuple(
        comtrade.DigitalTrace(f"d{i}", i % 2 == 0, ((i + 1, i % 2 == 1), (i + 20, i % 2 == 0)))
        for i in range(19)
    )
    return comtrade.Record(
        station="north",
        device="bay 7",
        start_time=datetime(2025, 3, 1, 8, 0, 0, 1, tzinfo=UTC),
        trigger_time=datetime(2025, 3, 1, 8, 0, 0, 20_001, tzinfo=UTC),
        sample_rate_hz=1234.0,
        line_frequency_hz=60.0,
        analog=analog,
        digital=digital,
    )


RECORDS = {
    "synthetic fault": comtrade_record(CTX, observation(Fault())),
    "19 digitals": _many_digitals(),
}


def _states(trace: comtrade.DigitalTrace, n: int) -> list[int]:
    changes = dict(trace.changes)
    out, state = [], trace.initial
    for i in range(n):
        state = changes.get(i, state)
        out.append(int(state))
    return out


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_independent_reader_reads_back_everything_as_written(name: str, tmp_path: Path) -> None:
    record = RECORDS[name]
    cfg, dat = comtrade.write(record)
    (tmp_path / "r.cfg").write_bytes(cfg)
    (tmp_path / "r.dat").write_bytes(dat)
    rec = independent.Comtrade()
    rec.load(str(tmp_path / "r.cfg"), str(tmp_path / "r.dat"))

    assert rec.rev_year == "2013"
    assert (rec.station_name, rec.rec_dev_id) == (record.station, record.device)
    assert rec.total_samples == record.samples
    assert rec.cfg.sample_rates == [[record.sample_rate_hz, record.samples]]
    assert rec.frequency == record.line_frequency_hz
    assert rec.start_timestamp == record.start_time.replace(tzinfo=None)
    assert rec.trigger_timestamp == record.trigger_time.replace(tzinfo=None)
    assert rec.analog_channel_ids == [ch.name for ch in record.analog]
    assert rec.analog_phases == [ch.phase for ch in record.analog]
    for i, ch in enumerate(record.analog):
        # The reader keeps float32: each value within its precision, and every raw
        # sample recovered exactly.
        got = list(rec.analog[i])
        assert got == pytest.approx(ch.values(), rel=1e-6, abs=1e-6), ch.name
        assert [round((v - ch.b) / ch.a) for v in got] == list(ch.samples), ch.name
        assert rec.cfg.analog_channels[i].uu == ch.unit
        assert rec.cfg.analog_channels[i].primary == ch.primary
        assert rec.cfg.analog_channels[i].secondary == ch.secondary
    assert rec.status_channel_ids == [ch.name for ch in record.digital]
    for i, trace in enumerate(record.digital):
        assert list(rec.status[i]) == _states(trace, record.samples), trace.name
    step = 1 / record.sample_rate_hz
    assert list(rec.time) == pytest.approx([k * step for k in range(record.samples)], abs=1e-6)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_own_reader_round_trips(name: str) -> None:
    record = RECORDS[name]
    assert comtrade.read(*comtrade.write(record)) == record


def test_scaling_is_the_channels_primary_units_per_count() -> None:
    obs = observation(Fault())
    record = comtrade_record(CTX, obs)
    ia = record.analog[0]
    assert ia.a == obs.analog[0].scale
    assert ia.values()[5] == obs.analog[0].samples[5] * obs.analog[0].scale


def test_the_missing_marker_cannot_be_written() -> None:
    record = _many_digitals()
    bad = comtrade.AnalogTrace("IA", "A", "A", 1.0, 0.0, 1.0, 1.0, (-32768,) * 50)
    with pytest.raises(comtrade.ComtradeError, match="-32768"):
        comtrade.write(replace(record, analog=(bad,)))


def test_truncated_dat_is_refused() -> None:
    cfg, dat = comtrade.write(_many_digitals())
    with pytest.raises(comtrade.ComtradeError, match="dat:"):
        comtrade.read(cfg, dat[:-1])


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (b"1234.0,50", b"0.0,50", "sample rate"),
        (b",0.125,0.0,0,", b",inf,0.0,0,", "finite"),
        (b",0.125,0.0,0,", b",nan,0.0,0,", "finite"),
        (b"BINARY", b"ASCII", "only BINARY"),
        (b",0.125,0.0,0,-32767,32767,600.0,1.0,P", b",0.125", "not a C37.111"),
        (b"21,2A,19D", b"21,xA,19D", "not a C37.111"),
    ],
)
def test_a_cfg_the_analysis_cannot_trust_is_refused(old: bytes, new: bytes, match: str) -> None:
    cfg, dat = comtrade.write(_many_digitals())
    assert old in cfg
    with pytest.raises(comtrade.ComtradeError, match=match):
        comtrade.read(cfg.replace(old, new, 1), dat)
