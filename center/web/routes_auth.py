"""Log in and out. The login form carries its own CSRF token (a cookie and a hidden field
that must match: there is no session yet); failed logins are rate limited per username
and per address; every login, failed or not, is in the action audit."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from center.auth import audit
from center.auth.sessions import COOKIE
from center.web.app import Console, PageError

LOGIN_CSRF = "relay_login_csrf"


def _safe_next(url: str | None) -> str:
    """Only a path on this center (no //host, no scheme): no open redirect."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/queue"


def router(console: Console) -> APIRouter:
    r = APIRouter()
    secure = console.config.console.secure_cookies

    def login_page(
        request: Request, status: int = 200, error: str = "", next_url: str = "/queue",
        username: str = "",
    ) -> HTMLResponse:  # fmt: skip
        token = secrets.token_urlsafe(24)
        expired = request.query_params.get("expired") == "1" and not error
        response = console.render(
            request, "login.html", status, csrf=token, error=error, expired=expired,
            next_url=_safe_next(next_url), username=username,
        )  # fmt: skip
        response.set_cookie(
            LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure, path="/login"
        )
        return response

    @r.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/queue") -> HTMLResponse:
        return login_page(request, next_url=next)

    @r.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/queue",
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF, "")
        if not expected or not secrets.compare_digest(expected, csrf):
            return login_page(request, 403, "The login form was stale; please try again.", next)
        now = console.now()
        address = request.client.host if request.client else "?"
        keys = [f"user:{username.lower()}", f"addr:{address}"]
        wait = console.limiter.retry_after(keys, console.clock_s())
        if wait > 0:
            return login_page(
                request, 429,
                f"Too many failed logins. Try again in {wait:.0f} s.", next, username,
            )  # fmt: skip
        user = console.users.authenticate(username, password, now)
        with console.engine.begin() as conn:
            audit.record(
                conn, at=now, actor=username or "?", role=user.role if user else "-",
                via="console", action="login" if user else "login_failed",
                target=address,
            )  # fmt: skip
        if user is None:
            console.limiter.failed(keys, console.clock_s())
            return login_page(request, 401, "Unknown user or wrong password.", next, username)
        console.limiter.succeeded(keys)
        token = console.sessions.create(user.username, now)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
            max_age=int(console.config.console.session_max_s),
        )
        response.delete_cookie(LOGIN_CSRF, path="/login")
        return response

    @r.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
        session = console.user(request)
        if not session.csrf_ok(csrf):
            raise PageError(403, "This form is stale", "Reload the page and log out again.")
        token = request.cookies.get(COOKIE)
        if token:
            console.sessions.end(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return r
