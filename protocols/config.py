"""Config models shared by every protocol: the common device fields and serial buses.

Each protocol subclasses `DeviceBase` with a `protocol: Literal[...]` tag and its own link
fields. Models are frozen and reject unknown keys; the agent composes them into one
discriminated union (see `agent/config.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.config import ID_PATTERN, StrictModel


class DeviceBase(StrictModel):
    id: str = Field(pattern=ID_PATTERN, description="unique device id within the gateway")
    profile: str = Field(description="device profile name (config/profiles/NAME.toml) or path")
    description: str = ""
    enabled: bool = True
    allow_commands: bool = Field(
        default=False,
        description="the only switch that lets the agent write to this device; off by default",
    )


class SerialBusConfig(StrictModel):
    """One serial port (RS-485 bus) shared by several devices; requests on it are serialised."""

    id: str = Field(pattern=ID_PATTERN)
    port: str = Field(description="device path (/dev/ttyS1) or pyserial URL (socket://host:port)")
    baudrate: int = Field(default=9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    timeout_ms: int = Field(default=500, gt=0, description="per-request answer timeout")
