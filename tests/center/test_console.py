"""The console over HTTP (no browser), on SQLite and PostgreSQL: login and sessions, CSRF and
roles on every action, the action audit, clear error pages, the queue's filters, pages
and folded children, and the security headers of every page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from markupsafe import Markup

from center.api import ApiContext, create_app
from center.auth.users import UserStore
from center.web import panels
from tests.center.records import T0, Gateway, seed_records

PASSWORDS = {
    "olga": ("operator", "operator-pass-1"),
    "vera": ("viewer", "viewer-pass-12"),
    "ed": ("engineer", "engineer-pass-1"),
    "ada": ("admin", "admin-pass-123"),
}
S = timedelta(seconds=1)


class Console:
    """A harness with users and a TestClient per login."""

    def __init__(self, h: Any) -> None:
        self.h = h
        users = UserStore(h.engine)
        for name, (role, password) in PASSWORDS.items():
            users.add(name, password, role, by="test", via="cli", now=T0)
        self.app = create_app(ApiContext(h.config, h.engine, h.service, h.counters))

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1", follow_redirects=False)

    def login(self, name: str, password: str | None = None) -> tuple[TestClient, str]:
        """A logged-in client and its session's CSRF token."""
        c = self.client()
        r = self.attempt(c, name, password or PASSWORDS[name][1])
        assert r.status_code == 303, r.text
        return c, csrf_of(c.get("/queue").text)

    @staticmethod
    def attempt(c: TestClient, name: str, password: str) -> Any:
        token = csrf_of(c.get("/login").text)
        form = {"username": name, "password": password, "csrf": token, "next": "/queue"}
        return c.post("/login", data=form)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def console(make_harness: Any) -> Console:
    h = make_harness(
        {
            "devices": [{"site": "north", "device_id": "busbar", "criticality": "high"}],
            "console": {"login_attempts": 3, "page_size": 5},
        }
    )
    gw = Gateway()
    h.send(gw.birth(T0))
    for r in seed_records(gw):
        h.send(r)
    return Console(h)


def trip_id(console: Console) -> int:
    (t,) = console.h.tickets(fault_class="protection_operation")
    return int(t["id"])


def test_pages_need_a_login_and_carry_no_inline_script(console):
    anonymous = console.client()
    r = anonymous.get("/tickets/1?x=1")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2Ftickets%2F1%3Fx%3D1")
    c = console.client()
    r = console.attempt(c, "olga", PASSWORDS["olga"][1])
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert r.headers["location"] == "/queue"
    tid = trip_id(console)
    for path in (
        "/login", "/queue", f"/tickets/{tid}", "/fleet", "/devices/north/line1",
        "/gateways", "/operations", "/tickets/424242",
    ):  # fmt: skip
        page = c.get(path)
        assert page.status_code in (200, 404), path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp, path
        html = page.text
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], path
        assert re.findall(r"\son[a-z]+\s*=", html) == [], path  # no inline handlers
        assert re.findall(r"\sstyle\s*=", html) == [], path
        assert "Traceback" not in html
    for asset in ("/static/console.css", "/static/console.js"):
        assert c.get(asset).status_code == 200


def test_login_goes_back_only_to_this_center(console):
    c = console.client()
    for target, expected in (
        ("/tickets/1", "/tickets/1"),
        ("//evil.example/x", "/queue"),
        ("https://evil.example/", "/queue"),
        ("/\\evil.example", "/queue"),
    ):
        token = csrf_of(c.get("/login").text)
        form = {"username": "olga", "password": PASSWORDS["olga"][1], "csrf": token}
        r = c.post("/login", data={**form, "next": target})
        assert r.headers["location"] == expected, target


def test_failed_logins_are_rate_limited(console):
    c = console.client()
    for _ in range(3):
        r = console.attempt(c, "olga", "wrong-password")
        assert r.status_code == 401
        assert "Unknown user or wrong password" in r.text
    # Now even the right password waits: the limit is per user and per address.
    r = console.attempt(c, "olga", PASSWORDS["olga"][1])
    assert r.status_code == 429
    assert "Too many failed logins" in r.text
    r = console.attempt(c, "vera", PASSWORDS["vera"][1])
    assert r.status_code == 429
    failed = console.h.scalar(
        "SELECT count(*) FROM console_actions WHERE action = 'login_failed' AND actor = 'olga'"
    )
    assert failed == 3


