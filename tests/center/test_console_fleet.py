"""The console's fleet and device pages over HTTP (no browser), on SQLite and PostgreSQL:
drift marked against the approved baseline, the firmware chart, baseline approval with a
reason for engineers only (recorded who and when), and a device's identity, firmware
history, settings history with its diff, recent events and tickets."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.center.baseline_records import FEEDER, SettingsSource, firmware
from tests.center.records import T0, Gateway, seed_records
from tests.center.test_console import Console

LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def fleet(make_harness: Any) -> Console:
    """line1 and line2 on LP-200 2.4.0 (the first version of a model is its baseline), then
    line2 moves to 2.5.0-rc1 and the busbar's pickup changes: both drift."""
    h = make_harness()
    gw = Gateway()
    busbar = SettingsSource(gw, "busbar")
    h.send(gw.birth(T0))
    for r in seed_records(gw):
        h.send(r)
    for record in (
        firmware(gw, "line1", "2.4.0", T0, model="LP-200"),
        firmware(gw, "line2", "2.4.0", T0, model="LP-200"),
        busbar.snapshot(FEEDER, T0),
        firmware(gw, "line2", "2.5.0-rc1", LATER, model="LP-200"),
        busbar.snapshot({**FEEDER, "i_pickup": 1.5}, LATER),
    ):
        h.send(record)  # one message per record: its topic names its device and kind
    return Console(h)


def row(html: str, device: str) -> str:
    found = re.search(rf'<tr class="([^"]*)">\s*<td><a href="/devices/north/{device}">', html)
    assert found, f"no fleet row for {device}"
    return found.group(1)


def test_the_fleet_marks_drift_and_charts_firmware_per_model(fleet: Console) -> None:
    c, _ = fleet.login("vera")
    page = c.get("/fleet")
    assert page.status_code == 200
    html = page.text
    assert "off their approved baseline" in html
    assert row(html, "line2") == "drift"  # unapproved firmware
    assert row(html, "busbar") == "drift"  # settings changed
    assert row(html, "line1") == ""
    assert "approved: 2.4.0" in html
    assert "<svg" in html
    assert "2.5.0-rc1" in html
    assert 'action="/fleet/approve-firmware"' not in html  # a viewer approves nothing


def test_only_engineers_approve_a_baseline_and_only_with_a_reason(fleet: Console) -> None:
    olga, olga_csrf = fleet.login("olga")
    form = {"model": "LP-200", "firmware_version": "2.5.0-rc1", "reason": "lab test 17"}
    refused = olga.post("/fleet/approve-firmware", data={**form, "csrf": olga_csrf})
    assert refused.status_code == 403

    ed, csrf = fleet.login("ed")
    assert 'action="/fleet/approve-firmware"' in ed.get("/fleet").text
    blank = ed.post("/fleet/approve-firmware", data={**form, "reason": " ", "csrf": csrf})
    assert blank.status_code == 422
    assert "An approval needs a model, a version and a reason." in blank.text
    assert row(ed.get("/fleet").text, "line2") == "drift"

    done = ed.post("/fleet/approve-firmware", data={**form, "csrf": csrf})
    assert (done.status_code, done.headers["location"]) == (303, "/fleet?done=firmware")
    after = ed.get(done.headers["location"]).text
    assert "Firmware version approved." in after
    assert row(after, "line2") == ""

    settings = ed.post(
        "/devices/north/busbar/approve-settings", data={"reason": "new CT", "csrf": csrf}
    )
    assert settings.status_code == 303
    assert row(ed.get("/fleet").text, "busbar") == ""
    with fleet.h.engine.connect() as conn:
        q = (
            "SELECT actor, role, via, action, target FROM console_actions"
            " WHERE action LIKE 'approve%' ORDER BY id"
        )
        audit = [tuple(r) for r in conn.execute(sa.text(q))]
    assert audit == [
        ("ed", "engineer", "console", "approve_firmware", "LP-200 2.5.0-rc1"),
        ("ed", "engineer", "console", "approve_settings", "north/busbar"),
    ]


def test_a_device_page_shows_its_history_diff_events_and_tickets(fleet: Console) -> None:
    c, _ = fleet.login("vera")
    busbar = c.get("/devices/north/busbar").text
    settings = busbar.split("<h2>Settings history</h2>", 1)[1]
    assert re.search(r"<td>i_pickup</td><td>1\.2</td><td>1\.5</td><td>protection</td>", settings)
    events = busbar.split("<h2>Recent events</h2>", 1)[1].split("</section>", 1)[0]
    assert "bf_init_phase_a" in events
    tickets = busbar.split("<h2>Tickets</h2>", 1)[1].split("</section>", 1)[0]
    assert "Protection operation" in tickets
    assert "Settings drift" in tickets

    line2 = c.get("/devices/north/line2").text
    history = line2.split("<h2>Firmware history</h2>", 1)[1].split("</section>", 1)[0]
    assert "2.4.0" in history
    assert "2.5.0-rc1" in history
    assert "LP-200" in line2
