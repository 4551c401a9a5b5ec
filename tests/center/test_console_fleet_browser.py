"""The analytics pages in Chromium on a fleet with years behind it: the seeded synthetic
history of 500 devices over 3 years (tests/support/fleet_history.py: known rates, a
firmware version planted to fail more, an old substation past its design life), its
tickets, scored by the ageing job. The console is the real app, served by uvicorn in a
thread on SQLite, and looked at as an engineer would: the Statistics page and its report,
the fleet's ageing warning. Screenshots are saved like the other browser test's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright import sync_api as playwright_api

from center.analytics.ageing_job import AgeingJob
from center.api import ApiContext, create_app
from center.auth.users import UserStore
from center.clock import ManualClock
from center.config import parse_config
from center.ingest import Counters
from center.store.db import make_engine, migrate
from center.ticket_service import TicketService
from center.tickets.engine import TicketEngine
from tests.center.test_console_browser import _wait, browser, shots  # noqa: F401 (fixtures)
from tests.support.fleet_history import NOW, fleet_config, seed_fleet, seed_tickets
from tests.support.mosquitto import free_port

PASSWORD = "viewer-pass-12"


@pytest.fixture
def fleet_console(tmp_path: Path) -> Iterator[str]:
    data = fleet_config()
    config = parse_config(data)
    engine = make_engine(f"sqlite:///{tmp_path}/fleet.sqlite")
    migrate(engine)
    with engine.begin() as conn:
        seed_fleet(conn, data)
        seed_tickets(conn, data, 3000)
    clock = ManualClock(NOW)
    tickets = TicketEngine(config, clock)
    AgeingJob(engine, tickets, []).run(NOW)
    UserStore(engine).add("vera", PASSWORD, "viewer", by="test", via="cli", now=NOW)
    app = create_app(ApiContext(config, engine, TicketService(engine, tickets, []), Counters()))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started, "the console serving")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        engine.dispose()


def test_the_fleet_history_reads_at_a_glance(fleet_console, browser, shots):  # noqa: F811
    origin = fleet_console
    expect = playwright_api.expect
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{origin}/login?next=/statistics")
    page.fill("input[name=username]", "vera")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}/statistics")

    # A year of the fleet: hundreds of tickets, monthly trends, root causes, recurring devices.
    tickets = int(page.locator("section.tiles .tile .big").first.inner_text())
    assert tickets > 300
    assert page.locator("#chart-monthly svg polyline").count() >= 3  # one line per class
    assert page.locator("#chart-causes svg rect").count() >= 6  # frame + a bar per cause
    recurring = page.locator("#recurring tbody tr")
    expect(recurring.first).to_be_visible()
    assert recurring.count() == 10  # the top ten
    page.screenshot(path=shots / "statistics-fleet.png", full_page=True)
    page.screenshot(path=shots / "statistics-fleet-top.png")

    # The report: the planted firmware is singled out, in words.
    page.click("#report-html")
    expect(page.locator("p.finding").first).to_contain_text("FP-300 firmware FP-2.0")

    # The fleet's ageing warning: the planted devices, riskiest first (the old LP-900 with
    # two elevated rates, then the FP-300 with one, then the old substation s07).
    page.goto(f"{origin}/fleet")
    expect(page.locator("#ageing")).to_contain_text("13 devices at or above the threshold")
    riskiest = page.locator("#ageing tbody tr td:first-child").all_inner_texts()
    assert riskiest[:2] == ["s20-d05", "s12-d03"]
    assert all(d.startswith("s07-") for d in riskiest[2:])
    assert page.locator("#ageing tbody tr.at-risk").count() == 10
    page.locator("#ageing").screenshot(path=shots / "fleet-ageing-top.png")

    assert [u for u in requests if not u.startswith(origin + "/")] == []
    assert errors == []
    context.close()