def test_a_login_form_from_elsewhere_is_refused(console):
    c = console.client()
    form = {"username": "olga", "password": PASSWORDS["olga"][1], "csrf": "made-up"}
    r = c.post("/login", data=form)
    assert r.status_code == 403
    assert "stale" in r.text


def test_every_action_needs_the_session_csrf_token_and_the_role(console):
    tid = trip_id(console)
    olga, olga_csrf = console.login("olga")
    vera, vera_csrf = console.login("vera")
    resolve = {"root_cause": "line_fault"}
    assert olga.post(f"/tickets/{tid}/resolve", data=resolve).status_code == 403
    r = olga.post(f"/tickets/{tid}/resolve", data={**resolve, "csrf": vera_csrf})
    assert r.status_code == 403
    assert "This form is stale" in r.text
    r = vera.post(f"/tickets/{tid}/resolve", data={**resolve, "csrf": vera_csrf})
    assert r.status_code == 403
    assert "needs the operator role" in r.text
    assert "resolve-form" not in vera.get(f"/tickets/{tid}").text
    assert console.h.ticket(tid)["state"] == "open"
    # After logging in again, a form from the old session is stale.
    again, _ = console.login("olga")
    r = again.post(f"/tickets/{tid}/acknowledge", data={"csrf": olga_csrf})
    assert r.status_code == 403
    assert "stale" in r.text
    assert console.h.ticket(tid)["state"] == "open"


def test_operator_actions_land_in_the_timeline_and_the_audit(console):
    tid = trip_id(console)
    c, csrf = console.login("olga")
    r = c.post(f"/tickets/{tid}/acknowledge", data={"csrf": csrf, "note": "crew sent"})
    assert (r.status_code, r.headers["location"]) == (303, f"/tickets/{tid}?done=acknowledged")
    r = c.post(f"/tickets/{tid}/resolve", data={"csrf": csrf, "root_cause": "gremlins"})
    assert r.status_code == 409
    assert "gremlins is not a known root cause" in r.text.replace("&#39;", "")
    r = c.post(f"/tickets/{tid}/resolve", data={"csrf": csrf, "root_cause": "line_fault"})
    assert r.status_code == 303
    r = c.post(f"/tickets/{tid}/note", data={"csrf": csrf, "note": "tree cut back"})
    assert r.status_code == 303
    page = c.get(f"/tickets/{tid}?done=noted").text
    assert "Note added." in page
    assert "olga: tree cut back" in page
    doc = console.h.ticket(tid)
    assert (doc["state"], doc["root_cause"], doc["resolved_by"]) == (
        "resolved",
        "line_fault",
        "olga",
    )
    entries = [(e["entry"], e["summary"]) for e in doc["timeline"] if e["record"] is None]
    assert ("acknowledged", "crew sent") in entries
    assert ("resolved", "resolved by olga: line_fault") in entries
    assert ("note", "olga: tree cut back") in entries
    with console.h.engine.connect() as conn:
        audit = conn.execute(
            sa.text(
                "SELECT actor, role, via, action FROM console_actions"
                " WHERE ticket_id = :t ORDER BY id"
            ),
            {"t": tid},
        ).all()
    assert [tuple(a) for a in audit] == [
        ("olga", "operator", "console", "ticket_acknowledged"),
        ("olga", "operator", "console", "ticket_resolved"),
        ("olga", "operator", "console", "ticket_noted"),
    ]
    r = c.post(f"/tickets/{tid}/acknowledge", data={"csrf": csrf})
    assert r.status_code == 409
    assert "not open" in r.text


