"""The REST API (FastAPI): tickets with timelines and actions, devices, events, inventory,
maintenance windows, sequence gaps and counters. Bearer-token auth from the config, each
token with a role (center/auth/roles.py: viewers read, operators act on tickets, engineers
approve baselines, admins manage maintenance windows). OpenAPI at /docs, /redoc and
/openapi.json, with their scripts and styles served from this process (a utility network
has no internet, so a CDN would leave the pages blank). Handlers are plain functions:
FastAPI runs them in its thread pool, so a database call never blocks the MQTT ingest
loop."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from center import api_limits, quarantine
from center import metrics as center_metrics
from center.api_limits import Id, LongText, Name, ShortText, Text, Time
from center.auth import audit
from center.auth.roles import MINIMUM_ROLE, Permission, allows
from center.config import CenterConfig
from center.errors import TicketActionError, TicketNotFound
from center.ingest import Counters
from center.store import queries
from center.tickets.service import TicketService
from common.prometheus import CONTENT_TYPE
from gateway import wire

API = "/api/v1"


@dataclass
class ApiContext:
    config: CenterConfig
    engine: Engine
    tickets: TicketService
    counters: Counters
    status: Callable[[], dict[str, Any]] = field(default=lambda: {})

    def audit(
        self, who: str, action: str, target: str, detail: str = "", ticket_id: int | None = None
    ) -> None:
        """Record an action taken with a token (center/auth/audit.py), with its role."""
        role = next((t.role for t in self.config.api.tokens if t.name == who), "?")
        with self.engine.begin() as conn:
            audit.record(
                conn, at=self.tickets.tickets.clock.now(), actor=who, role=role, via="api",
                action=action, target=target, detail=detail, ticket_id=ticket_id,
            )  # fmt: skip


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text | None = Field(default=None, max_length=LongText)


class Resolution(Action):
    root_cause: Text = Field(max_length=ShortText)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text = Field(min_length=1, max_length=LongText)


class Closing(Action):
    root_cause: Text | None = Field(default=None, max_length=ShortText)


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(pattern=wire.TOPIC_SAFE)
    device_id: str | None = Field(default=None, pattern=wire.TOPIC_SAFE)
    starts_at: Time
    ends_at: Time
    reason: Text = Field(default="", max_length=LongText)


_bearer = HTTPBearer(auto_error=False)


def _token_holder(
    request: Request,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[str, str]:
    """The token's name and role: who does what through the API."""
    if cred is not None:
        given = cred.credentials.encode()
        for name, token, role in request.app.state.tokens:
            if hmac.compare_digest(given, token):
                return str(name), str(role)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or unknown bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _allowed(permission: Permission) -> Callable[[tuple[str, str]], str]:
    def check(holder: Annotated[tuple[str, str], Depends(_token_holder)]) -> str:
        name, role = holder
        if not allows(role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token {name!r} has role {role}; this needs {MINIMUM_ROLE[permission]} or above",
            )
        return name

    return check


# Module level: with postponed annotations FastAPI resolves names in module globals.
Actor = Annotated[str, Depends(_allowed(Permission.READ))]  # any valid token: reads
Operator = Annotated[str, Depends(_allowed(Permission.TICKET_ACTION))]
Engineer = Annotated[str, Depends(_allowed(Permission.APPROVE_BASELINE))]
Admin = Annotated[str, Depends(_allowed(Permission.MAINTENANCE))]


def health_problems(config: CenterConfig, state: dict[str, Any]) -> list[str]:
    """Why the center is not healthy, from its service status (empty: healthy)."""
    mqtt = state.get("mqtt")
    if mqtt is None or mqtt.get("subscribed"):
        return []
    error = f": {mqtt['last_error']}" if mqtt.get("last_error") else ""
    return [f"MQTT session to {config.mqtt.host}:{config.mqtt.port} is down{error}"]


