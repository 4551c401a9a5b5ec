"""A `measurements` record (one Modbus poll: every measurand of a device read together):
stored once, as one record, and read by the ageing job like single measurements."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from center.analytics.ageing_job import newest_wear
from gateway import wire
from tests.center.records import T0

BASE: dict[str, Any] = {"site": "north", "gateway_id": "gw1", "device_id": "feeder7"}


def poll(seq: int, operations: int, minutes: int = 0) -> wire.MeasurementSet:
    return wire.MeasurementSet(
        **BASE,
        session=1,
        seq=seq,
        gateway_time=T0 + timedelta(minutes=minutes),
        values={"measurement:breaker_operations": operations, "measurement:frequency": 49.98},
        points={"measurement:breaker_operations": "breaker_operations"},
        units={"measurement:breaker_operations": "count", "measurement:frequency": "Hz"},
        cause="periodic",
        cause_raw="measurement_read",
    )


def single(seq: int, operations: int, minutes: int = 0) -> wire.Measurement:
    return wire.Measurement(
        **BASE,
        session=1,
        seq=seq,
        gateway_time=T0 + timedelta(minutes=minutes),
        address="measurement:breaker_operations",
        point="breaker_operations",
        value=operations,
    )


def wear(h) -> dict[str, float]:
    with h.engine.connect() as conn:
        return newest_wear(conn, ["breaker_operations", "frequency"])[("north", "feeder7")]


def test_a_poll_is_one_record_stored_once(make_harness):
    h = make_harness()
    h.send(poll(1, 9_990))
    h.send(poll(1, 9_990))  # a re-send after a lost acknowledgement
    with h.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT kind, point, value FROM records").all()
    assert [tuple(r) for r in rows] == [("measurements", None, None)]
    # the address the profile names by its point name; another by its address
    assert wear(h) == {"breaker_operations": 9_990.0}


def test_the_newest_of_single_measurements_and_polls_wins(make_harness):
    h = make_harness()
    h.send(single(1, 9_990))
    h.send(poll(2, 9_995, minutes=1))
    assert wear(h)["breaker_operations"] == 9_995.0
    h.send(single(3, 10_000, minutes=2))  # e.g. another protocol's driver, later
    assert wear(h)["breaker_operations"] == 10_000.0
