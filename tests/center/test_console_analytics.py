"""The console's analytics pages on SQLite and PostgreSQL: the Statistics page and its
filters from the URL, the printable report behind it (its own narrow CSP), the fleet's
ageing risk, a device's risk and clock quality. The fleet comes in through ingest (birth,
firmware, the seed's incident, a relay with a late clock) and the ageing job scores it."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from center.analytics.ageing_job import AgeingJob
from tests.center.baseline_records import firmware
from tests.center.records import T0, Gateway, clock_readings, seed_records
from tests.center.test_console import Console

LATE_MS = (610, 640, 660, 690, 720)


@pytest.fixture
def console(make_harness: Any) -> Console:
    h = make_harness(
        {
            "devices": [{"site": "north", "device_id": "busbar", "commissioned": "2010-01-01"}],
            "analytics": {
                "ageing": {"design_life_years": {"BB-10": 15.0}},
                "clock": {"min_spacing_s": 0, "min_samples": 3},
            },
        }
    )
    gw = Gateway()
    h.send(gw.birth(T0))
    for device, model in (("line1", "LP-200"), ("line2", "LP-200"), ("busbar", "BB-10")):
        h.send(firmware(gw, device, "2.4.0", T0, model=model))
    for r in [*seed_records(gw), *clock_readings(gw, LATE_MS)]:
        h.send(r)
    AgeingJob(h.engine, h.tickets_engine, []).run(h.clock.now())
    return Console(h)


def _no_inline(html: str) -> None:
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\sstyle\s*=", html) == []
    assert "<style" not in html


def test_statistics_read_their_filters_from_the_url(console):
    c, _ = console.login("vera")
    everything = c.get("/statistics")
    assert everything.status_code == 200
    _no_inline(everything.text)
    tiles = re.findall(r'<span class="big">([^<]+)</span>([^<]+)<', everything.text)
    assert tiles[0] == ("3", "tickets")  # the P1, line 2's clock, the busbar's ageing
    assert '<a href="/statistics/report.html?from=' in everything.text
    url = "/statistics?from=2025-01-01&to=2025-12-31&fault_class=protection_operation&site=north"
    page = c.get(url).text
    assert 'name="fault_class" value="protection_operation"' in page
    assert 'name="from" value="2025-01-01"' in page
    assert 'name="site" value="north"' in page
    assert re.findall(r'<span class="big">([^<]+)</span>tickets<', page) == ["1"]
    assert page.count("<svg") >= 3  # trend, rate, root causes
    outside = c.get("/statistics?from=2024-01-01&to=2024-12-31").text
    assert re.findall(r'<span class="big">([^<]+)</span>tickets<', outside) == ["0"]


@pytest.mark.parametrize(
    ("query", "says"),
    [("from=2025-13-01", "is not a date"), ("from=2025-06-01&to=2025-05-01", "is before")],
)
def test_a_wrong_period_is_said_on_the_page(console, query, says):
    c, _ = console.login("vera")
    r = c.get(f"/statistics?{query}")
    assert r.status_code == 422
    assert says in r.text
    assert "Traceback" not in r.text


def test_the_printable_report_allows_its_own_stylesheet_and_nothing_else(console):
    c, _ = console.login("vera")
    assert console.client().get("/statistics/report.html").status_code == 303  # a session
    r = c.get("/statistics/report.html?from=2025-01-01&to=2025-12-31")
    assert r.status_code == 200
    assert "Continuous improvement report" in r.text
    csp = r.headers["content-security-policy"]
    [css] = re.findall(r"<style>(.*?)</style>", r.text, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert "<script" not in r.text
    csv = c.get("/statistics/report.csv?from=2025-01-01&to=2025-12-31")
    assert csv.headers["content-type"].startswith("text/csv")
    assert (
        'attachment; filename="improvement-2025-01-01-2025-12-31.csv"'
        in (csv.headers["content-disposition"])
    )
    pdf = c.get("/statistics/report.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    other = c.get("/statistics/report.xlsx")
    assert other.status_code == 404
    assert "html, pdf or csv" in other.text


def test_the_fleet_shows_ageing_risk_and_a_device_its_risk_and_clock(console):
    c, _ = console.login("vera")
    fleet = c.get("/fleet").text
    _no_inline(fleet)
    [busbar] = re.findall(r'<tr class="at-risk">.*?</tr>', fleet, re.S)
    assert "busbar" in busbar
    assert 'risk-value over">1.0' in busbar
    line2 = c.get("/devices/north/line2").text
    _no_inline(line2)
    assert '<span class="verdict bad" id="clock-verdict">offset</span>' in line2
    assert "+660 ms" in line2  # the median of the late clock's offsets
    chart = line2[line2.index('id="clock-chart"') :]
    assert chart.count("<circle") == len(LATE_MS)
    assert "below the threshold" in line2
    busbar_page = c.get("/devices/north/busbar").text
    assert "at or above the threshold" in busbar_page
    assert "No clock readings from this relay yet" in busbar_page
