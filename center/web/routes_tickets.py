"""The queue and the ticket pages, and the ticket actions (acknowledge, resolve, close,
note). An action goes through the same `TicketService` as the REST API, so the ticket's
timeline records who did it; the action audit records it too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from center.auth import audit
from center.auth.roles import Permission
from center.errors import TicketActionError, TicketNotFound
from center.web import charts, panels, queue_data, ticket_data
from center.web.app import Console, PageError

DONE = {
    "acknowledged": "Ticket acknowledged.",
    "resolved": "Ticket resolved.",
    "closed": "Ticket closed.",
    "noted": "Note added.",
}
LEGEND = ("start", "trip", "breaker_failure", "reclose", "alarm", "status")  # alarm: + self-check
Text = Annotated[str, Form(max_length=4000)]
Csrf = Annotated[str, Form(max_length=100)]


def _ticket_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        raise PageError(404, "No such ticket", f"{raw!r} is not a ticket number.", "/queue")
    return value


def router(console: Console) -> APIRouter:
    r = APIRouter()
    size = console.config.console.page_size

    @r.get("/")
    def home() -> Response:
        return RedirectResponse("/queue", status_code=303)

    @r.get("/queue", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        console.user(request)
        q = queue_data.QueueQuery.from_params(request.query_params)
        with console.engine.connect() as conn:
            found = queue_data.page(conn, q, size)
            if request.headers.get("x-console-fragment"):
                return console.render(request, "queue_live.html", q=q, page=found)
            found.options = queue_data.options(conn)
        return console.render(request, "queue.html", q=q, page=found)

    def ticket_page(
        request: Request, ticket_id: int, status: int = 200, error: str = "",
        form: dict[str, str] | None = None,
    ) -> HTMLResponse:  # fmt: skip
        with console.engine.connect() as conn:
            view = _view(conn, ticket_id)
            extras = panels.render_slot("disturbance_records", conn, view.ticket)
            actions = audit.recent(conn, 20, ticket_id)
        return console.render(
            request,
            "ticket.html",
            status,
            t=view.ticket,
            view=view,
            chart=charts.soe_chart(view.marks, view.lanes) if view.marks else None,
            legend=[(k, charts.legend_icon(k)) for k in LEGEND],
            cleared_icon=charts.legend_icon("trip", raised=False),
            extras=extras,
            actions=actions,
            root_causes=console.config.tickets.root_causes,
            done=DONE.get(request.query_params.get("done", "")),
            error=error,
            form=form or {},
        )

    @r.get("/tickets/{raw_id}", response_class=HTMLResponse)
    def ticket(request: Request, raw_id: str) -> HTMLResponse:
        console.user(request)
        return ticket_page(request, _ticket_id(raw_id))

    def act(
        request: Request, *, raw_id: str, csrf: str, action: str, detail: str, form: dict[str, str]
    ) -> Response:
        session = console.user(request)
        console.check_form(session, csrf, Permission.TICKET_ACTION)
        tid = _ticket_id(raw_id)
        refused = _run_action(console, action, tid, session.username, form)
        if refused is not None:
            return ticket_page(request, tid, 409, refused, form)
        console.audit(session, f"ticket_{action}", f"ticket {tid}", detail, ticket_id=tid)
        return RedirectResponse(f"/tickets/{tid}?done={action}", status_code=303)

    @r.post("/tickets/{raw_id}/acknowledge")
    def acknowledge(request: Request, raw_id: str, csrf: Csrf = "", note: Text = "") -> Response:
        return act(
            request,
            raw_id=raw_id,
            csrf=csrf,
            action="acknowledged",
            detail=note,
            form={"note": note},
        )

    @r.post("/tickets/{raw_id}/resolve")
    def resolve(
        request: Request, raw_id: str, csrf: Csrf = "", root_cause: Text = "", note: Text = ""
    ) -> Response:
        form = {"root_cause": root_cause, "note": note}
        return act(
            request, raw_id=raw_id, csrf=csrf, action="resolved", detail=root_cause, form=form
        )

    @r.post("/tickets/{raw_id}/close")
    def close(
        request: Request, raw_id: str, csrf: Csrf = "", root_cause: Text = "", note: Text = ""
    ) -> Response:
        form = {"root_cause": root_cause, "note": note}
        return act(request, raw_id=raw_id, csrf=csrf, action="closed", detail=root_cause, form=form)

    @r.post("/tickets/{raw_id}/note")
    def note(request: Request, raw_id: str, csrf: Csrf = "", note: Text = "") -> Response:
        return act(
            request, raw_id=raw_id, csrf=csrf, action="noted", detail=note, form={"note": note}
        )

    return r


def _view(conn: Connection, ticket_id: int) -> ticket_data.TicketView:
    """The ticket page's data, or the console's 404 page."""
    view = ticket_data.ticket_view(conn, ticket_id)
    if view is None:
        raise PageError(404, "No such ticket", f"There is no ticket {ticket_id}.", "/queue")
    return view


def _run_action(
    console: Console, action: str, tid: int, who: str, form: dict[str, str]
) -> str | None:
    """Apply a ticket action as `who`; why the engine refused it, for a person, or None."""
    tickets = console.ctx.tickets
    calls: dict[str, Any] = {
        "acknowledged": lambda: tickets.acknowledge(tid, who, form.get("note") or None),
        "resolved": lambda: tickets.resolve(
            tid, who, form.get("root_cause", ""), form.get("note") or None
        ),
        "closed": lambda: tickets.close(
            tid, who, form.get("root_cause") or None, form.get("note") or None
        ),
        "noted": lambda: tickets.add_note(tid, who, form.get("note", "")),
    }
    try:
        calls[action]()
    except TicketNotFound:
        raise PageError(404, "No such ticket", f"There is no ticket {tid}.", "/queue") from None
    except TicketActionError as exc:
        return _explain(str(exc))
    return None


def _explain(message: str) -> str:
    """The engine's messages name fields; say it for a person."""
    if message.startswith("root_cause: expected one of"):
        found = message.rsplit("(found: ", 1)[-1].rstrip(")")
        return f"{found} is not a known root cause: choose one from the list."
    if message.startswith("root_cause: required"):
        return "A protection ticket needs a root cause to be closed."
    if message.startswith("note: expected"):
        return "The note was empty."
    return f"{message[0].upper()}{message[1:]} (someone may have changed it meanwhile)."