def create_app(ctx: ApiContext) -> FastAPI:  # noqa: C901
    app = FastAPIOffline(
        title="Relay service center",
        version="1",
        description="Tickets, devices and events of the protection-relay fleet.",
    )
    app.state.tokens = [(t.name, t.token.encode(), t.role) for t in ctx.config.api.tokens]
    api_limits.install(app)

    def read(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with ctx.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def act(
        fn: Callable[[], dict[str, Any]], who: str, action: str, ticket_id: int, detail: str
    ) -> dict[str, Any]:
        try:
            doc = fn()
        except TicketNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {exc}") from None
        except TicketActionError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        ctx.audit(who, f"ticket_{action}", f"ticket {ticket_id}", detail, ticket_id)
        return doc

    @app.get("/healthz", tags=["ops"])
    def healthz(response: Response) -> dict[str, Any]:
        """503 with the reasons while the center cannot do its job (its MQTT session is
        down: nothing arrives), so a load balancer or monitor sees it."""
        state = ctx.status()
        problems = health_problems(ctx.config, state)
        if problems:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"ok": not problems, "problems": problems, **state}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus exposition; no token, like /healthz (scrape it over loopback)."""
        mqtt = ctx.status().get("mqtt", {})
        text = read(center_metrics.page, ctx.counters, mqtt)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    @app.get(f"{API}/tickets", tags=["tickets"])
    def tickets(
        *,
        _: Actor,
        state: Annotated[list[str] | None, Query(max_length=8)] = None,
        site: Name = None,
        device_id: Name = None,
        fault_class: Name = None,
        priority: Name = None,
        service_point: Name = None,
        include_muted: bool = True,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        f = queries.TicketFilter(
            state,
            site,
            device_id,
            fault_class,
            priority,
            service_point,
            include_muted,
            limit,
            offset,
        )
        result: list[dict[str, Any]] = read(queries.list_tickets, f)
        return result

    @app.get(f"{API}/tickets/{{ticket_id}}", tags=["tickets"])
    def ticket(ticket_id: Id, _: Actor) -> dict[str, Any]:
        doc: dict[str, Any] | None = read(queries.get_ticket, ticket_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
        return doc

    @app.post(f"{API}/tickets/{{ticket_id}}/acknowledge", tags=["tickets"])
    def acknowledge(ticket_id: Id, body: Action, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.acknowledge(ticket_id, who, body.note),
            who, "acknowledged", ticket_id, body.note or "",
        )  # fmt: skip
        return done

    @app.post(f"{API}/tickets/{{ticket_id}}/resolve", tags=["tickets"])
    def resolve(ticket_id: Id, body: Resolution, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.resolve(ticket_id, who, body.root_cause, body.note),
            who, "resolved", ticket_id, body.root_cause,
        )  # fmt: skip
        return done

    @app.post(f"{API}/tickets/{{ticket_id}}/close", tags=["tickets"])
    def close(ticket_id: Id, body: Closing, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.close(ticket_id, who, body.root_cause, body.note),
            who, "closed", ticket_id, body.root_cause or "",
        )  # fmt: skip
        return done

    @app.post(f"{API}/tickets/{{ticket_id}}/note", tags=["tickets"])
    def note(ticket_id: Id, body: NoteIn, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.add_note(ticket_id, who, body.note),
            who, "noted", ticket_id, body.note,
        )  # fmt: skip
        return done

    @app.get(f"{API}/root-causes", tags=["tickets"])
    def root_causes(_: Actor) -> list[str]:
        return list(ctx.config.tickets.root_causes)

    @app.get(f"{API}/devices", tags=["fleet"])
    def devices(_: Actor, site: Name = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(queries.list_devices, site)
        return result

    @app.get(f"{API}/gateways", tags=["fleet"])
    def gateways(_: Actor) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(queries.list_gateways)
        return result

    @app.get(f"{API}/inventory", tags=["fleet"])
    def inventory(_: Actor) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(queries.inventory)
        return result

    @app.get(f"{API}/events", tags=["fleet"])
    def events(
        *,
        _: Actor,
        site: Name = None,
        device_id: Name = None,
        kind: Name = None,
        signal: Name = None,
        since: Time | None = None,
        until: Time | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(
            queries.list_events,
            site=site,
            device_id=device_id,
            kind=kind,
            signal=signal,
            since=since,
            until=until,
            limit=limit,
        )
        return result

    @app.get(f"{API}/gaps", tags=["ops"])
    def gaps(_: Actor) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(queries.list_gaps)
        return result

    @app.get(f"{API}/rejected", tags=["ops"])
    def rejected(
        _: Actor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(queries.list_rejected, limit)
        return result

    @app.get(f"{API}/quarantine", tags=["ops"])
    def quarantined(
        _: Actor,
        reason: Name = None,
        gateway_id: Name = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Records and messages set apart, newest first, without their content."""
        result: list[dict[str, Any]] = read(quarantine.list_quarantine, limit, reason, gateway_id)
        return result

    @app.get(f"{API}/quarantine/{{item_id}}", tags=["ops"])
    def quarantined_item(item_id: Id, _: Actor) -> dict[str, Any]:
        """One entry with its content as received (`content_base64` when not UTF-8)."""
        doc: dict[str, Any] | None = read(quarantine.get_quarantined, item_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantine entry {item_id}")
        return doc

    @app.get(f"{API}/stats", tags=["ops"])
    def stats(_: Actor) -> dict[str, Any]:
        db: dict[str, Any] = read(queries.stats)
        db["quarantine_by_reason"] = read(quarantine.counts_by_reason)
        return {
            "counters": ctx.counters.snapshot(),
            "event_to_ticket_ms": ctx.counters.latency_ms(),
            "database": db,
            "service": ctx.status(),
        }

    @app.get(f"{API}/maintenance", tags=["maintenance"])
    def windows(_: Actor) -> list[dict[str, Any]]:
        configured = [
            {**m.model_dump(mode="json"), "id": None, "created_by": "config"}
            for m in ctx.config.maintenance
        ]
        stored: list[dict[str, Any]] = read(queries.list_windows)
        return configured + stored

    @app.post(f"{API}/maintenance", tags=["maintenance"], status_code=201)
    def add_window(body: WindowIn, who: Admin) -> dict[str, Any]:
        if body.ends_at <= body.starts_at:
            raise HTTPException(422, "ends_at must be after starts_at")
        values = {
            **body.model_dump(),
            "starts_at": body.starts_at.astimezone(UTC),
            "ends_at": body.ends_at.astimezone(UTC),
            "created_by": who,
        }
        with ctx.engine.begin() as conn:
            wid = queries.add_window(conn, values)
        ctx.audit(who, "window_add", f"window {wid} at {body.site}", body.reason)
        return {"id": wid, **body.model_dump(mode="json"), "created_by": who}

    @app.delete(f"{API}/maintenance/{{window_id}}", tags=["maintenance"], status_code=204)
    def delete_window(window_id: Id, who: Admin) -> None:
        with ctx.engine.begin() as conn:
            if not queries.delete_window(conn, window_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no window {window_id}")
        ctx.audit(who, "window_delete", f"window {window_id}")

    from center.analytics.routes import add_routes as add_analytics_routes
    from center.lifecycle.routes import add_routes  # imports this module: here, not on top

    add_routes(app, ctx)
    add_analytics_routes(app, ctx)
    from center.disturbance.routes import add_routes as add_disturbance_routes

    add_disturbance_routes(app, ctx)
    if ctx.config.console.enabled:
        from center.web import mount  # the console (templates, static files) under /

        mount(app, ctx)
    return app
