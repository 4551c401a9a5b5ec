"""Ageing early warning: the score in numbers, then the daily job on a seeded synthetic
fleet (500 devices, 3 years) whose answers are planted, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from center.analytics.ageing import DeviceInput, FleetRate, WearFinding, score
from center.analytics.ageing_job import AgeingJob
from center.analytics.config import AgeingConfig
from center.clock import ManualClock
from center.config import parse_config
from center.store import queries
from center.store.db import make_engine, migrate
from center.ticket_service import TicketService
from center.tickets.engine import TicketEngine
from tests.support.fleet_history import NOW, fleet_config, planted, seed_fleet

CFG = AgeingConfig(design_life_years={"FP-300": 15})


def test_score_explains_itself_in_numbers():
    dev = DeviceInput("north", "feeder7", "FP-300", 14.2, 90, {"self_check": 3})
    # the rest of the fleet: 20 self-check failures over 100 device-years (0.2 a year)
    fleet = {("FP-300", "self_check"): FleetRate(23, 100 * 365.25 + 90)}
    sc = score(dev, fleet, CFG)
    assert sc.risk == pytest.approx(14.2 / 15 + 0.2, abs=1e-3)
    assert sc.opens_ticket
    assert sc.priority == "P4"
    assert "age 14.2 of 15 years (0.95 of design life)" in sc.explanation
    assert (
        "3 self-check failures in 90 days against 0.049 expected from the FP-300 fleet rate "
        "(0.2 per device-year): elevated (by chance 1 in 52,000, p = 1.9e-05 < 0.01)"
    ) in sc.explanation


def test_few_events_or_chance_do_not_count():
    fleet = {("FP-300", "self_check"): FleetRate(400, 100 * 365.25 + 90)}  # 4 a year
    busy = score(DeviceInput("n", "d", "FP-300", 5, 90, {"self_check": 2}), fleet, CFG)
    assert not any(r.elevated for r in busy.rates)  # 2 < min_count
    usual = score(DeviceInput("n", "d", "FP-300", 5, 90, {"self_check": 3}), fleet, CFG)
    assert not usual.rates[0].elevated  # about 1 expected: 3 is chance (p ~ 0.08)
    worn = score(
        DeviceInput("n", "d", "FP-300", 1, 90, wear=[WearFinding("ops", "ops", 9000, 8000)]),
        {},
        CFG,
    )
    assert worn.risk == pytest.approx(1.125)
    assert worn.opens_ticket


@pytest.fixture
def fleet(db_url: str) -> Any:
    config_data = fleet_config()
    config = parse_config(config_data)
    engine = make_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        seeded = seed_fleet(conn, config_data)
    assert seeded.devices == 500
    clock = ManualClock(NOW)
    tickets = TicketEngine(config, clock)
    yield engine, AgeingJob(engine, tickets, ["hook"]), clock, tickets
    engine.dispose()


def _tickets(engine: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return queries.list_tickets(conn, queries.TicketFilter(fault_class="ageing"))


def test_daily_job_finds_the_planted_devices(fleet):
    engine, job, _, _ = fleet
    run = job.run()
    expected = {(p.site, p.device_id): p for p in planted() if p.expect_ticket}
    assert sorted(run.put_on_tickets) == sorted(f"{s}/{d}" for s, d in expected)
    found = {t["site"]: t for t in _tickets(engine)}
    assert sorted(found) == ["s07", "s12", "s20", "s40"]  # one ticket per site
    assert len(found["s07"]["devices"]) == 10  # the old substation: one ticket, not ten
    for site, t in found.items():
        want = {p.expect_priority for (s, _), p in expected.items() if s == site}
        assert {t["priority"]} == want
        assert t["service_point"] == ("sp-north" if int(site[1:]) < 25 else "sp-south")
        assert t["kind"] == "discrete"
        assert t["state"] == "open"
    with engine.connect() as conn:
        ticket = queries.get_ticket(conn, found["s20"]["id"])
        assert ticket is not None
        timeline = ticket["timeline"]
        scores = {
            r[0]: r[1]
            for r in conn.exec_driver_sql("SELECT device_id, risk FROM ageing_scores").all()
        }
    explained = " ".join(e["summary"] for e in timeline)
    assert "age 19.5 of 20 years" in explained
    assert "6 self-check failures in 90 days" in explained  # planted, and no base event
    assert "9 comms losses in 90 days" in explained  # 8 planted, 1 at the base rate
    assert len(scores) == 500
    assert scores["s31-d02"] == pytest.approx(0.9, abs=0.01)  # old and healthy: no ticket
    assert scores["s30-d01"] < 1.0  # young and faulty: not ageing

    again = job.run()  # the next run within the period changes nothing
    assert (again.tickets, again.held_back) == ([], 13)


def test_a_site_ticket_gathers_later_devices_and_the_period_holds(fleet):
    engine, job, clock, tickets = fleet
    job.run()
    [s12] = [t for t in _tickets(engine) if t["site"] == "s12"]
    with engine.begin() as conn:  # a day later a worn breaker at the same site
        conn.exec_driver_sql(
            "INSERT INTO records (gateway_id, session, seq, kind, site, device_id, event_time,"
            " received_at, point, value, body) VALUES ('gw-s12', 2, 1, 'measurement', 's12',"
            " 's12-d07', :at, :at, 'breaker_operations', '12000', '{}')"
            .replace(":at", "'" + (NOW + timedelta(hours=20)).isoformat(" ") + "'")
        )  # fmt: skip
    clock.advance(86_400)
    run = job.run()
    assert run.put_on_tickets == ["s12/s12-d07"]
    [after] = [t for t in _tickets(engine) if t["site"] == "s12"]
    assert after["id"] == s12["id"]
    assert after["devices"] == ["s12-d03", "s12-d07"]

    service = TicketService(engine, tickets, ["hook"])
    for t in _tickets(engine):
        service.close(t["id"], "alice", "testing_or_maintenance", "replacement planned")
    clock.advance(200 * 86_400)
    assert job.run().tickets == []  # closed, but within the period
    clock.advance(200 * 86_400)
    late = job.run()
    assert "s07/s07-d00" in late.put_on_tickets
    [s07] = [t for t in _tickets(engine) if t["site"] == "s07" and t["state"] == "open"]
    assert s07["episode"] == 2
    assert s07["priority"] == "P3"


def test_scores_are_served_riskiest_first(fleet):
    from fastapi.testclient import TestClient

    from center.api import ApiContext, create_app
    from center.ingest import Counters

    engine, job, _, tickets = fleet
    job.run()
    token = "ageing-token-0123456789"
    config = parse_config({**fleet_config(), "api": {"tokens": [{"name": "o", "token": token}]}})
    ctx = ApiContext(config, engine, TicketService(engine, tickets, ["hook"]), Counters())
    with TestClient(create_app(ctx)) as api:
        rows = api.get(
            "/api/v1/analytics/ageing", params={"min_risk": 1.0},
            headers={"Authorization": f"Bearer {token}"},
        ).json()  # fmt: skip
    assert [r["device_id"] for r in rows][:1] == ["s20-d05"]
    assert len(rows) == 13
    assert all(r["details"]["opens_ticket"] for r in rows)


def test_the_schedule_runs_the_job_once_per_interval(make_harness):
    from center.analytics.schedule import AgeingSchedule

    h = make_harness({"analytics": {"ageing": {"run_every_s": 3600}}})
    schedule = AgeingSchedule(AgeingJob(h.engine, h.tickets_engine, ["hook"]))
    first = schedule.run_if_due()
    assert first is not None
    assert first.scored == 0
    assert schedule.run_if_due() is None  # a restart within the hour: not again
    h.clock.advance(3599)
    assert schedule.run_if_due() is None
    h.clock.advance(2)
    assert schedule.run_if_due() is not None
    summary = h.scalar("SELECT summary FROM analytics_runs WHERE job = 'ageing'")
    assert summary.startswith("0 devices scored")
