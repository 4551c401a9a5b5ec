"""The `[[devices]]` keys of an IEC 104 relay."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from protocols.config import DeviceBase


class Iec104Device(DeviceBase):
    protocol: Literal["iec104"]
    host: str
    port: int = Field(default=2404, gt=0, lt=65536)
    common_address: int = Field(ge=1, le=65534)
    originator_address: int = Field(default=0, ge=0, le=255)
    tick_rate_ms: int = Field(default=100, ge=50)
    command_timeout_ms: int = Field(default=5000, ge=100)
    interrogation_timeout_s: float = Field(default=30.0, gt=0)
    # How long the first connection may take before the driver gives up (LinkError) and the
    # supervisor's backoff takes over.
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # Identity and settings (only when the profile's [iec104] section maps points for them):
    # read after every connect, when the relay signals a change, and re-read by a general
    # interrogation at these periods. Unset: the agent's [snapshots] value, else these.
    identity_interval_s: float = Field(default=3600.0, gt=0)
    settings_interval_s: float = Field(default=600.0, gt=0)
    # Clock synchronisation sets the relay's clock: a write, so it needs allow_commands.
    clock_sync: bool = False

    @model_validator(mode="after")
    def _clock_sync_is_a_command(self) -> Iec104Device:
        if self.clock_sync and not self.allow_commands:
            raise ValueError(
                "clock_sync = true writes the relay's clock: set allow_commands = true"
            )
        return self
