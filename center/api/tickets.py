"""Tickets: the queue with its filters, one ticket with its timeline, and the actions on it
(acknowledge, resolve, close, note), each audited with the token's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from center.api.auth import Actor, Operator
from center.api.context import API, ApiContext
from center.api.limits import Id, LongText, Name, ShortText, Text
from center.errors import TicketActionError, TicketNotFound
from center.store import queries


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


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:

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

    @routes.get(f"{API}/tickets", tags=["tickets"])
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
        result: list[dict[str, Any]] = ctx.read(queries.list_tickets, f)
        return result

    @routes.get(f"{API}/tickets/{{ticket_id}}", tags=["tickets"])
    def ticket(ticket_id: Id, _: Actor) -> dict[str, Any]:
        doc: dict[str, Any] | None = ctx.read(queries.get_ticket, ticket_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
        return doc

    @routes.post(f"{API}/tickets/{{ticket_id}}/acknowledge", tags=["tickets"])
    def acknowledge(ticket_id: Id, body: Action, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.acknowledge(ticket_id, who, body.note),
            who, "acknowledged", ticket_id, body.note or "",
        )  # fmt: skip
        return done

    @routes.post(f"{API}/tickets/{{ticket_id}}/resolve", tags=["tickets"])
    def resolve(ticket_id: Id, body: Resolution, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.resolve(ticket_id, who, body.root_cause, body.note),
            who, "resolved", ticket_id, body.root_cause,
        )  # fmt: skip
        return done

    @routes.post(f"{API}/tickets/{{ticket_id}}/close", tags=["tickets"])
    def close(ticket_id: Id, body: Closing, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.close(ticket_id, who, body.root_cause, body.note),
            who, "closed", ticket_id, body.root_cause or "",
        )  # fmt: skip
        return done

    @routes.post(f"{API}/tickets/{{ticket_id}}/note", tags=["tickets"])
    def note(ticket_id: Id, body: NoteIn, who: Operator) -> dict[str, Any]:
        done = act(
            lambda: ctx.tickets.add_note(ticket_id, who, body.note),
            who, "noted", ticket_id, body.note,
        )  # fmt: skip
        return done

    @routes.get(f"{API}/root-causes", tags=["tickets"])
    def root_causes(_: Actor) -> list[str]:
        return list(ctx.config.tickets.root_causes)
