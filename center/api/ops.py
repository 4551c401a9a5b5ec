"""Operations: sequence gaps, rejected messages, the quarantine, and the center's counters
and database statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from center import quarantine
from center.api.auth import Actor
from center.api.context import API, ApiContext
from center.api.limits import Id, Name
from center.store import queries


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:

    @routes.get(f"{API}/gaps", tags=["ops"])
    def gaps(_: Actor) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(queries.list_gaps)
        return result

    @routes.get(f"{API}/rejected", tags=["ops"])
    def rejected(
        _: Actor, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(queries.list_rejected, limit)
        return result

    @routes.get(f"{API}/quarantine", tags=["ops"])
    def quarantined(
        _: Actor,
        reason: Name = None,
        gateway_id: Name = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Records and messages set apart, newest first, without their content."""
        result: list[dict[str, Any]] = ctx.read(
            quarantine.list_quarantine, limit, reason, gateway_id
        )
        return result

    @routes.get(f"{API}/quarantine/{{item_id}}", tags=["ops"])
    def quarantined_item(item_id: Id, _: Actor) -> dict[str, Any]:
        """One entry with its content as received (`content_base64` when not UTF-8)."""
        doc: dict[str, Any] | None = ctx.read(quarantine.get_quarantined, item_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantine entry {item_id}")
        return doc

    @routes.get(f"{API}/stats", tags=["ops"])
    def stats(_: Actor) -> dict[str, Any]:
        db: dict[str, Any] = ctx.read(queries.stats)
        db["quarantine_by_reason"] = ctx.read(quarantine.counts_by_reason)
        return {
            "counters": ctx.counters.snapshot(),
            "event_to_ticket_ms": ctx.counters.latency_ms(),
            "database": db,
            "service": ctx.status(),
        }
