"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright), against
`relay-center serve` as a process on SQLite, fed through a real Mosquitto.

One flow, as a service engineer would go through it: log in as operator, find the seed's
P1 ticket with its three devices in the queue, read its sequence-of-events chart (one
lane per device), resolve it with a root cause and see it resolved in the queue; a new
ticket published to the broker appears in the open queue without a reload; a viewer sees
no resolve action and the server refuses a forged POST. During the whole run no request
leaves the center's origin. Every page is saved as a screenshot (RELAY_CONSOLE_SCREENSHOTS
or the test's tmp dir).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

from gateway import comtrade, wire
from tests.center.baseline_records import FEEDER, SettingsSource, firmware
from tests.center.disturbance_support import TRIGGER, fault_report, transfer
from tests.center.mqtt_support import publish_all, start_center, subscribed
from tests.center.records import T0, Gateway, clock_readings, message, seed_records
from tests.support.mosquitto import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
USERS = {
    "olga": ("operator", "operator-pass-1"),
    "vera": ("viewer", "viewer-pass-12"),
    "ada": ("admin", "admin-pass-123"),
}


def _wait(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _publish(mosquitto: Any, messages: list[Any], client_id: str) -> None:
    """Publish from a thread of its own: Playwright's sync API owns this thread's loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, publish_all(mosquitto.host, mosquitto.port, messages, client_id)
        ).result(60)


def _fleet_and_incident() -> list[Any]:
    """What a gateway sends: birth, health, firmware and settings (a second firmware
    version and a settings change, both drift), then the seed's incident with line 1's
    disturbance record (manifest, then its chunks one by one, as the uplink sends them) and
    line 2's own fault report."""
    gw = Gateway()
    later = T0 + timedelta(minutes=5)
    feeder = SettingsSource(gw, "busbar")
    health = wire.Health(
        site=gw.site, gateway_id=gw.gateway_id, session=gw.session, seq=0, gateway_time=later,
        connection=1, outbox_depth=4, outbox_oldest_age_s=1.5,
        links={"line1": True, "line2": True, "busbar": True},
    )  # fmt: skip
    records = [
        gw.birth(T0),
        firmware(gw, "line1", "2.4.0", T0, model="LP-200"),
        firmware(gw, "line2", "2.4.0", T0, model="LP-200"),
        firmware(gw, "busbar", "1.9.3", T0, model="BB-10"),
        feeder.snapshot(FEEDER, T0),
        *seed_records(gw),
    ]
    manifest, chunks = transfer(gw)
    at = TRIGGER + timedelta(milliseconds=3)
    report = fault_report(gw, "line2", at, A=2950.0, B=210.0, C=205.0)
    records += [
        manifest,
        *chunks,
        report,
        firmware(gw, "line2", "2.5.0-rc1", later, model="LP-200"),
        feeder.snapshot({**FEEDER, "i_pickup": 1.5}, later),
        health,
        *clock_readings(gw, CLOCK_OFFSETS_MS),
    ]
    return [message(r) for r in records]


def _add_user(config: Path, name: str, role: str, password: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "center.cli", "user", "add", "--config", str(config), name,
         "--role", role, "--password-stdin", "--by", "test"],
        input=password + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture
def center(mosquitto: Any, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "center.toml"
    config.write_text(
        f'[center]\nstate_dir = "{tmp_path}"\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "center-ui"\n'
        f"[api]\nport = {port}\n"
        f"[console]\nrefresh_s = 2\n"
        '[routing.sites.north]\nregion = "north"\n'
        '[routing.regions.north]\nservice_point = "sp-north"\n'
        '[[devices]]\nsite = "north"\ndevice_id = "busbar"\ncriticality = "high"\n'
        "commissioned = 2011-06-01\n"
        # The test runs the ageing job itself once the fleet has arrived (below).
        '[analytics.ageing]\nenabled = false\ndesign_life_years = { "BB-10" = 15.0 }\n'
        "[analytics.clock]\nmin_spacing_s = 0\nmin_samples = 3\n"
    )
    for name, (role, password) in USERS.items():
        _add_user(config, name, role, password)
    log = tmp_path / "center.log"
    process = start_center(config, log)
    try:
        _wait(lambda: subscribed(port), "center subscribed")
        batch = _fleet_and_incident()
        _publish(mosquitto, batch, "gw1")
        db = tmp_path / "center.sqlite"
        _wait(lambda: _count(db, "SELECT count(*) FROM ticket_members") >= 3, "the P1 ticket")
        _wait(lambda: _count(db, ATTACHED) == 2, "the disturbance record and fault report attached")
        _wait(lambda: _count(db, LINE2_CLOCK) >= len(CLOCK_OFFSETS_MS), "line2's clock readings")
        _run_ageing(config)
        _wait(lambda: _count(db, "SELECT count(*) FROM ageing_scores") >= 3, "ageing scores")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


LINE2_CLOCK = "SELECT sample_count FROM clock_quality WHERE device_id = 'line2'"
CLOCK_OFFSETS_MS = (610, 640, 660, 690, 720, 745, 770, 800)  # line 2's clock: late, drifting


def _run_ageing(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "center.cli", "ageing", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


ATTACHED = (
    "SELECT (SELECT count(*) FROM disturbance_records WHERE status = 'complete' AND ticket_id"
    " IS NOT NULL) + (SELECT count(*) FROM fault_reports WHERE ticket_id IS NOT NULL)"
)


def _count(db: Path, sql: str) -> int:
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=10) as conn:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else -1
    except sqlite3.OperationalError:
        return -1


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("RELAY_CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (scripts/setup installs it)")
        pytest.skip("chromium is not installed: run scripts/setup")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _login(page: Any, origin: str, user: str) -> None:
    page.goto(f"{origin}/queue")
    assert page.url.startswith(f"{origin}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user][1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{origin}/queue")


def test_operator_works_the_seed_incident_in_a_browser(center, browser, shots, mosquitto):
    origin = center
    expect = playwright_api.expect
    requests: list[str] = []
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(f"{origin}/queue")
    page.screenshot(path=shots / "login.png", full_page=True)
    _login(page, origin, "olga")

    # The queue: the P1 ticket with its three devices.
    p1 = page.locator("table.queue tr.ticket", has_text="Protection operation")
    expect(p1).to_have_count(1)
    expect(p1.locator(".prio")).to_have_text("P1")
    expect(p1.locator("td.devices")).to_have_text("busbar, line1, line2")
    page.screenshot(path=shots / "queue.png", full_page=True)

    # The ticket: the sequence-of-events chart, one lane per device.
    p1.locator("td a").first.click()
    expect(page.locator("svg.soe")).to_be_visible()
    lanes = page.locator("svg.soe g.lane")
    expect(lanes).to_have_count(3)
    assert sorted(lanes.evaluate_all("ls => ls.map(l => l.dataset.lane)")) == [
        "busbar",
        "line1",
        "line2",
    ]
    assert page.locator("svg.soe .mark-trip.raised").count() == 2  # line 1 and 2, phase A
    assert page.locator("svg.soe .mark-breaker_failure.raised").count() == 1  # busbar
    assert page.locator("svg.soe .mark-reclose.raised").count() == 1  # line 1
    assert page.locator("svg.soe .mark-start.raised").count() == 2
    ticket_url = page.url
    page.screenshot(path=shots / "ticket.png", full_page=True)
    page.screenshot(path=shots / "ticket-top.png")  # the viewport: docs/console-ticket.png
    _read_the_disturbance_record(page, shots)

    # The other pages, each saved.
    for name, path in (
        ("fleet", "/fleet"),
        ("device", "/devices/north/line1"),
        ("gateways", "/gateways"),
        ("operations", "/operations"),
        ("error", "/tickets/9999"),
    ):
        page.goto(origin + path)
        expect(page.locator("h1")).to_be_visible()
        page.screenshot(path=shots / f"{name}.png", full_page=True)
    expect(page.locator("h1")).to_have_text("No such ticket")

    _read_the_fleet_history(page, origin, shots)

    # Resolve with a root cause; it shows resolved, and leaves the open queue.
    page.goto(ticket_url)
    page.select_option("#resolve-form select[name=root_cause]", "line_fault")
    page.fill("#resolve-form input[name=note]", "tree on line 1, phase A")
    page.click("#resolve-form button[type=submit]")
    expect(page.locator("p.done")).to_have_text("Ticket resolved.")
    expect(page.locator("#ticket-state")).to_have_text("resolved")
    expect(page.locator("#root-cause")).to_have_text("line_fault")
    expect(page.locator("table.timeline")).to_contain_text("resolved by olga: line_fault")
    page.screenshot(path=shots / "ticket-resolved.png", full_page=True)
    page.goto(f"{origin}/queue?state=resolved")
    resolved = page.locator("table.queue tr.ticket", has_text="Protection operation")
    expect(resolved.locator(".state")).to_have_text("resolved")

    # A new ticket published to the broker appears in the open queue without a reload.
    page.goto(f"{origin}/queue")
    rows = page.locator("table.queue tr.ticket")
    expect(rows.filter(has_text="self-check")).to_have_count(0)
    before = rows.count()
    page.evaluate("window.notReloaded = true")
    gw = Gateway(session=2)
    new = gw.event("line2", "self_check_fail", True, T0, signal="self_check")
    _publish(mosquitto, [message(new)], "gw1b")
    expect(rows).to_have_count(before + 1, timeout=30_000)
    fresh = rows.filter(has_text="self-check")
    expect(fresh.locator("td.devices")).to_have_text("line2")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=shots / "queue-live.png", full_page=True)
    new_url = origin + fresh.locator("td a").first.get_attribute("href")

    # A viewer: no actions, and a forged POST is refused (without and with its CSRF token).
    viewer = browser.new_context(viewport={"width": 1360, "height": 900})
    viewer.on("request", lambda r: requests.append(r.url))
    vpage = viewer.new_page()
    _login(vpage, origin, "vera")
    vpage.goto(new_url)
    expect(vpage.locator("#ticket-state")).to_have_text("open")
    expect(vpage.locator("#disturbance-records")).to_contain_text("No disturbance records")
    expect(vpage.locator("#resolve-form")).to_have_count(0)
    expect(vpage.locator("section.actions")).to_have_count(0)
    vpage.screenshot(path=shots / "ticket-viewer.png", full_page=True)
    csrf = vpage.locator("form.who input[name=csrf]").get_attribute("value")
    for form in ({"root_cause": "line_fault"}, {"root_cause": "line_fault", "csrf": csrf}):
        forged = viewer.request.post(f"{new_url}/resolve", form=form, max_redirects=0)
        assert forged.status == 403, forged.text()
    vpage.reload()
    expect(vpage.locator("#ticket-state")).to_have_text("open")

    # An admin's page, for the record.
    admin = browser.new_context(viewport={"width": 1360, "height": 900})
    admin.on("request", lambda r: requests.append(r.url))
    apage = admin.new_page()
    _login(apage, origin, "ada")
    apage.goto(f"{origin}/admin")
    expect(apage.locator("h1")).to_have_text("Admin")
    apage.screenshot(path=shots / "admin.png", full_page=True)
    admin.close()

    assert requests, "no request was logged"
    assert [u for u in requests if not u.startswith(origin + "/")] == []
    # No CSP violation or script error; the one 404 is the unknown ticket's page.
    assert [e for e in errors if "status of 404" not in e] == []
    viewer.close()
    context.close()


def _read_the_disturbance_record(page: Any, shots: Path) -> None:
    """Line 1's record on the P1 ticket: its analysis, its waveforms, its files; line 2's
    fault report beside it."""
    expect = playwright_api.expect
    panel = page.locator("#panel-disturbance")
    record = panel.locator("article.record")
    expect(record).to_have_count(1)
    expect(record.locator(".fault-type")).to_have_text("AG")
    expect(record.locator(".summary-line")).to_contain_text("AG fault")
    facts = record.locator("dl.facts")
    expect(facts).to_contain_text("Cleared80 ms")
    expect(facts).to_contain_text("Trip60 ms")
    faulted = record.locator("table.analysis tr.faulted")
    assert faulted.evaluate_all("rs => rs.map(r => r.dataset.phase)") == ["A", "residual"]
    row_a = record.locator("table.analysis tr[data-phase=A]")
    expect(row_a.locator("td.strong")).to_contain_text("3,0")  # ~3,000 A RMS on 200 A load
    expect(row_a.locator("td.dip")).to_contain_text("70 %")
    # The waveforms: currents and voltages on one axis, phase A bold, the fault marked,
    # trip and breaker as lanes.
    wave = record.locator("svg.wave")
    expect(wave).to_be_visible()
    plots = wave.locator("g.plot").evaluate_all("gs => gs.map(g => g.dataset.plot)")
    assert plots == ["currents", "voltages"]
    channels = wave.locator("polyline.trace").evaluate_all(
        "ps => ps.map(p => [p.dataset.channel, p.classList.contains('faulted')])"
    )
    assert channels == [
        ["IA", True], ["IB", False], ["IC", False], ["UA", True], ["UB", False], ["UC", False],
    ]  # fmt: skip
    lanes = wave.locator("g.lane-digital").evaluate_all("gs => gs.map(g => g.dataset.channel)")
    assert lanes == ["trip", "breaker_closed"]
    expect(wave.locator("rect.fault-band")).to_have_count(1)
    moments = wave.locator("g.moment text").all_text_contents()
    assert moments == ["inception", "trip +60 ms", "cleared +80 ms"]
    reports = panel.locator("table.fault-reports tbody tr")
    expect(reports).to_have_count(1)
    expect(reports).to_contain_text("line2")
    expect(reports).to_contain_text("12.4 km")
    page.locator("#disturbance-records").screenshot(path=shots / "ticket-disturbance.png")
    bottom = page.evaluate(
        "document.querySelector('#disturbance-records').getBoundingClientRect().bottom"
        " + window.scrollY"
    )
    page.screenshot(  # the incident from the top of the page: README and docs/console.md
        path=shots / "ticket-incident.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1360, "height": bottom + 12},
    )
    # The COMTRADE files, through the console's session.
    with page.expect_download() as download:
        record.locator("a.download").click()
    with zipfile.ZipFile(download.value.path()) as z:
        names = sorted(z.namelist())
        assert names == ["north_line1_17.cfg", "north_line1_17.dat"]
        parsed = comtrade.read(z.read(names[0]), z.read(names[1]))
    assert [a.name for a in parsed.analog] == ["IA", "IB", "IC", "UA", "UB", "UC"]


def _read_the_fleet_history(page: Any, origin: str, shots: Path) -> None:
    """Statistics with their filters in the URL and the printable report; the fleet's
    ageing risk; a device's risk and its clock."""
    expect = playwright_api.expect
    page.goto(f"{origin}/queue")
    page.click("header nav >> text=Statistics")
    expect(page.locator("h1")).to_have_text("Statistics")
    for chart in ("#chart-monthly", "#chart-rate", "#chart-causes"):
        expect(page.locator(f"{chart} svg")).to_be_visible()
    expect(page.locator("#clock-sites")).to_contain_text("north")
    page.screenshot(path=shots / "statistics.png", full_page=True)
    # A filter goes into the URL, and the page reads it back from there.
    page.fill("#stats-filters input[name=fault_class]", "protection_operation")
    page.click("#stats-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"fault_class=protection_operation"))
    shared = page.url
    page.goto(shared)
    expect(page.locator("#stats-filters input[name=fault_class]")).to_have_value(
        "protection_operation"
    )
    expect(page.locator("section.tiles .tile").first).to_contain_text("1tickets")
    # The printable report: its own page, its one stylesheet allowed, nothing fetched.
    page.click("#report-html")
    expect(page.locator("h1")).to_have_text("Continuous improvement report")
    page.screenshot(path=shots / "report.png", full_page=True)

    page.goto(f"{origin}/fleet")
    busbar = page.locator("#ageing tr", has_text="busbar")
    expect(busbar).to_have_class(re.compile("at-risk"))
    expect(busbar.locator(".risk-value")).to_have_class(re.compile("over"))
    expect(busbar).to_contain_text("of 15 years")
    page.screenshot(path=shots / "fleet-ageing.png", full_page=True)

    page.goto(f"{origin}/devices/north/line2")
    expect(page.locator("#clock-verdict")).to_have_text("offset")
    figures = page.locator("#clock-quality dl.clock-figures")
    expect(figures).to_contain_text(f"Offset p50+{statistics.median(CLOCK_OFFSETS_MS):.0f} ms")
    expect(page.locator("#clock-chart svg circle")).to_have_count(len(CLOCK_OFFSETS_MS))
    expect(page.locator("#ageing-risk .risk-value")).not_to_have_class(re.compile("over"))
    page.screenshot(path=shots / "device-clock.png", full_page=True)
    page.goto(f"{origin}/devices/north/busbar")
    expect(page.locator("#ageing-risk")).to_contain_text("at or above the threshold")
