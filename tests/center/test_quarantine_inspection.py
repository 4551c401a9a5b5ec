"""An operator inspects the quarantine through `relay-center quarantine list | show` and
the API, on SQLite and PostgreSQL, and gets each entry back as it was received."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from center.api import ApiContext, create_app
from center.cli import main
from center.ingest import Message
from gateway import wire
from tests.center.records import T0, Gateway

TOKEN = "operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def poisoned(make_harness, tmp_path):
    h = make_harness({"api": {"tokens": [{"name": "alice", "token": TOKEN}]}})
    gw = Gateway()
    good = gw.event("line1", "trip_phase_a", True, T0).model_dump_json()
    bad = good.replace('"seq":1', '"seq":2').replace('"address":"1011"', '"address":"1\\u00001"')
    payload = f'{{"v":1,"records":[{good},{bad}]}}'.encode()
    h.ingestor.ingest([Message(wire.topic("north", "gw1", "batch"), payload)])
    config = tmp_path / "center.toml"
    config.write_text(f'[database]\nurl = "{h.engine.url.render_as_string(False)}"\n')
    return h, config, bad


def test_the_cli_lists_and_shows_an_entry_as_received(make_harness, tmp_path, capsys):
    _, config, bad = poisoned(make_harness, tmp_path)
    assert main(["quarantine", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "unstorable" in listing
    assert "gw1/1/2" in listing
    assert "NUL" in listing
    entry_id = listing.split()[0]
    assert main(["quarantine", "show", entry_id, "--config", str(config), "--raw"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(bad)
    assert main(["quarantine", "show", "999", "--config", str(config)]) == 1
    assert main(["quarantine", "list", "--config", str(config), "--reason", "conflict"]) == 0
    assert capsys.readouterr().out == "quarantine is empty\n"


def test_the_api_lists_and_shows_an_entry(make_harness, tmp_path):
    h, _, bad = poisoned(make_harness, tmp_path)
    ctx = ApiContext(h.config, h.engine, h.service, h.counters, lambda: {"mqtt": {}})
    with TestClient(create_app(ctx)) as client:
        (item,) = client.get("/api/v1/quarantine", headers=AUTH).json()
        assert (item["reason"], item["seq"], item["record_index"]) == ("unstorable", 2, 1)
        assert "content" not in item
        doc = client.get(f"/api/v1/quarantine/{item['id']}", headers=AUTH).json()
        assert json.loads(doc["content"]) == json.loads(bad)
        assert client.get("/api/v1/quarantine/999", headers=AUTH).status_code == 404
        stats = client.get("/api/v1/stats", headers=AUTH).json()
        assert stats["database"]["quarantine_by_reason"] == {"unstorable": 1}
        page = client.get("/metrics").text
    assert 'relay_center_quarantined_total{reason="unstorable"} 1' in page
