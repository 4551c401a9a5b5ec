"""A gateway whose health records stop is found silent: offline, with a site comms ticket,
cleared by its next health or birth record. With a manual clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from tests.center.records import T0, Gateway

S = timedelta(seconds=1)
EVERY = 60.0  # the agent's health interval, sent in its birth and health records


def gateway_row(h, gateway_id="gw1"):
    with h.engine.connect() as conn:
        sql = "SELECT online, silent_since, silent_due FROM gateways WHERE gateway_id = :g"
        return conn.execute(text(sql), {"g": gateway_id}).mappings().one()


def site_comms(h):
    return h.tickets(fault_class="site_comms")


def found_silent(h, gw):
    """Born at T0, then nothing: silent by T0 + 200 s."""
    h.send(gw.birth(T0, health_interval_s=EVERY))
    h.at(T0 + 200 * S)
    h.tick()
    (ticket,) = site_comms(h)
    return ticket


def test_three_missed_health_intervals_make_a_gateway_silent(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(gw.birth(T0, health_interval_s=EVERY))
    h.at(T0 + 179 * S)
    h.tick()
    assert gateway_row(h)["online"]
    assert site_comms(h) == []
    h.at(T0 + 180 * S)
    h.tick()
    row = gateway_row(h)
    assert not row["online"]
    assert row["silent_since"] is not None
    (ticket,) = site_comms(h)
    assert ticket["state"] == "open"
    assert ticket["subject"] == "@gw1"
    assert "silent" in h.ticket(ticket["id"])["timeline"][-1]["summary"]
    assert h.counters.snapshot()["gateways_silent"] == 1
    h.at(T0 + 400 * S)
    h.tick()  # found once, not on every tick
    assert h.counters.snapshot()["gateways_silent"] == 1
    assert len(site_comms(h)) == 1


def test_each_health_record_moves_the_deadline_on(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(gw.birth(T0, health_interval_s=EVERY))
    h.at(T0 + 60 * S)
    h.send(gw.health(T0 + 60 * S))
    h.at(T0 + 200 * S)
    h.tick()
    assert gateway_row(h)["online"]
    assert site_comms(h) == []
    h.at(T0 + 240 * S)
    h.tick()
    assert not gateway_row(h)["online"]
    assert len(site_comms(h)) == 1


def test_the_next_health_record_clears_it_and_the_ticket_resolves(make_harness):
    h = make_harness({"tickets": {"auto_resolve_overrides": {"site_comms": 60}}})
    gw = Gateway()
    ticket = found_silent(h, gw)
    h.at(T0 + 300 * S)
    h.send(gw.health(T0 + 300 * S))  # the broker is back, so is the gateway
    row = gateway_row(h)
    assert row["online"]
    assert row["silent_since"] is None
    assert not h.ticket(ticket["id"])["condition_active"]
    h.at(T0 + 361 * S)
    h.tick()
    assert h.ticket(ticket["id"])["state"] == "resolved"


def test_a_birth_clears_it_too(make_harness):
    h = make_harness()
    gw = Gateway()
    ticket = found_silent(h, gw)
    h.send(gw.birth(T0 + 200 * S, health_interval_s=EVERY))
    assert gateway_row(h)["online"]
    assert gateway_row(h)["silent_since"] is None
    assert not h.ticket(ticket["id"])["condition_active"]


def test_a_late_health_of_an_older_connection_clears_nothing(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(gw.birth(T0, health_interval_s=EVERY))
    stale = gw.health(T0 + 10 * S)  # connection 1's, delivered late
    h.send(gw.birth(T0 + 20 * S, health_interval_s=EVERY))  # connection 2
    h.at(T0 + 300 * S)
    h.tick()
    h.send(stale)
    assert not gateway_row(h)["online"]
    assert h.ticket(site_comms(h)[0]["id"])["condition_active"]


def test_a_gateway_that_said_goodbye_or_never_sent_its_interval_is_not_watched(make_harness):
    h = make_harness()
    stopped, old_agent = Gateway(gateway_id="gw1"), Gateway(gateway_id="gw2")
    h.send(stopped.birth(T0, health_interval_s=EVERY))
    h.send(stopped.death(T0 + 10 * S))  # a clean stop: offline, its own ticket
    h.send(old_agent.birth(T0))  # no health interval
    h.at(T0 + 3600 * S)
    h.tick()
    assert h.counters.snapshot().get("gateways_silent", 0) == 0
    assert [t["subject"] for t in site_comms(h)] == ["@gw1"]
    assert gateway_row(h, "gw2")["online"]
