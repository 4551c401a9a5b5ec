"""The center's disturbance intake on SQLite and PostgreSQL: reassembly, verification,
refusals with nothing half-written, analysis attached to the incident's ticket."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from gateway import comtrade, wire
from tests.center.disturbance_support import TRIGGER, fault_report, transfer
from tests.center.records import T0, Gateway, seed_records
from tests.support.disturbance_synth import Fault, observation


def send_all(h: Any, m: wire.DisturbanceRecord, chunks: list[wire.DisturbanceChunk]) -> None:
    h.send(m)
    for c in chunks:
        h.send(c)


def send_seed(h: Any, gw: Gateway) -> None:
    for r in seed_records(gw):
        h.send(r)


def record_row(h: Any) -> dict[str, Any]:
    with h.engine.connect() as conn:
        from center.store import schema as s

        rows = conn.execute(s.disturbance_records.select()).mappings().all()
    assert len(rows) == 1
    return dict(rows[0])


def staged(h: Any) -> int:
    return int(h.scalar("SELECT count(*) FROM disturbance_chunks"))


def test_a_record_is_reassembled_verified_analysed_and_attached_to_its_p1_ticket(
    make_harness: Any,
) -> None:
    h = make_harness()
    gw = Gateway()
    send_seed(h, gw)
    [ticket] = h.tickets(fault_class="protection_operation")
    m, chunks = transfer(gw)
    assert len(chunks) > 3
    h.send(m)
    for c in chunks[:-1]:
        h.send(c)
    assert record_row(h)["status"] == "receiving"
    h.send(chunks[-1])
    h.send(chunks[1], chunks[-1])  # redelivery changes nothing

    row = record_row(h)
    assert row["status"] == "complete", row["failure"]
    cfg, dat = comtrade.write(
        comtrade.read(row["cfg"], row["dat"])
    )  # the stored files are COMTRADE…
    assert (cfg, dat) == (row["cfg"], row["dat"])
    assert len(row["cfg"]) + len(row["dat"]) == m.size == row["size"]  # …and whole
    assert row["ticket_id"] == ticket["id"]
    assert row["fault_number"] == 17
    assert json.loads(row["channels"])["digital"] == ["trip", "breaker_closed"]
    assert row["duration_s"] == pytest.approx(0.4)
    analysis = json.loads(row["analysis"])
    assert analysis["faulted_phases"] == ["A", "N"]
    assert staged(h) == 0
    doc = h.ticket(ticket["id"])
    [entry] = [e for e in doc["timeline"] if e["entry"] == "disturbance"]
    assert "AG fault" in entry["summary"]
    assert "cleared in 80 ms" in entry["summary"]
    counts = h.counters.snapshot()
    assert counts["disturbance_records_complete"] == 1
    assert counts["disturbance_chunks_duplicate"] == 2
    assert not any(k.startswith("disturbance_refused") for k in counts)


def test_a_missing_chunk_refuses_the_record_and_keeps_nothing_of_it(make_harness: Any) -> None:
    h = make_harness()
    m, chunks = transfer(Gateway())
    send_all(h, m, [chunks[0], *chunks[2:]])
    row = record_row(h)
    assert row["status"] == "refused"
    assert row["failure"].startswith("missing_chunk")
    assert (row["cfg"], row["dat"], row["analysis"]) == (None, None, None)
    assert staged(h) == 0
    assert h.counters.snapshot()["disturbance_refused_missing_chunk"] == 1


def test_a_wrong_hash_refuses_the_record(make_harness: Any) -> None:
    h = make_harness()
    m, chunks = transfer(Gateway(), sha256="0" * 64)
    send_all(h, m, chunks)
    row = record_row(h)
    assert (row["status"], row["cfg"]) == ("refused", None)
    assert row["failure"].startswith("bad_hash")
    assert staged(h) == 0
    assert h.counters.snapshot()["disturbance_refused_bad_hash"] == 1


def test_a_chunk_for_an_unknown_record_is_refused(make_harness: Any) -> None:
    h = make_harness()
    _, chunks = transfer(Gateway())
    h.send(chunks[0])
    assert h.scalar("SELECT count(*) FROM disturbance_records") == 0
    assert staged(h) == 0
    assert h.counters.snapshot()["disturbance_refused_unknown_record"] == 1


def test_a_record_declared_larger_than_the_limit_is_refused(make_harness: Any) -> None:
    h = make_harness({"disturbance": {"max_record_bytes": 4096}})
    m, chunks = transfer(Gateway())
    send_all(h, m, chunks)
    row = record_row(h)
    assert row["status"] == "refused"
    assert row["failure"].startswith("oversized")
    assert staged(h) == 0
    counts = h.counters.snapshot()
    assert counts["disturbance_refused_oversized"] == 1
    assert counts["disturbance_chunks_duplicate"] == len(chunks)  # ignored, never staged


def test_chunks_larger_than_declared_are_refused(make_harness: Any) -> None:
    h = make_harness()
    gw = Gateway()
    m, chunks = transfer(gw)
    small = m.model_copy(update={"dat_bytes": m.dat_bytes - 5000})
    send_all(h, small, chunks)
    row = record_row(h)
    assert row["status"] == "refused"
    assert row["failure"].startswith("oversized")
    assert staged(h) == 0


def test_a_record_complete_before_its_trip_joins_the_ticket_the_trip_opens(
    make_harness: Any,
) -> None:
    h = make_harness()
    gw = Gateway()
    m, chunks = transfer(gw)
    send_all(h, m, chunks)
    assert record_row(h)["ticket_id"] is None
    send_seed(h, gw)
    [ticket] = h.tickets(fault_class="protection_operation")
    assert record_row(h)["ticket_id"] == ticket["id"]


def test_a_record_of_another_incident_stays_off_the_ticket(make_harness: Any) -> None:
    h = make_harness()
    gw = Gateway()
    send_seed(h, gw)
    later = Fault(trigger_time=TRIGGER + timedelta(minutes=5))
    send_all(h, *transfer(gw, fault=later))
    assert record_row(h)["status"] == "complete"
    assert record_row(h)["ticket_id"] is None


def test_a_fault_report_attaches_to_the_incident(make_harness: Any) -> None:
    h = make_harness()
    gw = Gateway()
    send_seed(h, gw)
    [ticket] = h.tickets(fault_class="protection_operation")
    h.send(fault_report(gw))
    doc = h.ticket(ticket["id"])
    [entry] = [e for e in doc["timeline"] if e["entry"] == "fault_report"]
    assert entry["summary"] == "line1: fault report: AG; 12.4 km; trip 58 ms; IA 2950 A"
    assert h.scalar("SELECT ticket_id FROM fault_reports") == ticket["id"]


TOKEN = "operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_api_lists_records_shows_them_on_the_ticket_and_serves_the_comtrade_zip(
    make_harness: Any,
) -> None:
    import io
    import zipfile

    from fastapi.testclient import TestClient

    from center.api import ApiContext, create_app

    h = make_harness({"api": {"tokens": [{"name": "alice", "token": TOKEN}]}})
    gw = Gateway()
    send_seed(h, gw)
    m, chunks = transfer(gw)
    send_all(h, m, chunks)
    bad, bad_chunks = transfer(gw, sha256="1" * 64)
    send_all(h, bad, bad_chunks)
    ctx = ApiContext(h.config, h.engine, h.service, h.counters)
    with TestClient(create_app(ctx)) as api:
        assert api.get("/api/v1/disturbances").status_code == 401
        listed = api.get("/api/v1/disturbances", headers=AUTH).json()
        assert [r["status"] for r in listed] == ["refused", "complete"]
        good = listed[1]
        assert good["analysis"]["fault_type"] == "AG"
        assert good["channels"]["analog"] == ["IA", "IB", "IC", "UA", "UB", "UC"]
        assert (good["device_id"], good["fault_number"], good["size"]) == ("line1", 17, m.size)
        ticket = api.get(f"/api/v1/tickets/{good['ticket_id']}", headers=AUTH).json()
        [shown] = ticket["disturbance_records"]
        assert shown["id"] == good["id"]
        assert "AG fault" in shown["summary"]

        got = api.get(f"/api/v1/disturbances/{good['id']}/comtrade.zip", headers=AUTH)
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(got.content)) as z:
            names = sorted(z.namelist())
            assert names == ["north_line1_17.cfg", "north_line1_17.dat"]
            record = comtrade.read(z.read(names[0]), z.read(names[1]))
        assert (
            record.analog[0].samples == observation(Fault(trigger_time=TRIGGER)).analog[0].samples
        )
        refused = listed[0]["id"]
        assert (
            api.get(f"/api/v1/disturbances/{refused}/comtrade.zip", headers=AUTH).status_code == 404
        )
        assert api.get("/api/v1/disturbances/9999", headers=AUTH).status_code == 404


def test_stalled_transfers_are_refused_and_old_records_expire(make_harness: Any) -> None:
    h = make_harness({"disturbance": {"retention_days": 30, "incomplete_after_s": 3600}})
    gw = Gateway()
    send_all(h, *transfer(gw))
    m, chunks = transfer(gw)
    send_all(h, m, chunks[:2])
    assert staged(h) == 2
    h.at(T0 + timedelta(hours=2))
    h.tick()
    assert staged(h) == 0
    assert h.scalar("SELECT failure FROM disturbance_records WHERE status = 'refused'").startswith(
        "incomplete"
    )
    assert h.counters.snapshot()["disturbance_refused_incomplete"] == 1
    h.at(T0 + timedelta(days=29))
    h.tick()
    assert h.scalar("SELECT count(*) FROM disturbance_records") == 2
    h.at(T0 + timedelta(days=31))
    h.tick()
    assert h.scalar("SELECT count(*) FROM disturbance_records") == 0
    assert h.counters.snapshot()["disturbance_records_expired"] == 2


class BrokenAnalyser:
    """An analysis with a bug in it."""

    def __call__(self, record: comtrade.Record) -> dict[str, Any]:
        raise ZeroDivisionError("float division by zero")


def test_a_record_whose_analysis_fails_is_still_kept_and_attached(make_harness: Any) -> None:
    from center.disturbance.intake import DisturbanceIntake

    h = make_harness()
    h.ingestor.disturbances = DisturbanceIntake(
        h.config.disturbance, h.config.tickets.grouping_window_s, BrokenAnalyser()
    )
    gw = Gateway()
    send_seed(h, gw)
    send_all(h, *transfer(gw))
    row = record_row(h)
    assert row["status"] == "complete"
    assert row["cfg"] is not None
    assert row["ticket_id"]
    assert json.loads(row["analysis"])["summary"].startswith("analysis failed: ZeroDivisionError")
    assert h.counters.snapshot()["disturbance_analysis_failed"] == 1
