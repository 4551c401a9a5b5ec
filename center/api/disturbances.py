"""REST endpoints of disturbance records: list, one record with its analysis, and its
COMTRADE files (`.cfg` + `.dat`) as one zip."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from center.api.auth import Actor
from center.api.context import API, ApiContext
from center.api.limits import Id, IdQuery, Name
from center.disturbance import queries


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:

    @routes.get(f"{API}/disturbances", tags=["disturbances"])
    def records(
        _: Actor,
        site: Name = None,
        device_id: Name = None,
        ticket_id: IdQuery = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(
            queries.list_records, site, device_id, ticket_id, limit
        )
        return result

    @routes.get(f"{API}/disturbances/{{record_id}}", tags=["disturbances"])
    def record(record_id: Id, _: Actor) -> dict[str, Any]:
        doc: dict[str, Any] | None = ctx.read(queries.get_record, record_id)
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no disturbance record {record_id}")
        return doc

    @routes.get(
        f"{API}/disturbances/{{record_id}}/comtrade.zip",
        tags=["disturbances"],
        response_class=Response,
        responses={200: {"content": {"application/zip": {}}}},
    )
    def comtrade_zip(record_id: Id, _: Actor) -> Response:
        found = ctx.read(queries.files, record_id)
        if found is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no complete disturbance record {record_id}"
            )
        return zip_response(*found)


def zip_response(name: str, cfg: bytes, dat: bytes) -> Response:
    """A record's `.cfg` and `.dat` as one zip download (the API's and the console's)."""
    return Response(
        queries.zip_files(name, cfg, dat),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
    )
