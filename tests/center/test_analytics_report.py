"""The continuous-improvement report: on the synthetic fleet with a planted firmware
version that fails self-checks four times as often, the report names it (and only it)
with the test in plain words; every format renders; the CLI writes the files; the API
serves the same figures. SQLite and PostgreSQL for the data, SQLite for the CLI."""

from __future__ import annotations

import csv
import io
import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from center.analytics import plots
from center.analytics.render_csv import HEADER, render_csv
from center.analytics.render_html import render_html
from center.analytics.render_pdf import latin1, render_pdf
from center.analytics.report import improvement_report, report_plots
from center.api import ApiContext, create_app
from center.clock import ManualClock
from center.config import parse_config
from center.ingest import Counters
from center.store.db import make_engine, migrate
from center.ticket_service import TicketService
from center.tickets.engine import TicketEngine
from tests.support.fleet_history import NOW, fleet_config, seed_fleet, seed_tickets

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "analytics-token-0123456789"


def _fleet(url: str) -> tuple[Any, dict[str, Any]]:
    data = fleet_config(sites=20)
    data["api"] = {"tokens": [{"name": "quality", "token": TOKEN}]}
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        seed_fleet(conn, data, sites=20)
        seed_tickets(conn, data, 3000)
    return engine, data


@pytest.fixture
def fleet(db_url: str) -> Any:
    engine, data = _fleet(db_url)
    yield engine, parse_config(data)
    engine.dispose()


def test_report_names_the_planted_firmware(fleet):
    engine, config = fleet
    with engine.connect() as conn:
        report = improvement_report(conn, config, START, END, NOW)
    worse = report["firmware"]["worse"]
    assert [(w["model"], w["firmware_version"], w["fault_class"]) for w in worse] == [
        ("FP-300", "FP-2.0", "self_check")
    ]
    w = worse[0]
    assert w["rate"] > 2.5 * w["rest_rate"]
    assert w["sentence"].startswith(
        f"FP-300 firmware FP-2.0, self-check failures: {w['failures']} in "
    )
    assert "for the rest of the FP-300 fleet" in w["sentence"]
    assert "so it fails more than its fleet." in w["sentence"]
    assert "the threshold is p < 0.01" in w["sentence"]
    others = [f for f in report["firmware"]["findings"] if not f["worse"]]
    assert others
    assert all("may be chance" in f["sentence"] for f in others)
    assert report["summary"]["tickets"] == report["statistics"]["tickets"] > 2000


def test_every_format_renders(fleet):
    engine, config = fleet
    with engine.connect() as conn:
        report = improvement_report(conn, config, START, END, NOW)
    for name, svg in report_plots(report).items():
        root = ET.fromstring(svg)  # well-formed
        assert root.tag.endswith("svg"), name
        assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    html = render_html(report)
    assert html.count("<svg") == 4
    assert "<script" not in html
    assert "https://" not in html
    assert "FP-300 firmware FP-2.0, self-check failures" in html
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert tuple(rows[0]) == HEADER
    firmware = [r for r in rows if r[0] == "firmware" and r[-2] == "worse" and r[-1] == "1"]
    assert [(r[5], r[6], r[7]) for r in firmware] == [("FP-300", "FP-2.0", "self_check")]
    months = {r[1] for r in rows if r[0] == "monthly"}
    assert len(months) == 35  # Jan 2024 to Nov 2026
    pdf = render_pdf(report)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) > 20_000


def test_plots_scale_and_escape():
    svg = plots.line_chart("a < b", ["2026-01", "2026-02"], {"x&y": [0, 10]}, "n")
    ET.fromstring(svg)
    assert "a &lt; b" in svg
    assert "x&amp;y" in svg
    assert plots.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert plots.nice_ticks(0.3) == [0, 0.1, 0.2, 0.3]
    assert latin1("risk ≥ 1 × 2 …") == "risk >= 1 x 2 ..."


@pytest.mark.parametrize("months", [12, 24, 36])
def test_month_labels_never_overlap(months: int) -> None:
    """A year's report has twelve months: each label drawn (10 px Helvetica, about 6 px a
    character) keeps clear of the next, and the first month is named."""
    labels = [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(months)]
    svg = ET.fromstring(plots.line_chart("t", labels, {"x": [1.0] * months}))
    drawn = [
        (float(t.attrib["x"]), t.text or "")
        for t in svg.iter("{http://www.w3.org/2000/svg}text")
        if t.text in labels
    ]
    assert drawn[0][1] == labels[0]
    for (x, text), (next_x, _) in itertools.pairwise(drawn):
        assert next_x - x >= 6 * len(text) + 4, (text, next_x - x)


def test_cli_writes_the_report(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'center.sqlite'}"
    engine, _ = _fleet(url)
    engine.dispose()
    cfg = tmp_path / "center.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n')
    for fmt in ("html", "pdf", "csv"):
        out = tmp_path / f"report.{fmt}"
        done = subprocess.run(
            [sys.executable, "-m", "center.cli", "report", "improvement", "--config", str(cfg),
             "--from", "2024-01-01", "--to", "2026-12-01", "--format", fmt, "--output", str(out)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "1 firmware version(s) failing more than their fleet" in done.stderr
        assert out.stat().st_size > 1000
    bad = subprocess.run(
        [sys.executable, "-m", "center.cli", "report", "improvement", "--config", str(cfg),
         "--from", "2026-12-01", "--to", "2026-01-01"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--to must be after --from" in bad.stderr


def test_api_serves_the_same_figures(fleet):
    engine, config = fleet
    clock = ManualClock(NOW)
    tickets = TicketService(engine, TicketEngine(config, clock), ["hook"])
    ctx = ApiContext(config, engine, tickets, Counters())
    auth = {"Authorization": f"Bearer {TOKEN}"}
    period = {"from": START.isoformat(), "to": END.isoformat()}
    with TestClient(create_app(ctx)) as api:
        assert api.get("/api/v1/analytics/report", params=period).status_code == 401
        doc = api.get("/api/v1/analytics/report", params=period, headers=auth).json()
        with engine.connect() as conn:
            direct = improvement_report(conn, config, START, END, NOW)
        assert doc["statistics"] == direct["statistics"]
        assert doc["firmware"]["worse"] == direct["firmware"]["worse"]
        st = api.get("/api/v1/analytics/stats",
                     params={**period, "model": "FP-300", "fault_class": "self_check"},
                     headers=auth).json()  # fmt: skip
        assert {r["fault_class"] for r in st["by_class"] if r["tickets"]} == {"self_check"}
        svg = api.get("/api/v1/analytics/plots/monthly_tickets.svg", params=period, headers=auth)
        assert svg.headers["content-type"] == "image/svg+xml"
        assert svg.text.startswith("<svg")
        pdf = api.get("/api/v1/analytics/report.pdf", params=period, headers=auth)
        assert pdf.content.startswith(b"%PDF-")
        assert api.get("/api/v1/analytics/report.doc", headers=auth).status_code == 404
        bad = api.get("/api/v1/analytics/stats", params={"from": END.isoformat(),
                      "to": START.isoformat()}, headers=auth)  # fmt: skip
        assert bad.status_code == 422
