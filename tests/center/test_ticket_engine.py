"""The ticket engine (center/tickets/): a ticket's states step by step, with a manual clock,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby

import pytest

from center.errors import TicketActionError
from tests.center.records import T0, Gateway, seed_records

S = timedelta(seconds=1)


def send_grouped_by_device(h, records):
    for _, recs in groupby(records, key=lambda r: (r.kind, r.device_id)):
        h.send(*recs)


def test_seed_scenario_is_one_ticket_with_every_event(make_harness):
    h = make_harness()
    gw = Gateway()
    records = seed_records(gw)
    send_grouped_by_device(h, records)

    (ticket,) = h.tickets()
    assert ticket["fault_class"] == "protection_operation"
    assert ticket["devices"] == ["busbar", "line1", "line2"]
    assert ticket["severity"] == "critical"
    doc = h.ticket(ticket["id"])
    refs = {tuple(e["record"]) for e in doc["timeline"] if e["record"]}
    # every record from the first start on is in the timeline, the earlier breaker status not
    assert refs == {r.record_id for r in records[1:]}
    assert any("reclose raised" in e["summary"] for e in doc["timeline"])
    assert [e["entry"] for e in doc["timeline"]].count("grouped") == 2  # line2, busbar


def test_incidents_apart_make_separate_tickets_and_a_repeat_counts(make_harness):
    h = make_harness({"tickets": {"grouping_window_s": 10}})
    gw = Gateway()
    h.send(gw.event("line1", "trip_phase_a", at=T0))
    h.send(gw.event("line2", "trip_phase_b", at=T0 + 60 * S))
    assert len(h.tickets()) == 2
    h.send(gw.event("line1", "trip_phase_a", at=T0 + 3600 * S))  # open ticket: dedup
    line1 = h.tickets(device_id="line1")[0]
    assert line1["occurrences"] == 2
    assert len(h.tickets()) == 2


def test_duplicates_change_nothing(make_harness):
    h = make_harness()
    gw = Gateway()
    trip = gw.event("line1", "trip_phase_a")
    first = h.send(trip)
    before = h.tickets()[0]
    again = h.send(trip)
    assert (first.stored, again.stored, again.duplicates) == (1, 0, 1)
    assert h.scalar("SELECT count(*) FROM records") == 1
    after = h.tickets()[0]
    assert after["revision"] == before["revision"]
    assert h.scalar("SELECT count(*) FROM ticket_timeline") == 2  # opened + the event
    assert h.scalar("SELECT count(*) FROM webhook_outbox") == 1


def test_condition_auto_resolves_once_the_clear_held(make_harness):
    h = make_harness({"tickets": {"auto_resolve_after_s": 300}})
    gw = Gateway()
    h.send(gw.event("line1", "self_check_fail", True, T0, signal="self_check"))
    (t,) = h.tickets()
    assert t["kind"] == "condition"
    assert t["state"] == "open"
    h.at(T0 + 10 * S)
    h.send(gw.event("line1", "self_check_fail", False, T0 + 10 * S, signal="self_check"))
    h.at(T0 + 300 * S)
    h.tick()
    assert h.tickets()[0]["state"] == "open"  # 290 s of clear so far
    h.at(T0 + 311 * S)
    h.tick()
    t = h.tickets()[0]
    assert (t["state"], t["resolved_by"]) == ("resolved", "auto")


def test_an_inverted_point_opens_a_ticket_only_when_raised(make_harness):
    h = make_harness()
    gw = Gateway()
    healthy = {"signal": "self_check", "address": "status:healthy"}
    h.send(gw.event("feeder7", "healthy", "on", T0, raised=False, **healthy))
    assert h.tickets() == []
    h.send(gw.event("feeder7", "healthy", "off", T0 + S, raised=True, **healthy))
    (t,) = h.tickets()
    assert (t["fault_class"], t["state"], t["devices"]) == ("self_check", "open", ["feeder7"])


def test_raise_during_hold_keeps_ticket_open(make_harness):
    h = make_harness({"tickets": {"auto_resolve_after_s": 60}})
    gw = Gateway()
    h.send(gw.alarm("line1", "comms_lost", "raised", T0))
    h.send(gw.alarm("line1", "comms_lost", "cleared", T0 + 5 * S))
    h.send(gw.alarm("line1", "comms_lost", "raised", T0 + 20 * S))
    h.at(T0 + 200 * S)
    h.tick()
    (t,) = h.tickets()
    assert t["state"] == "open"
    assert t["condition_active"]
    assert t["occurrences"] == 2


def test_recurrence_reopens_then_a_new_episode_after_close(make_harness):
    h = make_harness({"tickets": {"auto_resolve_after_s": 60, "reopen_window_s": 3600}})
    gw = Gateway()
    h.send(gw.event("line1", "self_check_fail", True, T0, signal="self_check"))
    h.send(gw.event("line1", "self_check_fail", False, T0 + S, signal="self_check"))
    h.at(T0 + 100 * S)
    h.tick()
    assert h.tickets()[0]["state"] == "resolved"
    # recurrence within the reopen window: the same ticket, reopened
    h.at(T0 + 200 * S)
    h.send(gw.event("line1", "self_check_fail", True, T0 + 200 * S, signal="self_check"))
    (t,) = h.tickets()
    assert (t["state"], t["reopen_count"], t["episode"]) == ("open", 1, 1)
    h.send(gw.event("line1", "self_check_fail", False, T0 + 210 * S, signal="self_check"))
    h.at(T0 + 300 * S)
    h.tick()
    assert h.tickets()[0]["state"] == "resolved"
    # the reopen window passes: closed automatically
    h.at(T0 + 300 * S + 3601 * S)
    h.tick()
    first = h.tickets()[0]
    assert (first["state"], first["closed_by"]) == ("closed", "auto")
    # a recurrence after close: a new episode linked to the old ticket
    h.send(gw.event("line1", "self_check_fail", True, T0 + 4000 * S, signal="self_check"))
    newest, old = h.tickets()
    assert newest["id"] != old["id"]
    assert (newest["episode"], newest["previous_ticket_id"]) == (2, old["id"])
    assert newest["priority"] < old["priority"] or newest["priority"] == "P1"  # recurrence


def test_trip_is_resolved_by_a_person_and_recurrence_reopens(make_harness):
    h = make_harness({"tickets": {"reopen_window_s": 3600}})
    gw = Gateway()
    h.send(gw.event("line1", "trip_phase_a", True, T0))
    h.send(gw.event("line1", "trip_phase_a", False, T0 + S))
    h.at(T0 + 7200 * S)
    h.tick()
    (t,) = h.tickets()
    assert t["state"] == "open"  # trips never resolve themselves
    with pytest.raises(TicketActionError):
        h.service.resolve(t["id"], "alice", "not-a-cause")
    h.service.acknowledge(t["id"], "alice")
    done = h.service.resolve(t["id"], "alice", "line_fault", "tree contact")
    assert (done["state"], done["root_cause"], done["resolved_by"]) == (
        "resolved",
        "line_fault",
        "alice",
    )
    h.at(T0 + 7300 * S)
    h.send(gw.event("line1", "trip_phase_a", True, T0 + 7300 * S))
    (t,) = h.tickets()
    assert (t["state"], t["reopen_count"]) == ("open", 1)
    with pytest.raises(TicketActionError):
        h.service.close(t["id"], "bob", None)  # a trip closes with a root cause
    closed = h.service.close(t["id"], "bob", "line_fault")
    assert closed["state"] == "closed"
    h.send(gw.event("line1", "trip_phase_a", True, T0 + 7400 * S))
    new, old = h.tickets()
    assert (new["episode"], new["previous_ticket_id"], new["state"]) == (2, old["id"], "open")
    timeline = [e["entry"] for e in h.ticket(old["id"])["timeline"]]
    assert timeline.index("acknowledged") < timeline.index("resolved") < timeline.index("reopened")


def test_site_comms_loss_inhibits_device_comms_alarms(make_harness):
    h = make_harness({"tickets": {"auto_resolve_overrides": {"site_comms": 60, "comms": 60}}})
    gw = Gateway()
    h.send(gw.birth(T0))
    h.send(gw.alarm("line2", "comms_lost", "raised", T0 + S))  # before the outage
    h.at(T0 + 10 * S)
    h.send(gw.death(T0 + 10 * S))
    site = h.tickets(fault_class="site_comms")[0]
    early = h.tickets(device_id="line2")[0]
    assert early["muted"]
    assert early["parent_id"] == site["id"]
    # during the outage, line1's comms loss is recorded as a muted child
    h.send(gw.alarm("line1", "comms_lost", "raised", T0 + 20 * S))
    child = h.tickets(device_id="line1")[0]
    assert child["muted"]
    assert child["parent_id"] == site["id"]
    assert set(h.ticket(site["id"])["children"]) == {child["id"], early["id"]}
    outbox = h.scalar(f"SELECT count(*) FROM webhook_outbox WHERE ticket_id = {child['id']}")
    assert outbox == 0  # muted: nobody is paged for it
    # the gateway comes back; line1 comes back, line2 stays lost
    h.at(T0 + 100 * S)
    h.send(gw.birth(T0 + 100 * S))
    h.send(gw.alarm("line1", "comms_lost", "cleared", T0 + 101 * S))
    h.at(T0 + 200 * S)
    h.tick()
    assert h.ticket(site["id"])["state"] == "resolved"
    assert h.ticket(child["id"])["state"] == "resolved"
    line2 = h.ticket(early["id"])
    assert line2["state"] == "open"
    assert not line2["muted"]
    assert h.scalar(f"SELECT count(*) FROM webhook_outbox WHERE ticket_id = {early['id']}") >= 1


def test_stale_will_after_a_new_birth_raises_nothing(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(gw.birth(T0))  # connection 1
    old_death = gw.death(T0 + S)  # the will of connection 1 ...
    h.send(gw.birth(T0 + 2 * S))  # ... arrives after connection 2's birth
    h.send(old_death)
    assert h.tickets() == []


def test_flapping_holds_the_ticket_open_until_it_calms_down(make_harness):
    h = make_harness(
        {
            "tickets": {
                "auto_resolve_after_s": 60,
                "flap_history": 6,
                "flap_window_s": 3600,
                "flap_high_pct": 50,
                "flap_low_pct": 25,
            }
        }
    )
    gw = Gateway()
    at = T0
    for i in range(6):  # raised, cleared, ... every 5 minutes: slower than the hold
        at = T0 + i * 300 * S
        h.at(at)
        h.send(gw.alarm("line1", "comms_lost", "raised" if i % 2 == 0 else "cleared", at))
        h.at(at + 120 * S)
        h.tick()
    (t,) = h.tickets()
    assert t["flapping"]
    assert t["state"] == "open"
    assert "flapping" in t["title"]
    revision = t["revision"]
    # last state is cleared; while flapping it does not resolve
    h.at(at + 600 * S)
    h.tick()
    assert h.tickets()[0]["state"] == "open"
    assert h.tickets()[0]["revision"] == revision
    # an hour later the transitions have aged out: flapping stops, then the clear holds
    h.at(at + 3700 * S)
    h.tick()
    t = h.tickets()[0]
    assert not t["flapping"]
    assert t["state"] == "open"
    h.at(at + 3700 * S + 61 * S)
    h.tick()
    t = h.tickets()[0]
    assert t["state"] == "resolved"
    entries = [e["entry"] for e in h.ticket(t["id"])["timeline"]]
    assert "flapping" in entries
    assert "flapping_stopped" in entries
    assert h.tickets()[0]["reopen_count"] <= 2  # no reopen churn once flapping was seen


def test_maintenance_records_events_but_opens_nothing(make_harness):
    window = {
        "site": "north",
        "starts_at": T0,
        "ends_at": T0 + 3600 * S,
        "reason": "relay test",
    }
    h = make_harness({"maintenance": [window]})
    gw = Gateway()
    h.send(gw.event("line1", "trip_phase_a", True, T0 + 60 * S))
    h.send(gw.alarm("line2", "comms_lost", "raised", T0 + 60 * S))
    assert h.tickets() == []
    assert h.scalar("SELECT count(*) FROM records") == 2
    assert h.counters.snapshot()["suppressed_maintenance"] == 2
    # the window ends while line2's comms are still lost: that opens now
    h.at(T0 + 3601 * S)
    h.tick()
    (t,) = h.tickets()
    assert t["fault_class"] == "comms"
    assert t["devices"] == ["line2"]
    # after the window a trip opens as usual
    h.send(gw.event("line1", "trip_phase_a", True, T0 + 3700 * S))
    assert len(h.tickets()) == 2


def test_priority_and_routing(make_harness):
    h = make_harness(
        {
            "routing": {
                "regions": {"north": {"service_point": "sp-north"}},
                "sites": {"north": {"region": "north"}},
            },
            "devices": [{"site": "north", "device_id": "busbar", "criticality": "high"}],
        }
    )
    gw = Gateway()
    h.send(gw.event("busbar", "busbar_trip", True, T0))
    h.send(gw.event("line1", "ct_circuit_alarm", True, T0, signal="alarm", severity="minor"))
    other = Gateway(site="south", gateway_id="gw9")
    h.send(other.event("line9", "trip_phase_a", True, T0))
    by_device = {t["devices"][0]: t for t in h.tickets()}
    assert by_device["busbar"]["priority"] == "P1"  # critical + high criticality
    assert by_device["line1"]["priority"] == "P4"  # minor, normal
    assert by_device["line9"]["priority"] == "P2"  # critical, normal
    assert by_device["busbar"]["service_point"] == "sp-north"
    assert by_device["line9"]["service_point"] == "central"


def test_sequence_gaps_are_reported_and_unreported_when_filled(make_harness):
    h = make_harness()
    gw = Gateway()
    records = [gw.event("line1", "breaker_closed", True, T0, signal="status") for _ in range(6)]
    h.send(records[0], records[1], records[4])
    from center.store import queries

    with h.engine.connect() as conn:
        (gap,) = queries.list_gaps(conn)
    assert gap["missing"] == [[3, 4]]
    assert gap["missing_records"] == 2
    h.send(records[2])
    h.send(records[3], records[5])
    with h.engine.connect() as conn:
        assert queries.list_gaps(conn) == []
    assert h.counters.snapshot()["seq_gaps_opened"] == 1
