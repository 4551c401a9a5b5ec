"""The ticket page's disturbance-records panel and its COMTRADE download, on SQLite and
PostgreSQL: a record and a fault report ingested as an agent sends them."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import pytest

from center.disturbance.queries import files
from center.web.disturbance_panel import ChartCache
from gateway import comtrade
from tests.center.disturbance_support import fault_report, transfer
from tests.center.records import T0, Gateway, seed_records
from tests.center.test_console import Console, trip_id


@pytest.fixture
def console(make_harness: Any) -> Console:
    h = make_harness()
    gw = Gateway()
    h.send(gw.birth(T0))
    for r in seed_records(gw):
        h.send(r)
    manifest, chunks = transfer(gw)
    h.send(manifest)
    for c in chunks:
        h.send(c)
    h.send(fault_report(gw, "line2"))
    return Console(h)


def _record_id(console: Console) -> int:
    return int(console.h.scalar("SELECT id FROM disturbance_records"))


def test_the_ticket_shows_the_record_its_analysis_and_waveforms_and_the_fault_report(console):
    c, _ = console.login("vera")
    page = c.get(f"/tickets/{trip_id(console)}")
    assert page.status_code == 200
    html = page.text
    assert "No disturbance records" not in html
    panel = html[html.index('id="panel-disturbance"') :]
    assert '<span class="fault-type" title="fault type">AG</span>' in panel
    rid = _record_id(console)
    assert f'href="/disturbances/{rid}/comtrade.zip"' in panel
    assert re.search(r'<tr class="faulted" data-phase="A">.*?3,0\d\d A.*?70 %', panel, re.S)
    assert re.search(r'<tr class="" data-phase="B">', panel)  # a healthy phase, not marked
    assert panel.count('<polyline class="trace') == 6
    assert 'data-channel="trip"' in panel
    assert 'data-channel="breaker_closed"' in panel
    assert re.search(r"<td>.*line2.*</td>", panel)
    assert "12.4 km" in panel
    assert "58 ms" in panel
    # The page's CSP allows no inline style or script, the panel included.
    assert re.findall(r"\sstyle\s*=", html) == []
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


def test_the_comtrade_zip_is_served_to_a_session_and_to_nobody_else(console):
    rid = _record_id(console)
    anonymous = console.client().get(f"/disturbances/{rid}/comtrade.zip")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    c, _ = console.login("vera")  # read-only is enough to read a record
    r = c.get(f"/disturbances/{rid}/comtrade.zip")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert 'filename="north_line1_17.zip"' in r.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        cfg, dat = z.read("north_line1_17.cfg"), z.read("north_line1_17.dat")
    with console.h.engine.connect() as conn:
        assert files(conn, rid) == ("north_line1_17", cfg, dat)
    assert [a.name for a in comtrade.read(cfg, dat).analog] == ["IA", "IB", "IC", "UA", "UB", "UC"]
    missing = c.get(f"/disturbances/{rid + 1}/comtrade.zip")
    assert missing.status_code == 404
    assert "No such record" in missing.text
    assert "Traceback" not in missing.text


def test_the_chart_cache_keeps_the_newest_charts_only():
    cache = ChartCache(size=2)
    for n in (1, 2):
        cache.put((n,), (None, f"chart {n}"))
    assert cache.get((1,)) == (None, "chart 1")  # now the newest
    cache.put((3,), (None, "chart 3"))
    assert cache.get((2,)) is None
    assert cache.get((1,)) == (None, "chart 1")
    assert cache.get((3,)) == (None, "chart 3")
