"""`[snapshots]`: agent-wide defaults for how often identity and settings are re-read.

Each protocol keeps its own per-device keys (`identity_interval_s`, `settings_interval_s`,
where it has them, see its README); a device that does not set one takes the agent-wide
value given here, else its protocol's default. A device's own value always wins, and
nothing else about the device changes.
"""

from __future__ import annotations

from pydantic import Field

from common.config import StrictModel
from protocols.config import DeviceBase


class SnapshotIntervals(StrictModel):
    identity_interval_s: float | None = Field(
        default=None, gt=0, description="identity (firmware) re-read, for devices that poll it"
    )
    settings_interval_s: float | None = Field(
        default=None, gt=0, description="settings re-read, for devices that poll them"
    )

    def apply(self, device: DeviceBase) -> DeviceBase:
        """`device` with the agent-wide intervals for the keys its protocol has and it left
        unset."""
        update = {
            name: value
            for name, value in self.model_dump().items()
            if value is not None
            and name in type(device).model_fields
            and name not in device.model_fields_set
        }
        return device.model_copy(update=update) if update else device
