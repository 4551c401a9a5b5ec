"""The admin page: console users (add, change role, remove) and maintenance windows (add,
delete). Admins only; each change is in the action audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from center.auth import audit
from center.auth.roles import ROLES, Permission
from center.auth.users import UserError
from center.store import queries
from center.web.app import Console

Text = Annotated[str, Form(max_length=4000)]
Csrf = Annotated[str, Form(max_length=100)]
DONE = {
    "user_add": "User added.",
    "user_role": "Role changed; their sessions ended.",
    "user_remove": "User removed.",
    "window_add": "Maintenance window added.",
    "window_delete": "Maintenance window deleted.",
}


def _utc(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{name}: expected a date and time like 2026-05-01T08:00 (UTC)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def router(console: Console) -> APIRouter:
    r = APIRouter()

    def page(request: Request, status: int = 200, error: str = "") -> HTMLResponse:
        session = console.user(request)
        console.require(session, Permission.USERS)
        with console.engine.connect() as conn:
            windows = queries.list_windows(conn)
            actions = audit.recent(conn, 50)
        return console.render(
            request, "admin.html", status, users=console.users.list(), roles=ROLES,
            windows=windows, configured=console.config.maintenance, actions=actions,
            done=DONE.get(request.query_params.get("done", "")), error=error,
        )  # fmt: skip

    @r.get("/admin", response_class=HTMLResponse)
    def admin(request: Request) -> HTMLResponse:
        return page(request)

    def change(request: Request, csrf: str, action: str, call: Callable[[str], object]) -> Response:
        """Run an admin change as the session's user; a refusal re-renders the page."""
        session = console.user(request)
        console.check_form(session, csrf, Permission.USERS)
        try:
            call(session.username)
        except UserError as exc:
            return page(request, 422, str(exc))
        return RedirectResponse(f"/admin?done={action}", status_code=303)

    @r.post("/admin/users")
    def add_user(
        request: Request, csrf: Csrf = "", username: Text = "", password: Text = "",
        role: Text = "viewer",
    ) -> Response:  # fmt: skip
        return change(
            request, csrf, "user_add",
            lambda by: console.users.add(username, password, role, by=by, via="console",
                                         now=console.now()),
        )  # fmt: skip

    @r.post("/admin/users/{username}/role")
    def set_role(request: Request, username: str, csrf: Csrf = "", role: Text = "") -> Response:
        return change(
            request, csrf, "user_role",
            lambda by: console.users.set_role(username, role, by=by, via="console",
                                              now=console.now()),
        )  # fmt: skip

    @r.post("/admin/users/{username}/remove")
    def remove_user(request: Request, username: str, csrf: Csrf = "") -> Response:
        return change(
            request, csrf, "user_remove",
            lambda by: console.users.remove(username, by=by, via="console", now=console.now()),
        )  # fmt: skip

    @r.post("/admin/maintenance")
    def add_window(
        request: Request,
        *, csrf: Csrf = "", site: Text = "", device_id: Text = "",
        starts_at: Text = "", ends_at: Text = "", reason: Text = "",
    ) -> Response:  # fmt: skip
        return change(
            request, csrf, "window_add",
            lambda by: _add_window(
                console, by, site=site, device_id=device_id, starts_at=starts_at,
                ends_at=ends_at, reason=reason,
            ),
        )  # fmt: skip

    @r.post("/admin/maintenance/{window_id}/delete")
    def delete_window(request: Request, window_id: int, csrf: Csrf = "") -> Response:
        return change(
            request, csrf, "window_delete", lambda by: _delete_window(console, by, window_id)
        )

    return r


def _add_window(
    console: Console, by: str, *, site: str, device_id: str, starts_at: str, ends_at: str,
    reason: str,
) -> None:  # fmt: skip
    start, end = _utc(starts_at, "starts at"), _utc(ends_at, "ends at")
    if not site.strip():
        raise UserError("site: expected the site's id")
    if end <= start:
        raise UserError("ends at: expected a time after the start")
    with console.engine.begin() as conn:
        wid = queries.add_window(
            conn, {"site": site.strip(), "device_id": device_id.strip() or None,
                   "starts_at": start, "ends_at": end, "reason": reason,
                   "created_by": by},
        )  # fmt: skip
        audit.record(
            conn, at=console.now(), actor=by, role="admin", via="console",
            action="window_add", target=f"window {wid} at {site}", detail=reason,
        )  # fmt: skip


def _delete_window(console: Console, by: str, window_id: int) -> None:
    with console.engine.begin() as conn:
        if not queries.delete_window(conn, window_id):
            raise UserError(f"no maintenance window {window_id}")
        audit.record(
            conn, at=console.now(), actor=by, role="admin", via="console",
            action="window_delete", target=f"window {window_id}",
        )  # fmt: skip
