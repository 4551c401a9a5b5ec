"""REST endpoints of firmware and settings baselines: the fleet's firmware report, each
device's firmware and settings history, and the approvals (engineers), where the token's
name is recorded as who approved. Tagged `lifecycle` in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from center.api.auth import Actor, Engineer
from center.api.context import API, ApiContext
from center.api.limits import DeviceKey, Name, Text
from center.baselines import baselines, inventory
from center.baselines.approvals import ApprovalError, BaselineService


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


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:
    service = BaselineService(ctx.engine, ctx.tickets.tickets, ctx.tickets.endpoints)

    def found(doc: dict[str, Any] | None, site: str, device_id: str) -> dict[str, Any]:
        if doc is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {site}/{device_id}")
        return doc

    @routes.get(f"{API}/inventory/firmware", tags=["lifecycle"])
    def fleet_firmware(_: Actor, deviating: Annotated[bool, Query()] = False) -> dict[str, Any]:
        rows: list[dict[str, Any]] = ctx.read(inventory.fleet_report, deviating)
        return {"devices": rows, "versions": inventory.versions_summary(rows)}

    @routes.get(f"{API}/devices/{{site}}/{{device_id}}/firmware", tags=["lifecycle"])
    def device_firmware(site: DeviceKey, device_id: DeviceKey, _: Actor) -> dict[str, Any]:
        return found(ctx.read(inventory.firmware_history, site, device_id), site, device_id)

    @routes.get(f"{API}/devices/{{site}}/{{device_id}}/settings", tags=["lifecycle"])
    def device_settings(site: DeviceKey, device_id: DeviceKey, _: Actor) -> dict[str, Any]:
        return found(ctx.read(inventory.settings_history, site, device_id), site, device_id)

    @routes.get(f"{API}/baselines/firmware", tags=["lifecycle"])
    def firmware_baselines(_: Actor, model: Name = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ctx.read(baselines.firmware_approvals, model)
        return result

    @routes.post(f"{API}/baselines/firmware", tags=["lifecycle"], status_code=201)
    def approve_firmware(body: FirmwareApproval, who: Engineer) -> dict[str, Any]:
        result = service.approve_firmware(body.model, body.firmware_version, who, body.reason)
        ctx.audit(who, "approve_firmware", f"{body.model} {body.firmware_version}", body.reason)
        return result.document()

    @routes.get(f"{API}/baselines/settings", tags=["lifecycle"])
    def settings_baselines(_: Actor) -> list[dict[str, Any]]:
        found_all: dict[Any, baselines.SettingsBaseline] = ctx.read(
            baselines.all_settings_baselines
        )
        return [baselines.baseline_document(b) for _, b in sorted(found_all.items())]

    @routes.post(f"{API}/baselines/settings", tags=["lifecycle"], status_code=201)
    def approve_settings(body: SettingsApproval, who: Engineer) -> dict[str, Any]:
        try:
            result = service.approve_settings(
                body.site, body.device_id, who, body.reason, body.hash
            )
        except ApprovalError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        ctx.audit(who, "approve_settings", f"{body.site}/{body.device_id}", body.reason)
        return result.document()
