"""The fleet: devices, gateways, the device inventory, and the events they reported."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from center.api.auth import Actor
from center.api.context import API, ApiContext
from center.api.limits import Name, Time
from center.store import queries


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:

    @routes.get(f"{API}/devices", tags=["fleet"])
    def devices(_: Actor, site: Name = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(queries.list_devices, site)
        return result

    @routes.get(f"{API}/gateways", tags=["fleet"])
    def gateways(_: Actor) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(queries.list_gateways)
        return result

    @routes.get(f"{API}/inventory", tags=["fleet"])
    def inventory(_: Actor) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(queries.inventory)
        return result

    @routes.get(f"{API}/events", tags=["fleet"])
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
        result: list[dict[str, Any]] = ctx.read(
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
