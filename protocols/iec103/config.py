"""The `[[devices]]` keys of an IEC 103 relay, and the `[iec103]` section of its profile."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from common.config import ID_PATTERN, StrictModel
from protocols.config import DeviceBase


class Iec103Device(DeviceBase):
    protocol: Literal["iec103"]
    bus: str = Field(pattern=ID_PATTERN, description="id of a [[buses]] entry (RS-485 port)")
    link_address: int = Field(ge=0, le=254, description="FT1.2 link address (255 = broadcast)")
    common_address: int = Field(ge=0, le=254, description="ASDU common address")
    # Time sync (ASDU 6) sets the relay's clock: a write, so it needs allow_commands.
    time_sync: bool = False
    read_settings: bool = Field(default=True, description="read settings by generic services")
    disturbance_records: bool = Field(
        default=True,
        description="fetch each disturbance record the relay announces (ASDUs 23-31, read-only)",
    )
    poll_interval_ms: int = Field(
        default=100, ge=0, description="minimum time between class-2 polls of this relay"
    )
    retries: int = Field(default=2, ge=0, le=5, description="repeats (same FCB) per request")
    offline_retry_s: float = Field(
        default=5.0, gt=0, description="how often a silent relay is tried again"
    )
    settings_interval_s: float = Field(
        default=3600.0, ge=0, description="periodic settings read; 0 = only after reset"
    )
    measurand_interval_s: float = Field(
        default=10.0, ge=0, description="forward a relay's measurands at most this often"
    )

    @model_validator(mode="after")
    def _time_sync_is_a_command(self) -> Iec103Device:
        if self.time_sync and not self.allow_commands:
            raise ValueError("time_sync = true writes the relay's clock: set allow_commands = true")
        return self


class Iec103ProfileSection(StrictModel):
    """`[iec103]` in a profile: measurand scale factors, because a 103 measurand is a fraction
    of the relay's range (1.2 or 2.4 x rated) and only the profile knows the rating."""

    scale: dict[str, float] = Field(
        default_factory=dict, description='measurand address ("160/148.1") -> factor'
    )

    @model_validator(mode="after")
    def _measurand_addresses(self) -> Iec103ProfileSection:
        # Only measurand values ("<fun>/<inf>.<n>") are scaled: any other key would be a
        # factor that never applies.
        bad = [a for a in self.scale if not re.fullmatch(r"\d{1,3}/\d{1,3}\.\d{1,2}", a)]
        if bad:
            raise ValueError(f"scale: expected measurand addresses <fun>/<inf>.<n> (found: {bad})")
        return self
