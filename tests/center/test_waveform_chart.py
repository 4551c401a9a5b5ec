"""The waveform SVG of a disturbance record: where things are drawn, read back from the SVG.

Records are synthesised with known answers (tests/support/disturbance_synth.py) and go through the
COMTRADE files and the fault analysis, as on the center."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from agent.disturbance import comtrade_record
from agent.normalize import DeviceContext
from center.disturbance.analysis import analyse
from center.web import waveform_chart as wc
from gateway import comtrade
from protocols.profile_loader import load_named
from tests.support.disturbance_synth import Fault, observation

CTX = DeviceContext("north", "gw1", "feeder-1", "iec103", load_named("line-protection"))
NS = {"s": "http://www.w3.org/2000/svg"}


def _chart(fault: Fault) -> tuple[ET.Element, comtrade.Record, dict[str, Any]]:
    record = comtrade.read(*comtrade.write(comtrade_record(CTX, observation(fault))))
    analysis = analyse(record)
    svg = str(wc.waveform_chart(record, analysis))
    root = ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    return root, record, analysis


def _x_of_ms(record: comtrade.Record, ms: float) -> float:
    start = (record.start_time - record.trigger_time).total_seconds() * 1000
    end = start + (record.samples - 1) * 1000 / record.sample_rate_hz
    return wc.LEFT + (ms - start) / (end - start) * wc.PLOT_W


def _moments(root: ET.Element) -> dict[str, tuple[float, float, str]]:
    """Each moment's class: (x of its line, y of its label, label)."""
    out = {}
    for g in root.iterfind(".//s:g[@class]", NS):
        if g.get("class", "").startswith("moment "):
            line, text = g.find("s:line", NS), g.find("s:text", NS)
            assert line is not None
            assert text is not None
            out[g.get("class", "").split()[1]] = (
                float(line.get("x1", "nan")),
                float(text.get("y", "nan")),
                text.text or "",
            )
    return out


def test_the_fault_band_spans_inception_to_clearing_and_the_trip_is_marked_where_it_happened():
    fault = Fault(inception_ms=100, trip_ms=160, clearing_ms=180)  # trigger at inception
    root, record, _ = _chart(fault)
    moments = _moments(root)
    assert moments["m-inception"][0] == pytest.approx(_x_of_ms(record, 0), abs=1)
    assert moments["m-trip"][0] == pytest.approx(_x_of_ms(record, 60), abs=1)
    assert moments["m-clearing"][0] == pytest.approx(_x_of_ms(record, 80), abs=1)
    assert [m[2] for m in moments.values()] == ["inception", "trip +60 ms", "cleared +80 ms"]
    band = root.find(".//s:rect[@class='fault-band']", NS)
    assert band is not None
    assert float(band.get("x", "0")) == pytest.approx(_x_of_ms(record, 0), abs=1)
    assert float(band.get("width", "0")) == pytest.approx(
        _x_of_ms(record, 80) - _x_of_ms(record, 0), abs=1
    )


def test_crowded_labels_take_the_second_row_and_an_open_fault_says_so():
    # Trip 2 ms before the end of a fault that is still on when the record ends.
    root, _, analysis = _chart(
        Fault(inception_ms=100, trip_ms=398, clearing_ms=1000, duration_ms=400)
    )
    assert analysis["clearing_ms"] is None
    moments = _moments(root)
    assert moments["m-open"][2] == "not cleared in the record"
    assert moments["m-trip"][1] != moments["m-open"][1]  # one row each: no overlap
    band = root.find(".//s:rect[@class='fault-band']", NS)
    assert band is not None
    right = float(band.get("x", "0")) + float(band.get("width", "0"))
    assert right == pytest.approx(wc.LEFT + wc.PLOT_W, abs=1)  # to the end of the record


def test_currents_and_voltages_one_plot_each_faulted_phases_bold_status_channels_as_lanes():
    root, record, _ = _chart(Fault(phases=("B", "C"), ground=False))
    plots = [g.get("data-plot") for g in root.iterfind(".//s:g[@class='plot']", NS)]
    assert plots == ["currents", "voltages"]
    traces = {p.get("data-channel"): p.get("class") for p in root.iterfind(".//s:polyline", NS)}
    assert traces == {
        "IA": "trace ph-A", "IB": "trace ph-B faulted", "IC": "trace ph-C faulted",
        "UA": "trace ph-A", "UB": "trace ph-B faulted", "UC": "trace ph-C faulted",
    }  # fmt: skip
    lanes = {
        g.get("data-channel"): [
            (float(r.get("x", "0")), float(r.get("x", "0")) + float(r.get("width", "0")))
            for r in g.iterfind("s:rect", NS)
        ]
        for g in root.iterfind(".//s:g[@class='lane-digital']", NS)
    }
    # trip: set at 160 ms (60 after the trigger) until the end; the breaker closed until 180.
    [(trip_from, trip_to)] = lanes["trip"]
    assert trip_from == pytest.approx(_x_of_ms(record, 60), abs=1)
    assert trip_to == pytest.approx(wc.LEFT + wc.PLOT_W, abs=1)
    [(cb_from, cb_to)] = lanes["breaker_closed"]
    assert cb_from == pytest.approx(wc.LEFT, abs=1)
    assert cb_to == pytest.approx(_x_of_ms(record, 80), abs=1)


def test_the_vertical_scale_is_a_round_number_above_the_largest_peak():
    root, _, _ = _chart(Fault(fault_a=3000))  # peak 4,243 A, voltages 89.8 kV
    labels = [t.text for t in root.iterfind(".//s:text[@class='y-label']", NS)]
    assert labels[:5] == ["5 kA", "2.5 kA", "0", "-2.5 kA", "-5 kA"]
    assert labels[5:] == ["100 kV", "50 kV", "0", "-50 kV", "-100 kV"]


def test_a_long_record_is_an_envelope_that_keeps_every_peak():
    values = [math.sin(k / 7) for k in range(20_000)]
    values[12_345] = 9.0  # one spike, one sample wide
    values[3_210] = -9.0
    points = wc.envelope(values, 900)
    assert len(points) <= 2 * 900
    assert max(v for _, v in points) == 9.0
    assert min(v for _, v in points) == -9.0
    fractions = [f for f, _ in points]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    short = [1.0, 2.0, 3.0]
    assert wc.envelope(short, 900) == [(0.0, 1.0), (0.5, 2.0), (1.0, 3.0)]


@pytest.mark.parametrize(
    ("peak", "nice"), [(4243, 5000), (89_800, 100_000), (1.0, 1.0), (0.031, 0.04), (151, 200)]
)
def test_nice_ceiling(peak: float, nice: float) -> None:
    assert wc.nice_ceiling(peak) == pytest.approx(nice)


def test_without_an_analysis_the_waveforms_are_still_drawn_unmarked():
    record = comtrade.read(*comtrade.write(comtrade_record(CTX, observation(Fault()))))
    svg = str(wc.waveform_chart(record, {"faulted_phases": [], "summary": "analysis failed"}))
    root = ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    assert len(root.findall(".//s:polyline", NS)) == 6
    assert root.find(".//s:rect[@class='fault-band']", NS) is None
    assert _moments(root) == {}
