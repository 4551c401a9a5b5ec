"""REST endpoints of the lifecycle, with the API's bearer-token auth: the token's name is
recorded as who approved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from center.api import API, Actor, ApiContext, Engineer
from center.api_limits import DeviceKey, Name, Text
from center.lifecycle import baselines, inventory
from center.lifecycle.approvals import ApprovalError, BaselineService


class FirmwareApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Text = Field(min_length=1, max_length=128)
    firmware_version: Text = Field(min_length=1, max_length=128)
    reason: Text = Field(min_length=1, max_length=4000)


class SettingsApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: Text = Field(max_length=64)
    device_id: Text = Field(max_length=64)
    hash: Text | None = Field(
        default=None, max_length=64, description="default: the newest snapshot"
    )
    reason: Text = Field(min_length=1, max_length=4000)


def add_routes(app: FastAPI, ctx: ApiContext) -> None:
    service = BaselineService(ctx.engine, ctx.tickets.tickets, ctx.tickets.endpoints)

    def read(fn: Any, *args: Any, **kwargs: Any) -> Any:
        with ctx.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def found(doc: dict[str, Any] | None, site: str, device_id: str) -> dict[str, Any]:
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {site}/{device_id}")
        return doc

    @app.get(f"{API}/inventory/firmware", tags=["lifecycle"])
    def fleet_firmware(_: Actor, deviating: Annotated[bool, Query()] = False) -> dict[str, Any]:
        rows: list[dict[str, Any]] = read(inventory.fleet_report, deviating)
        return {"devices": rows, "versions": inventory.versions_summary(rows)}

    @app.get(f"{API}/devices/{{site}}/{{device_id}}/firmware", tags=["lifecycle"])
    def device_firmware(site: DeviceKey, device_id: DeviceKey, _: Actor) -> dict[str, Any]:
        return found(read(inventory.firmware_history, site, device_id), site, device_id)

    @app.get(f"{API}/devices/{{site}}/{{device_id}}/settings", tags=["lifecycle"])
    def device_settings(site: DeviceKey, device_id: DeviceKey, _: Actor) -> dict[str, Any]:
        return found(read(inventory.settings_history, site, device_id), site, device_id)

    @app.get(f"{API}/baselines/firmware", tags=["lifecycle"])
    def firmware_baselines(_: Actor, model: Name = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = read(baselines.firmware_approvals, model)
        return result

    @app.post(f"{API}/baselines/firmware", tags=["lifecycle"], status_code=201)
    def approve_firmware(body: FirmwareApproval, who: Engineer) -> dict[str, Any]:
        result = service.approve_firmware(body.model, body.firmware_version, who, body.reason)
        ctx.audit(who, "approve_firmware", f"{body.model} {body.firmware_version}", body.reason)
        return result.document()

    @app.get(f"{API}/baselines/settings", tags=["lifecycle"])
    def settings_baselines(_: Actor) -> list[dict[str, Any]]:
        found_all: dict[Any, baselines.SettingsBaseline] = read(baselines.all_settings_baselines)
        return [baselines.baseline_document(b) for _, b in sorted(found_all.items())]

    @app.post(f"{API}/baselines/settings", tags=["lifecycle"], status_code=201)
    def approve_settings(body: SettingsApproval, who: Engineer) -> dict[str, Any]:
        try:
            result = service.approve_settings(
                body.site, body.device_id, who, body.reason, body.hash
            )
        except ApprovalError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        ctx.audit(who, "approve_settings", f"{body.site}/{body.device_id}", body.reason)
        return result.document()
