"""The baselines' REST endpoints (token auth, who approved) and the `relay-center
inventory` / `baseline` commands, against both backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from center import cli
from center.api import ApiContext, create_app
from tests.center.baseline_records import FEEDER, SettingsSource, firmware
from tests.center.records import T0, Gateway

TOKEN = "engineer-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
S = timedelta(seconds=1)


@pytest.fixture
def fleet(make_harness):
    """feeder7 at its baseline on 2.4.1; feeder12 downgraded to 2.3.0 with a changed pickup."""
    h = make_harness({"api": {"tokens": [{"name": "alice", "token": TOKEN}]}})
    gw = Gateway()
    h.send(firmware(gw, "feeder7", "2.4.1"))
    h.send(firmware(gw, "feeder12", "2.4.1"))
    h.send(firmware(gw, "feeder12", "2.3.0", T0 + S))
    feeder12 = SettingsSource(gw, "feeder12")
    h.send(feeder12.snapshot(FEEDER))
    h.send(feeder12.snapshot({**FEEDER, "i_pickup": 1.5}, T0 + 2 * S))
    return h


@pytest.fixture
def api(fleet):
    ctx = ApiContext(fleet.config, fleet.engine, fleet.service, fleet.counters)
    with TestClient(create_app(ctx)) as client:
        yield client


def test_endpoints_need_a_token(api):
    for path in ("/api/v1/inventory/firmware", "/api/v1/baselines/firmware",
                 "/api/v1/devices/north/feeder7/settings"):  # fmt: skip
        assert api.get(path).status_code == 401
    body = {"model": "FP-300", "firmware_version": "2.3.0", "reason": "x"}
    assert api.post("/api/v1/baselines/firmware", json=body).status_code == 401


def test_fleet_report_and_histories(api):
    report = api.get("/api/v1/inventory/firmware", headers=AUTH).json()
    devices = {d["device_id"]: d for d in report["devices"]}
    assert (devices["feeder7"]["firmware_status"], devices["feeder7"]["deviates"]) == (
        "approved",
        False,
    )
    assert devices["feeder12"]["firmware_status"] == "unapproved"
    assert (devices["feeder12"]["settings_status"], devices["feeder12"]["settings_critical"]) == (
        "drift",
        True,
    )
    assert {(v["firmware_version"], v["status"]) for v in report["versions"]} == {
        ("2.4.1", "approved"),
        ("2.3.0", "unapproved"),
    }
    only = api.get("/api/v1/inventory/firmware", params={"deviating": True}, headers=AUTH)
    assert [d["device_id"] for d in only.json()["devices"]] == ["feeder12"]

    fw = api.get("/api/v1/devices/north/feeder12/firmware", headers=AUTH).json()
    assert [(p["firmware_version"], p["approved"]) for p in fw["history"]] == [
        ("2.4.1", True),
        ("2.3.0", False),
    ]
    st = api.get("/api/v1/devices/north/feeder12/settings", headers=AUTH).json()
    assert [d["name"] for d in st["snapshots"][-1]["diff"]] == ["i_pickup"]
    assert api.get("/api/v1/devices/north/nobody/firmware", headers=AUTH).status_code == 404


def test_approvals_record_the_token_name_and_resolve_tickets(api):
    open_before = api.get("/api/v1/tickets", params={"state": "open"}, headers=AUTH).json()
    assert {t["fault_class"] for t in open_before} == {"firmware_drift", "settings_drift"}

    body = {"model": "FP-300", "firmware_version": "2.3.0", "reason": "rollback agreed"}
    fw = api.post("/api/v1/baselines/firmware", json=body, headers=AUTH)
    assert fw.status_code == 201
    assert (fw.json()["approved_by"], fw.json()["new"]) == ("alice", True)
    st = api.post(
        "/api/v1/baselines/settings",
        json={"site": "north", "device_id": "feeder12", "reason": "study 42"},
        headers=AUTH,
    )
    assert st.status_code == 201
    assert st.json()["approved_by"] == "alice"
    assert api.get("/api/v1/tickets", params={"state": "open"}, headers=AUTH).json() == []
    listed = api.get("/api/v1/baselines/firmware", headers=AUTH).json()
    assert {(a["firmware_version"], a["approved_by"]) for a in listed} == {
        ("2.4.1", "auto"),
        ("2.3.0", "alice"),
    }
    missing = api.post(
        "/api/v1/baselines/settings",
        json={"site": "north", "device_id": "nobody", "reason": "x"},
        headers=AUTH,
    )
    assert missing.status_code == 404


def _center_toml(tmp_path, url):
    path = tmp_path / "center.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    return str(path)


def test_cli_inventory_and_approve(fleet, db_url, tmp_path, capsys):
    config = _center_toml(tmp_path, db_url)
    assert cli.main(["inventory", "--config", config]) == 0
    table = capsys.readouterr().out
    assert "feeder12" in table
    assert "unapproved" in table
    assert "FP-300 2.3.0: 1 device(s)  [UNAPPROVED]  north/feeder12" in table
    assert "2 device(s), 1 deviating" in table

    assert cli.main(["inventory", "--config", config, "--format", "csv", "--deviating"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["device_id"], r["firmware_version"], r["settings_status"]) for r in rows] == [
        ("feeder12", "2.3.0", "drift")
    ]

    approve = ["baseline", "approve", "firmware", "--config", config, "--model", "FP-300",
               "--version", "2.3.0", "--reason", "rollback agreed", "--by", "dave"]  # fmt: skip
    assert cli.main(approve) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["approved_by"], result["reason"], len(result["tickets_changed"])) == (
        "dave",
        "rollback agreed",
        1,
    )
    assert cli.main(["inventory", "--config", config, "--format", "json"]) == 0
    report = {r["device_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert report["feeder12"]["firmware_status"] == "approved"

    bad = ["baseline", "approve", "settings", "--config", config, "--site", "north",
           "--device", "nobody", "--reason", "x"]  # fmt: skip
    assert cli.main(bad) == 1
    assert "no settings snapshot" in capsys.readouterr().err
    assert cli.main(["baseline", "list", "--config", config]) == 0
    assert "FP-300 2.3.0  by dave" in capsys.readouterr().out
