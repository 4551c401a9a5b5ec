"""Incident statistics on a small history made through real ingest, the ticket engine and
people's actions, with every figure worked out by hand; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from center.analytics.incidents import StatsFilter
from center.analytics.report import improvement_report
from center.analytics.stats import statistics
from gateway import wire
from tests.center.records import Gateway

JAN, JUL = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
YEAR_D = 365.25
FEEDER_D = (JUL - datetime(2025, 3, 1, 8, tzinfo=UTC)).total_seconds() / 86_400  # first seen
CONFIG = {
    "tickets": {"auto_resolve_after_s": 60, "reopen_window_s": 60},
    "routing": {
        "regions": {"north": {"service_point": "sp-n"}, "south": {"service_point": "sp-s"}},
        "sites": {"north": {"region": "north"}, "south": {"region": "south"}},
    },
    "devices": [
        {"site": "north", "device_id": "line1", "commissioned": "2020-06-01"},
        {"site": "north", "device_id": "line2", "commissioned": "2020-06-01"},
    ],
    "analytics": {"clock": {"min_samples": 1, "judge_samples": 1}},
}


def day(month: int, d: int, hour: int = 8) -> datetime:
    return datetime(2025, month, d, hour, tzinfo=UTC)


def firmware(gw: Gateway, device: str, model: str, version: str, at: datetime) -> wire.Record:
    return wire.FirmwareReport(
        **gw._common(device, at), model=model, firmware_version=version, hash=version
    )


def clock_event(gw: Gateway, device: str, at: datetime) -> wire.Event:
    return wire.Event(
        **gw._common(device, at), address="9", signal="status", value=True, device_time=at,
        device_time_flags=["invalid"], cause="spontaneous",
    )  # fmt: skip


@pytest.fixture
def history(make_harness: Any) -> Any:
    """line1 (LP-900, 1.0 then 2.0 from May 1) and line2 (LP-900 1.0) at north, both
    commissioned by config before the period; feeder7 (FP-300 3.1) at south, first seen
    March 1, 08:00. Six tickets."""
    h = make_harness(CONFIG)
    n, s = Gateway("north", "gw1"), Gateway("south", "gw2")

    def later(at: datetime, seconds: float) -> None:
        h.at(at + timedelta(seconds=seconds))
        h.tick()

    h.at(day(3, 1))
    h.send(firmware(n, "line1", "LP-900", "1.0", day(3, 1)))
    h.send(firmware(n, "line2", "LP-900", "1.0", day(3, 1)))
    h.send(firmware(s, "feeder7", "FP-300", "3.1", day(3, 1)))
    # A: line1 self-check on 1.0, resolves itself, closes
    h.at(day(3, 10))
    h.send(n.event("line1", "self_check", True, day(3, 10), signal="self_check"))
    h.send(n.event("line1", "self_check", False, day(3, 10, 9), signal="self_check"))
    later(day(3, 10, 9), 61)
    later(day(3, 10, 9), 200)
    # C: line2 comms lost April 1, acknowledged after two hours
    h.at(day(4, 1))
    h.send(n.alarm("line2", "comms_lost", "raised", day(4, 1)))
    [c] = h.tickets(fault_class="comms")
    h.at(day(4, 1, 10))
    h.service.acknowledge(c["id"], "bob")
    h.send(n.alarm("line2", "comms_lost", "cleared", day(4, 1, 10)))
    later(day(4, 1, 10), 61)
    # D, E: feeder7 trips, resolved by people with root causes; F: its CT alarm
    for month, cause in ((4, "line_fault"), (6, "maloperation")):
        h.at(day(month, 15))
        h.send(s.event("feeder7", "trip", True, day(month, 15)))
        [t] = h.tickets(fault_class="protection_operation", state=["open"])
        h.at(day(month, 15, 8) + timedelta(minutes=30))
        h.service.acknowledge(t["id"], "bob")
        h.at(day(month, 15, 12))
        h.service.close(t["id"], "bob", cause)
    h.at(day(6, 20))
    h.send(s.event("feeder7", "ct_circuit", True, day(6, 20), signal="alarm", severity="minor"))
    # B: line1 self-check again, now on 2.0
    h.at(day(5, 10))
    h.send(firmware(n, "line1", "LP-900", "2.0", day(5, 1)))
    h.send(n.event("line1", "self_check", True, day(5, 10), signal="self_check"))
    # both north clocks marked invalid by the relays: the site stands out
    h.send(clock_event(n, "line1", day(5, 11)))
    h.send(clock_event(n, "line2", day(5, 11)))
    return h


def stats(h: Any, **f: Any) -> dict[str, Any]:
    with h.engine.connect() as conn:
        return statistics(conn, h.config, StatsFilter(JAN, JUL, **f))


def test_counts_rates_and_mtbf(history):
    st = stats(history)
    # exposure: line1 and line2 the whole period (181 days), feeder7 from March 1, 08:00
    assert st["devices"] == 3
    assert st["device_years"] == pytest.approx((181 + 181 + FEEDER_D) / YEAR_D, abs=1e-3)
    # the six of the fixture, line1's unapproved 2.0 and the two bad clocks
    assert st["tickets"] == 9
    by = {r["fault_class"]: r for r in st["by_class"]}
    assert {k: v["tickets"] for k, v in by.items() if v["tickets"]} == {
        "alarm": 1, "clock_quality": 2, "comms": 1, "firmware_drift": 1,
        "protection_operation": 2, "self_check": 2,
    }  # fmt: skip
    assert by["self_check"]["per_device_year"] == pytest.approx(
        2 / ((362 + FEEDER_D) / YEAR_D), abs=1e-3
    )
    assert by["self_check"]["events"] == 2
    assert by["comms"]["events"] == 1
    fw = {(r["firmware_version"], r["fault_class"]): r for r in st["mtbf"]["by_firmware"]}
    # line1 ran 1.0 until May 1, 08:00 (before its first report counts as its first
    # version), line2 the whole period: one failure in 301 1/3 days; 2.0: one in 60 2/3
    assert fw[("1.0", "self_check")]["mtbf_days"] == pytest.approx(301 + 1 / 3, abs=0.05)
    assert fw[("2.0", "self_check")]["mtbf_days"] == pytest.approx(61 - 1 / 3, abs=0.05)
    assert fw[("1.0", "comms")]["failures"] == 1
    model = {(r["model"], r["fault_class"]): r for r in st["mtbf"]["by_model"]}
    assert model[("LP-900", "self_check")]["mtbf_days"] == pytest.approx(181, abs=0.1)
    assert model[("FP-300", "self_check")]["mtbf_days"] is None  # no failure: no MTBF


def test_response_recurrence_and_causes(history):
    st = stats(history)
    resp = {r["fault_class"]: r for r in st["response"]}
    assert resp["comms"]["time_to_acknowledge"]["p50_h"] == 2.0
    prot = resp["protection_operation"]
    assert prot["time_to_acknowledge"]["mean_h"] == 0.5
    assert prot["time_to_resolve"]["mean_h"] == 4.0
    assert st["reopen_rate"] == 0.0
    recurring = {(r["device_id"], r["tickets"]) for r in st["recurring_devices"]}
    # firmware drift is preventive: left out of recurrence; clock tickets count
    assert recurring == {("feeder7", 3), ("line1", 3), ("line2", 2)}
    causes: dict[str, int] = {}
    for r in st["root_causes"]:  # per cause and class
        causes[r["root_cause"]] = causes.get(r["root_cause"], 0) + r["tickets"]
    assert causes == {"line_fault": 1, "maloperation": 1, "unassigned": 7}
    months = {m["month"]: m["total"] for m in st["monthly"]}
    assert months == {"2025-01": 0, "2025-02": 0, "2025-03": 1, "2025-04": 2, "2025-05": 4,
                      "2025-06": 2}  # fmt: skip
    clock = st["clock"]
    assert clock["sites_standing_out"] == ["north"]
    assert clock["relays_bad"] == 2


def test_filters(history):
    fp = stats(history, model="FP-300")
    assert (fp["tickets"], fp["devices"]) == (3, 1)
    assert fp["device_years"] == pytest.approx(FEEDER_D / YEAR_D, abs=1e-3)
    v2 = stats(history, firmware_version="2.0")
    assert v2["tickets"] == 3
    assert v2["device_years"] == pytest.approx((61 - 1 / 3) / YEAR_D, abs=1e-4)
    assert stats(history, region="south")["tickets"] == 3
    assert stats(history, site="north", fault_class="self_check")["tickets"] == 2
    assert stats(history, fault_class="alarm")["tickets"] == 1
    assert stats(history, root_cause="line_fault")["tickets"] == 1
    assert stats(history, device_id="line2")["tickets"] == 2
    assert stats(history, root_cause="unassigned", site="south")["tickets"] == 1


def test_a_period_reaching_past_now_counts_exposure_only_until_now(history):
    """A report asked `--to` the end of the month on its 25th: the devices have not yet
    lived the rest of it, so their rates must not be diluted by days to come."""
    now = day(6, 25)
    with history.engine.connect() as conn:
        report = improvement_report(conn, history.config, JAN, JUL, now)
        ahead = statistics(conn, history.config, StatsFilter(JAN, JUL), now=now)
        until_now = statistics(conn, history.config, StatsFilter(JAN, now))
    assert report["summary"]["device_years"] == until_now["device_years"]
    assert ahead["tickets"] == until_now["tickets"] == 9
    assert ahead["device_years"] == until_now["device_years"]
    assert ahead["device_years"] < stats(history)["device_years"]
    assert ahead["by_class"] == until_now["by_class"]
    assert ahead["mtbf"] == until_now["mtbf"]
    june = {m["month"]: m for m in ahead["monthly"]}["2025-06"]
    assert june == {m["month"]: m for m in until_now["monthly"]}["2025-06"]


def test_reopen_and_flapping_rates_count_what_happened(make_harness):
    """Three tickets: a comms condition that flaps, a CT alarm that resolves and comes
    back (reopened), and a trip: flapping rate 1 in the 2 conditions."""
    h = make_harness(
        {
            "tickets": {"auto_resolve_after_s": 60, "reopen_window_s": 3600, "flap_history": 6,
                        "flap_window_s": 3600, "flap_high_pct": 50, "flap_low_pct": 25},
        }
    )  # fmt: skip
    gw = Gateway()
    start = day(3, 1)
    for i in range(6):  # raised, cleared, ... every 5 minutes: it flaps
        at = start + timedelta(seconds=300 * i)
        h.at(at)
        h.send(gw.alarm("line1", "comms_lost", "raised" if i % 2 == 0 else "cleared", at))
        h.at(at + timedelta(seconds=120))
        h.tick()
    ct = {"signal": "alarm", "severity": "minor"}
    h.at(day(3, 2))
    h.send(gw.event("line2", "ct_circuit", True, day(3, 2), **ct))
    h.send(gw.event("line2", "ct_circuit", False, day(3, 2, 9), **ct))
    h.at(day(3, 2, 9) + timedelta(seconds=61))
    h.tick()  # resolved
    h.at(day(3, 2, 9) + timedelta(seconds=600))
    h.send(gw.event("line2", "ct_circuit", True, day(3, 2, 9) + timedelta(seconds=600), **ct))
    h.send(gw.event("busbar", "trip", True, day(3, 3)))
    st = stats(h)
    reopened = {t["fault_class"]: t["reopen_count"] for t in h.tickets()}
    # the comms ticket resolved after its first clear and reopened before it was seen
    # flapping; the CT alarm reopened once; the trip never
    assert reopened == {"comms": 1, "alarm.ct_circuit": 1, "protection_operation": 0}
    assert st["tickets"] == 3
    assert st["reopen_rate"] == round(2 / 3, 4)
    assert st["flapping_rate"] == 0.5
