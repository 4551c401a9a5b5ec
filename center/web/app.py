"""The console's frame: templates, the logged-in user of a request, CSRF and role checks,
security headers, and error pages that explain instead of showing a stack trace.

Every page and form goes through `Console.user` (a session or a redirect to the login
page), every POST through `Console.check_form` (CSRF token of the session, then the role).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from center.api.limits import invalid_input
from center.auth import audit
from center.auth.ratelimit import LoginLimiter
from center.auth.roles import MINIMUM_ROLE, Permission, allows
from center.auth.sessions import COOKIE, Session, SessionExpired, SessionStore
from center.auth.users import UserStore
from center.clock import Clock
from center.web import formatting

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# OpenAPI's pages load Swagger UI from FastAPI's defaults; they keep their own headers.
_NO_CSP = ("/docs", "/redoc")
_API_PREFIXES = ("/api/", "/openapi.json", "/metrics", "/healthz")


class PageError(Exception):
    """A clear message on a page, with its HTTP status: unknown ticket, stale form…"""

    def __init__(self, status: int, title: str, message: str, back: str | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.back = status, title, message, back


class LoginRequired(Exception):
    def __init__(self, next_url: str, expired: bool) -> None:
        super().__init__(next_url)
        self.next_url, self.expired = next_url, expired


def _is_console(request: Request) -> bool:
    return not request.url.path.startswith(_API_PREFIXES)


class Console:
    def __init__(self, ctx: Any, clock: Clock) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.config = ctx.config
        self.clock = clock
        cfg = ctx.config.console
        self.sessions = SessionStore(ctx.engine, cfg)
        self.users = UserStore(ctx.engine)
        self.limiter = LoginLimiter(cfg.login_attempts, cfg.login_window_s)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        formatting.install(self.templates)

    def now(self) -> datetime:
        return self.clock.now()

    @staticmethod
    def clock_s() -> float:
        """Monotonic seconds, for the login rate limiter."""
        return time.monotonic()

    # --- who is asking ----------------------------------------------------------------

    def user(self, request: Request) -> Session:
        """The request's session, or a redirect to the login page (saying why)."""
        try:
            found = self.sessions.lookup(request.cookies.get(COOKIE), self.now())
        except SessionExpired:
            found, expired = None, True
        else:
            expired = False
        if found is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target, expired)
        request.state.session = found
        return found

    def check_form(self, session: Session, csrf: str | None, permission: Permission) -> None:
        if not session.csrf_ok(csrf):
            raise PageError(
                403,
                "This form is stale",
                "The form was not sent from this session (it may be from before you logged "
                "in again, or from another site). Reload the page and try again.",
            )
        self.require(session, permission)

    def audit(
        self, session: Session, action: str, target: str, detail: str = "",
        ticket_id: int | None = None,
    ) -> None:  # fmt: skip
        """Record a person's action taken through the console (its own transaction)."""
        with self.engine.begin() as conn:
            audit.record(
                conn, at=self.now(), actor=session.username, role=session.role, via="console",
                action=action, target=target, detail=detail, ticket_id=ticket_id,
            )  # fmt: skip

    @staticmethod
    def require(session: Session, permission: Permission) -> None:
        if not allows(session.role, permission):
            raise PageError(
                403,
                "Not allowed",
                f"You are logged in as {session.username} ({session.role}); this needs the "
                f"{MINIMUM_ROLE[permission]} role or above.",
            )

    # --- pages -------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        session: Session | None = getattr(request.state, "session", None)
        started = getattr(request.state, "started", None)
        html = self.templates.get_template(template).render(
            request=request,
            session=session,
            can=lambda p: session is not None and allows(session.role, Permission(p)),
            refresh_ms=int(self.config.console.refresh_s * 1000),
            server_ms=(time.perf_counter() - started) * 1000 if started else None,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, exc: PageError) -> HTMLResponse:
        return self.render(
            request, "error.html", exc.status, title=exc.title, message=exc.message, back=exc.back
        )


def _security_headers(response: Response, path: str) -> None:
    # A route may set a narrower policy of its own (the printable report: no script at
    # all, one stylesheet by its hash); every other console response gets the console's.
    if not path.startswith(_NO_CSP) and "content-security-policy" not in response.headers:
        response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"


def _to_login(request: Request, exc: LoginRequired) -> Response:
    """To the login page, and back to the page asked for after it."""
    if request.headers.get("x-console-fragment"):  # the live queue's fetch
        return JSONResponse({"login": True, "expired": exc.expired}, status_code=401)
    url = f"/login?next={quote(exc.next_url, safe='')}" + ("&expired=1" if exc.expired else "")
    response = RedirectResponse(url, status_code=303)
    if exc.expired:
        response.delete_cookie(COOKIE, path="/")
    return response


def install(app: FastAPI, console: Console) -> None:
    """Middleware and error handlers; HTML for console paths, the API keeps its JSON."""

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        request.state.started = time.perf_counter()
        response: Response = await call_next(request)
        _security_headers(response, request.url.path)
        if _is_console(request) and not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return console.error_page(request, exc)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return _to_login(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_console(request):
            return await http_exception_handler(request, exc)
        title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return console.error_page(request, PageError(exc.status_code, title, message, "/queue"))

    @app.exception_handler(RequestValidationError)
    async def invalid_form(request: Request, exc: RequestValidationError) -> Response:
        if not _is_console(request):
            return invalid_input(exc)
        fields = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        message = "The request was incomplete or malformed" + (
            f" ({', '.join(fields)})." if fields else "."
        )
        return console.error_page(request, PageError(422, "Check the form", message))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        if not _is_console(request):
            return JSONResponse({"detail": "internal error (see the center's log)"}, 500)
        return console.error_page(
            request,
            PageError(
                500,
                "Something went wrong",
                "The center could not build this page; the error is in its log.",
                "/queue",
            ),
        )
