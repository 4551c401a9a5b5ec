"""States reported because someone asked (an interrogation after a connect or for a poll, a
read) against the ticket engine, on SQLite and PostgreSQL: never part of an incident, but
they reconcile conditions. Also: records of agents that sent the protocol's own cause."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from center.ingest import Message
from gateway import wire
from tests.center.records import T0, Gateway, seed_records

S = timedelta(seconds=1)
ASKED = {"cause": "interrogated", "cause_raw": "INTERROGATED_BY_STATION"}


def incident(h: Any) -> dict[str, Any]:
    (ticket,) = h.tickets(fault_class="protection_operation")
    return h.ticket(ticket["id"])


def test_an_interrogation_during_an_incident_leaves_it_as_the_fault_made_it(make_harness):
    h = make_harness()
    gw = Gateway()
    for r in seed_records(gw):
        h.send(r)
    before = incident(h)
    stored = h.scalar("SELECT count(*) FROM records")

    # An engineer polls line1 3 s after the fault: the relay answers with every state,
    # stamped with the time each last changed (the breaker before the fault, too).
    def ms(n: int) -> Any:
        return T0 + timedelta(milliseconds=n)

    h.send(
        gw.event("line1", "breaker_closed", True, ms(1905), signal="status", **ASKED),
        gw.event("line1", "start", False, ms(1100), signal="start", severity="major", **ASKED),
        gw.event("line1", "reclose", False, ms(2100), signal="status", **ASKED),
        gw.event("line1", "start", True, ms(-6600), signal="start", severity="major", **ASKED),
        gw.event("line1", "trip_phase_b", True, ms(3000), cause="requested", cause_raw="REQUEST"),
    )
    h.send(gw.event("line2", "bf_init_phase_a", True, ms(3100), signal="start", **ASKED))
    assert h.scalar("SELECT count(*) FROM records") == stored + 6  # all kept in the store
    after = incident(h)
    assert after == before  # timeline, first/last event, occurrences, severity, members
    assert after["occurrences"] == 1
    assert len(h.tickets()) == 1
    assert h.counters.snapshot()["asked_states_not_incidents"] == 6


def test_a_trip_found_by_interrogation_opens_nothing(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(gw.event("line1", "trip_phase_a", True, T0, **ASKED))
    h.send(gw.event("line1", "breaker_closed", False, T0, signal="status", **ASKED))
    assert h.tickets() == []


def test_an_alarm_found_raised_keeps_its_ticket_and_found_cleared_resolves_it(make_harness):
    h = make_harness({"tickets": {"auto_resolve_after_s": 60}})
    gw = Gateway()
    h.send(gw.event("line2", "self_check_fail", True, T0, signal="self_check"))
    (ticket,) = h.tickets()
    opened = h.ticket(ticket["id"])

    # comms lost and back: the interrogation after the reconnect finds it still raised
    h.at(T0 + 30 * S)
    h.send(gw.alarm("line2", "comms_lost", "raised", T0 + 20 * S))
    h.send(gw.alarm("line2", "comms_lost", "cleared", T0 + 30 * S))
    h.send(gw.event("line2", "self_check_fail", True, T0 + 30 * S, signal="self_check", **ASKED))
    kept = h.ticket(ticket["id"])
    assert kept == opened  # still open, no timeline entry, no occurrence, same times

    # the next reconnect finds it cleared: its clear starts, and holds, and resolves it
    h.at(T0 + 100 * S)
    h.send(gw.event("line2", "self_check_fail", False, T0 + 100 * S, signal="self_check", **ASKED))
    cleared = h.ticket(ticket["id"])
    assert cleared["state"] == "open"
    assert not cleared["condition_active"]
    assert "self_check_fail cleared (found interrogated)" in cleared["timeline"][-1]["summary"]
    h.at(T0 + 161 * S)
    h.tick()
    assert h.ticket(ticket["id"])["state"] == "resolved"


def test_an_alarm_found_raised_after_a_reconnect_opens_or_reopens_its_ticket(make_harness):
    h = make_harness({"tickets": {"auto_resolve_after_s": 0}})
    gw = Gateway()
    # raised while the gateway could not see it: the interrogation is the first word of it
    h.send(gw.event("line2", "ct_circuit_alarm", True, T0, signal="alarm", **ASKED))
    (ticket,) = h.tickets()
    assert ticket["state"] == "open"
    assert ticket["fault_class"] == "alarm.ct_circuit_alarm"

    h.send(gw.event("line2", "ct_circuit_alarm", False, T0 + S, signal="alarm"))
    h.at(T0 + 2 * S)
    h.tick()
    assert h.ticket(ticket["id"])["state"] == "resolved"
    # it came back while comms were down: found raised, the resolved ticket reopens
    h.at(T0 + 60 * S)
    h.send(gw.event("line2", "ct_circuit_alarm", True, T0 + 60 * S, signal="alarm", **ASKED))
    reopened = h.ticket(ticket["id"])
    assert (reopened["state"], reopened["reopen_count"]) == ("open", 1)


def _legacy_event(gw: Gateway, point: str, at: Any, cause: str | None, **extra: Any) -> bytes:
    """An event as an agent before `cause_raw` sent it: the protocol's name in `cause`."""
    body = json.loads(gw.event("line1", point, True, at, **extra).model_dump_json())
    del body["cause_raw"]
    if cause is None:
        del body["cause"]
    else:
        body["cause"] = cause
    return json.dumps({"v": 1, "records": [body]}).encode()


def test_records_of_older_agents_are_accepted_and_understood(make_harness):
    h = make_harness()
    gw = Gateway()
    topic = wire.topic(gw.site, gw.gateway_id, "event", "line1")
    old_trip = _legacy_event(gw, "trip_phase_a", T0, "SPONTANEOUS")
    old_gi = _legacy_event(gw, "start", T0 - 6 * S, "INTERROGATED_BY_STATION", signal="start")
    no_cause = _legacy_event(gw, "trip_phase_b", T0 + S, None)
    result = h.ingestor.ingest([Message(topic, p) for p in (old_trip, old_gi, no_cause)])
    assert (result.stored, result.rejected) == (3, 0)

    ticket = incident(h)
    assert ticket["occurrences"] == 1
    # the interrogation's answer stayed out; the event without a cause joined, as before
    assert ticket["first_event_at"] == T0.isoformat()
    summaries = [e["summary"] for e in ticket["timeline"] if e["entry"] == "event"]
    assert summaries == ["line1: trip_phase_a raised", "line1: trip_phase_b raised"]
    bodies = [json.loads(b) for b in _bodies(h)]
    assert [(b["cause"], b.get("cause_raw")) for b in bodies] == [
        ("spontaneous", "SPONTANEOUS"),
        ("interrogated", "INTERROGATED_BY_STATION"),
        (None, None),
    ]


def _bodies(h: Any) -> list[str]:
    with h.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT body FROM records ORDER BY seq")).scalars())