def test_an_expired_session_sends_back_to_login_with_a_message(console):
    c, _ = console.login("olga")
    console.h.at(T0 + timedelta(seconds=console.h.config.console.session_idle_s + 1))
    r = c.get("/queue?priority=P1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fqueue%3Fpriority%3DP1&expired=1"
    assert "Your session has expired" in c.get(r.headers["location"]).text
    live = c.get("/queue", headers={"X-Console-Fragment": "queue"})  # the queue's own fetch
    assert live.status_code == 401


def test_unknown_things_get_a_clear_page(console):
    c, _ = console.login("olga")
    for path, text in (
        ("/tickets/424242", "There is no ticket 424242."),
        ("/tickets/abc", "is not a ticket number"),
        ("/devices/north/nope", "The center knows no device nope at north."),
        ("/no-such-page", "There is no such page."),
    ):
        r = c.get(path)
        assert r.status_code == 404, path
        assert text in r.text.replace("&#39;", "'"), path


def test_queue_filters_pages_and_folds_muted_children(console):
    h = console.h
    gw = Gateway(gateway_id="gw2", site="south")
    h.send(gw.birth(T0))
    for i in range(6):
        h.send(gw.event(f"f{i}", "self_check_fail", True, T0 + i * S, signal="self_check"))
    h.send(gw.alarm("f0", "comms_lost", "raised", T0 + 7 * S))
    h.at(T0 + 10 * S)
    h.send(gw.death(T0 + 10 * S))  # the site's comms ticket mutes f0's
    c, _ = console.login("vera")
    page = c.get("/queue?site=south").text
    assert "7 tickets match." in page  # 6 self-checks and the site's comms; f0's is folded
    assert "page 1 of 2" in page
    assert len(re.findall(r'<tr class="ticket', page)) == 5
    assert re.search(r'href="/queue\?site=south&amp;page=2"', page)
    second = c.get("/queue?site=south&page=2").text  # P3 last: the site's comms ticket
    assert "1 muted ticket under #" in second
    assert len(re.findall(r'<tr class="ticket', second)) == 3  # two, and the folded child
    only = c.get("/queue?device=f3").text
    assert len(re.findall(r'data-ticket="', only)) == 1
    assert "f3" in only
    live = c.get("/queue?site=south", headers={"X-Console-Fragment": "queue"}).text
    assert "<html" not in live
    assert "7 tickets match." in live


TOKENS = [
    {"name": n, "token": f"{n}-token-0123456789", "role": n}
    for n in ("viewer", "operator", "engineer", "admin")
]


@pytest.fixture
def api(make_harness: Any) -> tuple[TestClient, Any]:
    h = make_harness({"api": {"tokens": TOKENS}})
    gw = Gateway()
    for r in seed_records(gw):
        h.send(r)
    return TestClient(create_app(ApiContext(h.config, h.engine, h.service, h.counters))), h


def _as(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {role}-token-0123456789"}


def test_the_api_applies_the_same_roles(api):
    api, h = api

    def post(path: str, role: str, body: dict[str, Any]) -> int:
        return api.post(f"/api/v1/{path}", json=body, headers=_as(role)).status_code

    (t,) = api.get("/api/v1/tickets", headers=_as("viewer")).json()
    r = api.post(f"/api/v1/tickets/{t['id']}/acknowledge", json={}, headers=_as("viewer"))
    assert r.status_code == 403
    assert "needs operator" in r.json()["detail"]
    assert post(f"tickets/{t['id']}/acknowledge", "operator", {}) == 200
    assert post(f"tickets/{t['id']}/note", "viewer", {"note": "seen"}) == 403
    assert post(f"tickets/{t['id']}/note", "operator", {"note": "crew sent"}) == 200
    timeline = api.get(f"/api/v1/tickets/{t['id']}", headers=_as("viewer")).json()["timeline"]
    assert ("note", "operator: crew sent") in [(e["entry"], e["summary"]) for e in timeline]
    approval = {"model": "LP-200", "firmware_version": "2.4.0", "reason": "qualified"}
    assert post("baselines/firmware", "operator", approval) == 403
    assert post("baselines/firmware", "engineer", approval) == 201
    window = {
        "site": "north",
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-01-02T00:00:00Z",
    }
    assert post("maintenance", "engineer", window) == 403
    assert post("maintenance", "admin", window) == 201
    with h.engine.connect() as conn:  # who did what through the API, with the role
        q = "SELECT actor, role, via, action FROM console_actions ORDER BY id"
        audit = [tuple(r) for r in conn.execute(sa.text(q))]
    assert audit == [
        ("operator", "operator", "api", "ticket_acknowledged"),
        ("operator", "operator", "api", "ticket_noted"),
        ("engineer", "engineer", "api", "approve_firmware"),
        ("admin", "admin", "api", "window_add"),
    ]


def test_admins_manage_users_and_maintenance_windows(console):
    olga, _ = console.login("olga")
    assert olga.get("/admin").status_code == 403
    ada, csrf = console.login("ada")
    form = {"csrf": csrf, "username": "nina", "password": "short", "role": "operator"}
    r = ada.post("/admin/users", data=form)
    assert r.status_code == 422
    assert "at least 10 characters" in r.text
    r = ada.post("/admin/users", data={**form, "password": "nina-pass-123"})
    assert (r.status_code, r.headers["location"]) == (303, "/admin?done=user_add")
    nina, _ = console.login("nina", "nina-pass-123")
    assert 'nina <span class="role">operator</span>' in nina.get("/queue").text
    r = ada.post("/admin/users/nina/role", data={"csrf": csrf, "role": "viewer"})
    assert r.status_code == 303
    assert nina.get("/queue").status_code == 303  # a new role ends the sessions
    window = {"csrf": csrf, "site": "north", "starts_at": "2026-05-01T08:00",
              "ends_at": "2026-05-01T07:00", "reason": "relay test"}  # fmt: skip
    r = ada.post("/admin/maintenance", data=window)
    assert r.status_code == 422
    assert "expected a time after the start" in r.text
    r = ada.post("/admin/maintenance", data={**window, "ends_at": "2026-05-01T12:00"})
    assert r.status_code == 303
    page = ada.get("/admin").text
    assert "2026-05-01 08:00:00.000Z" in page
    assert "relay test" in page
    wid = re.search(r'action="/admin/maintenance/(\d+)/delete"', page)
    assert wid is not None
    assert ada.post(f"/admin/maintenance/{wid[1]}/delete", data={"csrf": csrf}).status_code == 303
    assert ada.post("/admin/users/nina/remove", data={"csrf": csrf}).status_code == 303
    assert console.attempt(console.client(), "nina", "nina-pass-123").status_code == 401
    with console.h.engine.connect() as conn:
        q = "SELECT action FROM console_actions WHERE actor = 'ada' ORDER BY id"
        actions = [r[0] for r in conn.execute(sa.text(q))]
    assert actions == [
        "login", "user_add", "user_role", "window_add", "window_delete", "user_remove",
    ]  # fmt: skip


def test_the_ticket_page_shows_registered_panels_and_survives_a_broken_one(console):
    tid = trip_id(console)
    c, _ = console.login("vera")
    assert "No disturbance records for this incident." in c.get(f"/tickets/{tid}").text

    def waveforms(conn: Any, ticket: dict[str, Any]) -> Markup | None:
        return Markup("<svg class='wave'></svg>") if "busbar" in ticket["devices"] else None

    def broken(conn: Any, ticket: dict[str, Any]) -> Markup | None:
        raise RuntimeError("a bug in a panel")

    panels.register(panels.TicketPanel("waves", "Waveforms", waveforms))
    try:
        page = c.get(f"/tickets/{tid}").text
        assert 'id="panel-waves"' in page
        assert "<svg class='wave'></svg>" in page
        assert "No disturbance records" not in page
        panels.register(panels.TicketPanel("broken", "Broken", broken))
        quiet = TestClient(console.app, base_url="http://127.0.0.1", raise_server_exceptions=False)
        quiet.cookies = c.cookies
        r = quiet.get(f"/tickets/{tid}")
        assert r.status_code == 500
        assert "Something went wrong" in r.text
        assert "Traceback" not in r.text
        assert "a bug in a panel" not in r.text
    finally:
        panels.unregister("waves")
        panels.unregister("broken")
