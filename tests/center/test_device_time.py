"""Device times the center does not believe, on SQLite and PostgreSQL: a trip dated 2099
(or with a relay clock reset to 2000) is kept, flagged, ordered and judged by its gateway
time, and counted; a naive time is refused at the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError

from center.api import ApiContext, create_app
from center.config import IngestConfig
from center.device_time import DeviceClockCheck
from center.store import schema as s
from center.store.db import as_utc
from gateway import wire
from tests.center.records import T0, Gateway


def test_a_trip_dated_2099_opens_its_ticket_at_gateway_time_and_is_counted(make_harness):
    h = make_harness()
    gw = Gateway()
    future = gw.event("line1", "trip_phase_a", True, T0)
    future = future.model_copy(update={"device_time": datetime(2099, 1, 1, tzinfo=UTC)})
    h.send(future)

    (ticket,) = h.tickets()
    assert ticket["first_event_at"] == T0.isoformat()  # judged by gateway time, not 2099
    body = json.loads(h.scalar("SELECT body FROM records"))
    assert body["device_time"].startswith("2099-01-01")  # kept as received
    assert body["device_time_flags"] == ["implausible"]
    with h.engine.connect() as conn:
        stored_at = conn.execute(sa.select(s.records.c.event_time)).scalar()
    assert as_utc(stored_at) == T0  # ordered by gateway time
    assert h.counters.snapshot()["device_time_implausible"] == 1

    ctx = ApiContext(h.config, h.engine, h.service, h.counters, lambda: {"mqtt": {}})
    with TestClient(create_app(ctx)) as client:
        page = client.get("/metrics").text
    assert "relay_center_device_time_implausible_total 1" in page


def test_a_relay_clock_reset_to_2000_is_ordered_by_gateway_time(make_harness):
    h = make_harness()
    gw = Gateway()
    reset = gw.event("line1", "breaker_closed", False, T0, signal="status")
    reset = reset.model_copy(update={"device_time": datetime(2000, 1, 1, tzinfo=UTC)})
    good = gw.event("line1", "breaker_closed", True, T0 - timedelta(seconds=5), signal="status")
    h.send(reset, good)
    with h.engine.connect() as conn:
        from center.store import queries

        events = queries.list_events(conn, limit=10)
    # newest first: the reset clock's record sits at its gateway time, after the good one
    assert [e["value"] for e in events] == [False, True]
    assert h.counters.snapshot()["device_time_implausible"] == 1


def test_limits_are_asymmetric_and_configurable():
    check = DeviceClockCheck(IngestConfig(device_time_ahead_s=60, device_time_behind_s=3600))
    gw = Gateway()
    for offset, flagged in [(-3599, False), (-3601, True), (59, False), (61, True)]:
        r = gw.event("l", "t", True, T0)
        r = r.model_copy(update={"device_time": T0 + timedelta(seconds=offset)})
        judged, was = check.judge(r)
        assert isinstance(judged, wire.Event)
        assert was is flagged, offset
        assert ("implausible" in judged.device_time_flags) is flagged
    invalid = gw.event("l", "t", True, T0, device_time_flags=["invalid"])
    invalid = invalid.model_copy(update={"device_time": datetime(2099, 1, 1, tzinfo=UTC)})
    assert check.judge(invalid) == (invalid, False)  # already not believed: not counted


def test_a_fault_report_from_the_future_is_judged_by_gateway_time():
    check = DeviceClockCheck(IngestConfig())
    report = wire.FaultReport(
        site="north",
        gateway_id="gw1",
        device_id="line1",
        session=1,
        seq=1,
        gateway_time=T0,
        fault_time=datetime(2099, 1, 1, tzinfo=UTC),
    )
    judged, flagged = check.judge(report)
    assert flagged
    assert isinstance(judged, wire.FaultReport)
    assert judged.details["device_time_implausible"] is True
    from center.device_time import record_time

    assert record_time(judged) == T0


@pytest.mark.parametrize("field", ["gateway_time", "device_time"])
def test_the_wire_refuses_a_time_without_an_offset(field):
    gw = Gateway()
    doc = json.loads(gw.event("line1", "trip_phase_a", True, T0).model_dump_json())
    doc[field] = "2025-03-01T08:00:00"
    with pytest.raises(wire.WireError, match="timezone"):
        wire.decode_envelope(json.dumps({"v": 1, "records": [doc]}).encode())
    with pytest.raises(ValidationError):
        wire.Event.model_validate(doc)
