"""Firmware reports and settings snapshots as an agent makes them (agent/normalize.py), for
the baseline tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.normalize import content_hash, settings_diff
from gateway import wire
from tests.center.records import T0, Gateway

# The feeder profile's settings metadata (config/profiles/feeder-protection-modbus.toml).
CATEGORIES: dict[str, wire.SettingCategory] = {
    "i_pickup": "protection",
    "t_delay": "protection",
    "ar_enabled": "protection",
    "bay_name": "benign",
}
FEEDER = {"i_pickup": 1.2, "t_delay": 0.3, "ar_enabled": 1, "bay_name": "Feeder 7"}


def firmware(
    gw: Gateway, device: str, version: str, at: datetime = T0, model: str = "FP-300"
) -> wire.FirmwareReport:
    content = {"model": model, "firmware_version": version, "serial": f"SN-{device}"}
    return wire.FirmwareReport(
        **gw._common(device, at),
        manufacturer="Demo Relays",
        model=model,
        serial=f"SN-{device}",
        firmware_version=version,
        hash=content_hash(content),
    )


class SettingsSource:
    """One device's snapshots in order, each with its as-found diff against the last."""

    def __init__(self, gw: Gateway, device: str) -> None:
        self.gw = gw
        self.device = device
        self.previous: dict[str, dict[str, Any]] | None = None

    def snapshot(self, values: dict[str, Any], at: datetime = T0) -> wire.SettingsSnapshot:
        content = {name: {"value": v, "unit": None, "group": "g"} for name, v in values.items()}
        record = wire.SettingsSnapshot(
            **self.gw._common(self.device, at),
            settings={
                k: wire.SettingEntry(**v, category=CATEGORIES.get(k)) for k, v in content.items()
            },
            hash=content_hash(content),
            previous_hash=content_hash(self.previous) if self.previous else None,
            diff=settings_diff(self.previous, content, CATEGORIES),
            reason="connect" if self.previous is None else "device_signalled",
        )
        self.previous = content
        return record
