"""The `[[devices]]` keys of a Modbus relay.

Three transports, one model:

- `transport = "tcp"`: `host`, `port`, `unit_id`. Devices behind the same `host:port` (a
  Modbus TCP gateway) share one connection and one driver.
- `transport = "rtu"`: `bus = "<bus id>"`, `unit_id`. The bus (`[[buses]]`) is a serial
  port, or a pyserial URL `socket://host:port` for RTU framing over TCP (serial-to-Ethernet
  converters). Devices on one bus share one driver, which serialises their requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from protocols.config import DeviceBase


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = Field(default=None, description="tcp: the relay's or gateway's host")
    port: int = Field(default=502, gt=0, lt=65536, description="tcp: the TCP port")
    bus: str | None = Field(default=None, description="rtu: the id of a [[buses]] entry")
    unit_id: int = Field(default=1, ge=0, le=255, description="Modbus unit (slave) id")
    timeout_ms: int | None = Field(
        default=None, gt=0, description="answer timeout for this unit; default: the bus's, or 1000"
    )
    retries: int = Field(default=1, ge=0, le=5, description="re-asks before a unit counts as down")
    backoff_min_s: float = Field(default=1.0, gt=0, description="first wait after a unit failed")
    backoff_max_s: float = Field(default=60.0, gt=0)
    events_interval_s: float = Field(default=1.0, gt=0, description="event-log poll interval")
    status_interval_s: float = Field(default=1.0, gt=0)
    measurements_interval_s: float = Field(default=5.0, gt=0)
    identity_interval_s: float = Field(default=3600.0, gt=0)
    settings_interval_s: float = Field(default=600.0, gt=0)
    initial_events: Literal["all", "new"] = Field(
        default="all",
        description="first contact, no stored read position: read the records already in the "
        "ring ('all') or only those written from now on ('new')",
    )
    state_file: Path | None = Field(
        default=None,
        description="where the event-log read position is kept across restarts; default "
        "(in the agent): <state_dir>/modbus/<device id>.json",
    )
    near_full_ratio: float = Field(
        default=0.8, gt=0, le=1, description="warn when unread records reach this share of capacity"
    )

    @model_validator(mode="after")
    def _transport_fields(self) -> ModbusDevice:
        if self.transport == "tcp":
            if not self.host:
                raise ValueError("transport 'tcp' needs 'host'")
            if self.bus is not None:
                raise ValueError("'bus' is for transport 'rtu'; a tcp device takes 'host'")
        else:
            if not self.bus:
                raise ValueError("transport 'rtu' needs 'bus' (the id of a [[buses]] entry)")
            if self.host is not None:
                raise ValueError(
                    "'host' is for transport 'tcp'; for RTU over TCP give the bus "
                    "port = 'socket://host:port'"
                )
            if not 1 <= self.unit_id <= 247:
                raise ValueError("an RTU unit_id must be 1..247")
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must be >= backoff_min_s")
        return self

    @property
    def link_key(self) -> str:
        """Devices with equal keys share a driver: one TCP peer, or one serial bus."""
        if self.transport == "tcp":
            return f"modbus:tcp:{self.host}:{self.port}"
        return f"modbus:bus:{self.bus}"
