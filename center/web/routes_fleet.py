"""The fleet and device pages: devices against their approved baselines, firmware versions
per model as a chart, approvals with a reason (engineers), each device's identity,
histories, recent events, tickets, and a remote poll through the agent."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, RowMapping, select

from center import remote_poll
from center.auth.roles import Permission
from center.baselines import inventory
from center.baselines.approvals import ApprovalError, BaselineService
from center.store import queries
from center.store import schema as s
from center.web import charts
from center.web.app import Console, PageError
from center.web.routes_analytics import device_analytics, fleet_ageing
from gateway.poll_view import render_answer, verdict
from gateway.rpc import WHAT_CHOICES, PollFailed

Text = Annotated[str, Form(max_length=4000)]
Csrf = Annotated[str, Form(max_length=100)]
DONE = {"firmware": "Firmware version approved.", "settings": "Settings baseline approved."}


def _versions_chart(rows: list[dict[str, Any]]) -> Any:
    bars = [
        charts.Bar(
            f"{v['model']} {v['firmware_version']}",
            len(v["devices"]),
            v["status"],
            f"{v['model']} {v['firmware_version']} ({v['status'].replace('_', ' ')}): "
            + ", ".join(v["devices"]),
        )
        for v in inventory.versions_summary(rows)
        if v["firmware_version"] != "?"  # devices that never reported are counted apart
    ]
    return charts.bar_chart(bars, "devices") if bars else None


def router(console: Console) -> APIRouter:
    r = APIRouter()
    service = BaselineService(
        console.engine, console.ctx.tickets.tickets, console.ctx.tickets.endpoints
    )

    def fleet_page(request: Request, status: int = 200, error: str = "") -> HTMLResponse:
        with console.engine.connect() as conn:
            rows = inventory.fleet_report(conn)
            ageing = fleet_ageing(conn, console.config)
        sites: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            sites.setdefault(row["site"], []).append(row)
        return console.render(
            request, "fleet.html", status, sites=sites, devices=rows,
            versions=inventory.versions_summary(rows), chart=_versions_chart(rows),
            ageing=ageing, ageing_cfg=console.config.analytics.ageing,
            ageing_scored=max((a["scored_at"] for a in ageing.values()), default=None),
            done=DONE.get(request.query_params.get("done", "")), error=error,
        )  # fmt: skip

    @r.get("/fleet", response_class=HTMLResponse)
    def fleet(request: Request) -> HTMLResponse:
        console.user(request)
        return fleet_page(request)

    @r.post("/fleet/approve-firmware")
    def approve_firmware(
        request: Request, csrf: Csrf = "", model: Text = "", firmware_version: Text = "",
        reason: Text = "",
    ) -> Response:  # fmt: skip
        session = console.user(request)
        console.check_form(session, csrf, Permission.APPROVE_BASELINE)
        if not (model.strip() and firmware_version.strip() and reason.strip()):
            return fleet_page(request, 422, "An approval needs a model, a version and a reason.")
        service.approve_firmware(model, firmware_version, session.username, reason.strip())
        console.audit(session, "approve_firmware", f"{model} {firmware_version}", reason)
        return RedirectResponse("/fleet?done=firmware", status_code=303)

    def device_page(
        request: Request, site: str, device_id: str, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        with console.engine.connect() as conn:
            identity = _identity(conn, site, device_id)
            firmware = inventory.firmware_history(conn, site, device_id)
            settings = inventory.settings_history(conn, site, device_id)
            events = queries.list_events(conn, site=site, device_id=device_id, limit=50)
            tickets = queries.list_tickets(
                conn, queries.TicketFilter(site=site, device_id=device_id, limit=50)
            )
            analytics = device_analytics(conn, console.config, site, device_id)
        return console.render(
            request, "device.html", status, dev=dict(identity), firmware=firmware,
            settings=settings, events=events, tickets=tickets,
            what_choices=WHAT_CHOICES, **analytics,
            done=DONE.get(request.query_params.get("done", "")), **extra,
        )  # fmt: skip

    @r.get("/devices/{site}/{device_id}", response_class=HTMLResponse)
    def device(request: Request, site: str, device_id: str) -> HTMLResponse:
        console.user(request)
        return device_page(request, site, device_id)

    @r.post("/devices/{site}/{device_id}/approve-settings")
    def approve_settings(
        request: Request,
        *, site: str, device_id: str, csrf: Csrf = "", reason: Text = "",
        hash: Text = "",
    ) -> Response:  # fmt: skip
        session = console.user(request)
        console.check_form(session, csrf, Permission.APPROVE_BASELINE)
        if not reason.strip():
            return device_page(request, site, device_id, 422, error="An approval needs a reason.")
        try:
            service.approve_settings(
                site, device_id, session.username, reason.strip(), hash or None
            )
        except ApprovalError as exc:
            return device_page(request, site, device_id, 409, error=str(exc))
        console.audit(session, "approve_settings", f"{site}/{device_id}", reason)
        return RedirectResponse(f"/devices/{site}/{device_id}?done=settings", status_code=303)

    @r.post("/devices/{site}/{device_id}/poll", response_class=HTMLResponse)
    def poll(
        request: Request, site: str, device_id: str, csrf: Csrf = "", what: Text = "status"
    ) -> HTMLResponse:
        session = console.user(request)
        console.check_form(session, csrf, Permission.REMOTE_POLL)
        answer, problem = _poll(console, site, device_id, what, session.username)
        outcome = "ok" if answer is not None else problem
        console.audit(session, "remote_poll", f"{site}/{device_id}", f"{what}: {outcome}")
        return device_page(
            request, site, device_id, 200 if answer is not None else 502,
            poll_answer=answer, poll_error=problem, poll_what=what,
        )  # fmt: skip

    return r


def _identity(conn: Connection, site: str, device_id: str) -> RowMapping:
    """The device's row, or the console's 404 page."""
    d = s.devices.c
    identity = (
        conn.execute(select(s.devices).where(d.site == site, d.device_id == device_id))
        .mappings()
        .first()
    )
    if identity is None:
        raise PageError(
            404, "No such device", f"The center knows no device {device_id} at {site}.",
            "/fleet",
        )  # fmt: skip
    return identity


def _poll(
    console: Console, site: str, device_id: str, what: str, actor: str
) -> tuple[list[str] | None, str]:
    """The agent's answer as readable lines, or why there is none."""
    cfg = console.config.console
    if what not in WHAT_CHOICES:
        return None, f"unknown poll {what!r}"
    if cfg.poll_token_file is None:
        return None, "remote polls need [console] poll_token_file in the center's config"
    d = s.devices.c
    with console.engine.connect() as conn:
        gateway = conn.execute(
            select(d.gateway_id).where(d.site == site, d.device_id == device_id)
        ).scalar()
    if gateway is None:
        return None, f"no gateway is known for {site}/{device_id}"
    try:
        token = cfg.poll_token_file.read_text().strip()
        reply = asyncio.run(
            remote_poll.remote_poll(
                remote_poll.BrokerSettings.from_center_config(console.config.mqtt),
                site=site, gateway_id=gateway, device=device_id, what=what, token=token,
                actor=actor, timeout_s=cfg.poll_timeout_s,
            )
        )  # fmt: skip
    except OSError as exc:
        return None, f"cannot read the poll token file: {exc}"
    except PollFailed as exc:
        return None, str(exc)
    if reply.answer is None:
        return None, f"{gateway}: {reply.code}: {reply.error}"
    lines = render_answer(reply.answer)
    problem = verdict(reply.answer)  # an answer can carry failed parts (link down…)
    return ([*lines, f"problem: {problem}"] if problem else lines), ""
