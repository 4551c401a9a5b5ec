"""Maintenance windows: the configured ones and those added through the API (admins only),
during which a site's or device's events are recorded but open no ticket."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from center.api.auth import Actor, Admin
from center.api.context import API, ApiContext
from center.api.limits import Id, LongText, Text, Time
from center.store import queries
from gateway import wire


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(pattern=wire.TOPIC_SAFE)
    device_id: str | None = Field(default=None, pattern=wire.TOPIC_SAFE)
    starts_at: Time
    ends_at: Time
    reason: Text = Field(default="", max_length=LongText)


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:

    @routes.get(f"{API}/maintenance", tags=["maintenance"])
    def windows(_: Actor) -> list[dict[str, Any]]:
        configured = [
            {**m.model_dump(mode="json"), "id": None, "created_by": "config"}
            for m in ctx.config.maintenance
        ]
        stored: list[dict[str, Any]] = ctx.read(queries.list_windows)
        return configured + stored

    @routes.post(f"{API}/maintenance", tags=["maintenance"], status_code=201)
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

    @routes.delete(f"{API}/maintenance/{{window_id}}", tags=["maintenance"], status_code=204)
    def delete_window(window_id: Id, who: Admin) -> None:
        with ctx.engine.begin() as conn:
            if not queries.delete_window(conn, window_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no window {window_id}")
        ctx.audit(who, "window_delete", f"window {window_id}")
