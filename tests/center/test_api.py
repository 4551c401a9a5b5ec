"""The REST API with bearer-token auth, against both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from center.api import ApiContext, create_app
from tests.center.records import T0, Gateway, seed_records

TOKEN = "operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(make_harness):
    h = make_harness({"api": {"tokens": [{"name": "alice", "token": TOKEN}]}})
    gw = Gateway()
    for r in seed_records(gw):
        h.send(r)
    h.send(gw.event("line2", "self_check_fail", True, T0, signal="self_check"))
    ctx = ApiContext(h.config, h.engine, h.service, h.counters)
    with TestClient(create_app(ctx)) as client:
        yield client


def test_auth_is_required(api):
    assert api.get("/api/v1/tickets").status_code == 401
    assert api.get("/api/v1/tickets", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.get("/healthz").status_code == 200
    assert api.get("/openapi.json").status_code == 200


def test_list_filter_get_and_act(api):
    all_tickets = api.get("/api/v1/tickets", headers=AUTH).json()
    assert len(all_tickets) == 2
    (trip,) = api.get(
        "/api/v1/tickets", params={"fault_class": "protection_operation"}, headers=AUTH
    ).json()
    assert (
        api.get("/api/v1/tickets", params={"device_id": "busbar"}, headers=AUTH).json()[0]["id"]
        == trip["id"]
    )
    doc = api.get(f"/api/v1/tickets/{trip['id']}", headers=AUTH).json()
    assert len([e for e in doc["timeline"] if e["record"]]) == 14
    assert api.get("/api/v1/tickets/9999", headers=AUTH).status_code == 404

    acked = api.post(f"/api/v1/tickets/{trip['id']}/acknowledge", json={}, headers=AUTH).json()
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "alice")
    bad = api.post(
        f"/api/v1/tickets/{trip['id']}/resolve", json={"root_cause": "gremlins"}, headers=AUTH
    )
    assert bad.status_code == 409
    assert "root_cause" in bad.json()["detail"]
    done = api.post(
        f"/api/v1/tickets/{trip['id']}/close",
        json={"root_cause": "line_fault", "note": "tree"},
        headers=AUTH,
    ).json()
    assert (done["state"], done["root_cause"], done["closed_by"]) == (
        "closed",
        "line_fault",
        "alice",
    )
    assert (
        api.get("/api/v1/tickets", params={"state": ["open", "acknowledged"]}, headers=AUTH).json()[
            0
        ]["fault_class"]
        == "self_check"
    )


def test_devices_events_stats_and_maintenance(api):
    devices = {d["device_id"]: d for d in api.get("/api/v1/devices", headers=AUTH).json()}
    assert set(devices) == {"line1", "line2", "busbar"}
    assert devices["line2"]["active_tickets"] == 2
    events = api.get(
        "/api/v1/events", params={"device_id": "line1", "signal": "trip"}, headers=AUTH
    ).json()
    assert [e["value"] for e in events] == [False, True]
    stats = api.get("/api/v1/stats", headers=AUTH).json()
    assert stats["counters"]["records_stored"] == 16
    assert stats["database"]["tickets_by_state"] == {"open": 2}
    window = {
        "site": "north",
        "starts_at": "2025-03-01T10:00:00+02:00",
        "ends_at": "2025-03-01T12:00:00Z",
        "reason": "relay test",
    }
    created = api.post("/api/v1/maintenance", json=window, headers=AUTH)
    assert created.status_code == 201
    listed = api.get("/api/v1/maintenance", headers=AUTH).json()
    assert listed[0]["created_by"] == "alice"
    assert listed[0]["starts_at"].startswith("2025-03-01T08:00:00")
    wid = created.json()["id"]
    assert api.delete(f"/api/v1/maintenance/{wid}", headers=AUTH).status_code == 204
    assert api.get("/api/v1/maintenance", headers=AUTH).json() == []
