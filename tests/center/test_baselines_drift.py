"""Baselines and drift tickets through ingest and the ticket engine, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from center.baselines import baselines, inventory
from center.baselines.approvals import ApprovalError, BaselineService
from tests.center.baseline_records import FEEDER, SettingsSource, firmware
from tests.center.records import T0, Gateway

S = timedelta(seconds=1)


def approvals(h):
    return BaselineService(h.engine, h.tickets_engine, ["hook"])


def drift_tickets(h, fault_class):
    return h.tickets(fault_class=fault_class)


def test_a_settings_change_opens_one_critical_ticket_and_approval_resolves_it(make_harness):
    h = make_harness()
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    h.send(feeder7.snapshot(FEEDER, T0))  # the first snapshot becomes the baseline
    assert drift_tickets(h, "settings_drift") == []
    with h.engine.connect() as conn:
        first = baselines.current_settings(conn, "north", "feeder7")
    assert first is not None
    assert first.approved_by == "auto"

    changed = feeder7.snapshot({**FEEDER, "i_pickup": 1.5}, T0 + 60 * S)
    assert [(c.name, c.before, c.after, c.category) for c in changed.diff] == [
        ("i_pickup", 1.2, 1.5, "protection")
    ]
    h.send(changed)
    (ticket,) = drift_tickets(h, "settings_drift")
    assert (ticket["state"], ticket["severity"], ticket["priority"]) == ("open", "critical", "P2")
    assert ticket["devices"] == ["feeder7"]
    assert "i_pickup 1.2 -> 1.5" in h.ticket(ticket["id"])["timeline"][-1]["summary"]

    h.at(T0 + 3600 * S)
    result = approvals(h).approve_settings("north", "feeder7", "alice", "study 42: new pickup")
    assert result.tickets_changed == [ticket["id"]]
    done = h.ticket(ticket["id"])
    assert (done["state"], done["resolved_by"]) == ("resolved", "alice")
    assert done["note"] == "approved: study 42: new pickup"
    with h.engine.connect() as conn:
        baseline = baselines.current_settings(conn, "north", "feeder7")
    assert baseline is not None
    assert (baseline.hash, baseline.approved_by, baseline.reason) == (
        changed.hash,
        "alice",
        "study 42: new pickup",
    )
    assert baseline.approved_at == T0 + 3600 * S
    # the approved settings reported again (after a restart elsewhere): nothing opens
    h.send(feeder7.snapshot({**FEEDER, "i_pickup": 1.5}, T0 + 7200 * S))
    assert [t["state"] for t in drift_tickets(h, "settings_drift")] == ["resolved"]


def test_a_benign_change_is_a_lower_priority_ticket(make_harness):
    h = make_harness()
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    h.send(feeder7.snapshot(FEEDER))
    h.send(feeder7.snapshot({**FEEDER, "bay_name": "Feeder 7A"}, T0 + S))
    (ticket,) = drift_tickets(h, "settings_drift")
    assert (ticket["severity"], ticket["priority"]) == ("minor", "P4")


def test_a_device_back_at_its_baseline_resolves_its_ticket(make_harness):
    h = make_harness()
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    h.send(feeder7.snapshot(FEEDER))
    h.send(feeder7.snapshot({**FEEDER, "t_delay": 0.5}, T0 + S))
    (ticket,) = drift_tickets(h, "settings_drift")
    h.send(feeder7.snapshot(FEEDER, T0 + 2 * S))
    done = h.ticket(ticket["id"])
    assert (done["state"], done["resolved_by"]) == ("resolved", "auto")
    # the same drift again within the reopen window reopens that ticket
    h.send(feeder7.snapshot({**FEEDER, "t_delay": 0.5}, T0 + 3 * S))
    again = h.ticket(ticket["id"])
    assert (again["state"], again["reopen_count"]) == ("open", 1)


def test_approving_an_older_snapshot_while_the_device_differs_keeps_the_drift(make_harness):
    h = make_harness({"lifecycle": {"adopt_first_settings": False}})
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    old = feeder7.snapshot(FEEDER)
    h.send(old, feeder7.snapshot({**FEEDER, "i_pickup": 2.0}, T0 + S))
    assert drift_tickets(h, "settings_drift") == []  # no baseline, no drift
    approvals(h).approve_settings("north", "feeder7", "bob", "as commissioned", old.hash)
    (ticket,) = drift_tickets(h, "settings_drift")
    assert (ticket["state"], ticket["severity"]) == ("open", "critical")
    with pytest.raises(ApprovalError):
        approvals(h).approve_settings("north", "feeder7", "bob", "typo", "no-such-hash")
    with pytest.raises(ApprovalError):
        approvals(h).approve_settings("north", "nobody", "bob", "no snapshots")


def test_an_upgrade_to_an_approved_version_opens_nothing(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(firmware(gw, "feeder12", "2.4.1"))  # the model's first version: adopted
    approvals(h).approve_firmware("FP-300", "2.5.0", "alice", "release 2.5 qualified")
    h.send(firmware(gw, "feeder12", "2.5.0", T0 + 60 * S))
    assert drift_tickets(h, "firmware_drift") == []
    with h.engine.connect() as conn:
        (row,) = inventory.fleet_report(conn)
        history = inventory.firmware_history(conn, "north", "feeder12")
    assert (row["firmware_version"], row["firmware_status"]) == ("2.5.0", "approved")
    assert history is not None
    assert [(p["firmware_version"], p["current"]) for p in history["history"]] == [
        ("2.4.1", False),
        ("2.5.0", True),
    ]
    assert history["history"][0]["first_seen"] == T0.isoformat()
    assert history["history"][0]["last_seen"] == (T0 + 60 * S).isoformat()


def test_an_unapproved_downgrade_opens_a_ticket_until_approved(make_harness):
    h = make_harness()
    gw = Gateway()
    h.send(firmware(gw, "feeder7", "2.4.1"))
    h.send(firmware(gw, "feeder12", "2.4.1"))
    h.send(firmware(gw, "feeder12", "2.3.0", T0 + 60 * S))
    (ticket,) = drift_tickets(h, "firmware_drift")
    assert (ticket["state"], ticket["devices"], ticket["priority"]) == ("open", ["feeder12"], "P3")
    assert "2.3.0 is not approved for FP-300" in ticket["title"] + str(
        h.ticket(ticket["id"])["timeline"]
    )
    with h.engine.connect() as conn:
        report = {r["device_id"]: r for r in inventory.fleet_report(conn, deviating_only=True)}
    assert set(report) == {"feeder12"}
    assert report["feeder12"]["drift_tickets"] == [ticket["id"]]

    result = approvals(h).approve_firmware("FP-300", "2.3.0", "carol", "field rollback agreed")
    assert result.new
    assert result.tickets_changed == [ticket["id"]]
    done = h.ticket(ticket["id"])
    assert (done["state"], done["resolved_by"]) == ("resolved", "carol")
    again = approvals(h).approve_firmware("FP-300", "2.3.0", "carol", "twice")
    assert not again.new
    assert again.tickets_changed == []


def test_without_adoption_nothing_drifts_and_the_inventory_says_so(make_harness):
    h = make_harness({"lifecycle": {"adopt_first_firmware": False, "adopt_first_settings": False}})
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    h.send(firmware(gw, "feeder7", "2.4.1"))
    h.send(feeder7.snapshot(FEEDER))
    h.send(firmware(gw, "feeder7", "9.9.9", T0 + S))
    assert h.tickets() == []
    with h.engine.connect() as conn:
        (row,) = inventory.fleet_report(conn)
    assert (row["firmware_status"], row["settings_status"]) == ("no_baseline", "no_baseline")


def test_duplicates_and_drift_in_maintenance(make_harness):
    h = make_harness()
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    h.send(feeder7.snapshot(FEEDER))
    change = feeder7.snapshot({**FEEDER, "i_pickup": 1.5}, T0 + S)
    h.send(change)
    h.send(change)  # redelivered: stored once, no second timeline entry
    (ticket,) = drift_tickets(h, "settings_drift")
    doc = h.ticket(ticket["id"])
    assert ticket["occurrences"] == 1
    assert [e["entry"] for e in doc["timeline"]] == ["opened", "event"]
    assert h.scalar("SELECT count(*) FROM settings_snapshots") == 2


def test_settings_history_carries_the_as_found_diffs_and_the_baselines(make_harness):
    h = make_harness()
    gw = Gateway()
    feeder7 = SettingsSource(gw, "feeder7")
    h.send(feeder7.snapshot(FEEDER))
    h.send(feeder7.snapshot({**FEEDER, "i_pickup": 1.5, "bay_name": "F7"}, T0 + S))
    with h.engine.connect() as conn:
        doc = inventory.settings_history(conn, "north", "feeder7")
        assert inventory.settings_history(conn, "north", "nobody") is None
    assert doc is not None
    assert doc["status"] == "drift"
    assert [s["reason"] for s in doc["snapshots"]] == ["connect", "device_signalled"]
    assert doc["snapshots"][0]["diff"] == []
    assert [(d["name"], d["before"], d["after"], d["critical"]) for d in
            doc["snapshots"][1]["diff"]] == [("bay_name", "Feeder 7", "F7", False),
                                             ("i_pickup", 1.2, 1.5, True)]  # fmt: skip
    assert [d["name"] for d in doc["differs_from_baseline"]] == ["bay_name", "i_pickup"]
    assert [a["approved_by"] for a in doc["approvals"]] == ["auto"]
