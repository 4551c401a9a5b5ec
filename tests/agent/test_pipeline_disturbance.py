"""The pipeline's disturbance records and fault reports: what enters the outbox."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import UTC, datetime

from agent.pipeline import Pipeline
from gateway import comtrade, wire
from gateway.outbox import Outbox
from protocols.observations import FaultReportObservation
from tests.agent.test_pipeline import make_pipeline, records
from tests.support.disturbance_synth import Fault, observation


def bulk(box: Outbox) -> list[wire.DisturbanceChunk]:
    rows = box.read_bulk(1000)
    payload = wire.encode_envelope([wire.stamp(r.body, r.session, r.seq) for r in rows])
    return [r for r in wire.decode_envelope(payload) if isinstance(r, wire.DisturbanceChunk)]


def test_a_record_becomes_one_manifest_and_its_chunks_in_one_commit(box: Outbox) -> None:
    pipe: Pipeline = make_pipeline(box)
    pipe.chunk_bytes = 1000
    obs = observation(Fault(), device_id="line1")
    pipe.deliver_blocking([obs])
    [manifest] = records(box)
    chunks = bulk(box)
    assert isinstance(manifest, wire.DisturbanceRecord)
    assert (manifest.fault_number, manifest.trigger_time, manifest.samples) == (
        17,
        obs.trigger_time,
        400,
    )
    assert manifest.analog_channels == ["IA", "IB", "IC", "UA", "UB", "UC"]
    assert manifest.digital_channels == ["trip", "breaker_closed"]
    assert manifest.sample_rate_hz == 1000.0
    assert [c.index for c in chunks] == list(range(manifest.chunks))
    content = b"".join(base64.b64decode(c.data) for c in chunks)
    assert len(content) == manifest.size
    assert hashlib.sha256(content).hexdigest() == manifest.sha256
    record = comtrade.read(content[: manifest.cfg_bytes], content[manifest.cfg_bytes :])
    assert [ch.samples for ch in record.analog] == [ch.samples for ch in obs.analog]
    assert pipe.counters["disturbance_records"] == 1


def test_a_record_comtrade_cannot_hold_raises_an_alarm_instead(box: Outbox) -> None:
    obs = observation(Fault(), device_id="line1")
    broken = replace(obs, analog=(replace(obs.analog[0], samples=(-32768,) * 400), *obs.analog[1:]))
    make_pipeline(box).deliver_blocking([broken])
    [alarm] = records(box)
    assert isinstance(alarm, wire.Alarm)
    assert alarm.code == "disturbance_unwritable"
    assert "-32768" in alarm.message
    assert box.bulk_depth == 0


def test_a_fault_report_becomes_a_fault_report_record(box: Outbox) -> None:
    at = datetime(2026, 3, 1, 8, 0, 1, tzinfo=UTC)
    make_pipeline(box).deliver_blocking(
        [
            FaultReportObservation(
                "line1", at, "AG", ("A", "N"), 12.4, 58.0, {"A": 2950.0}, {"register": 4001}
            )
        ]
    )
    [report] = records(box)
    assert isinstance(report, wire.FaultReport)
    assert (report.fault_time, report.fault_type, report.phases) == (at, "AG", ["A", "N"])
    assert (report.distance_km, report.trip_time_ms, report.currents_a) == (
        12.4,
        58.0,
        {"A": 2950.0},
    )
    assert report.details == {"register": 4001}
