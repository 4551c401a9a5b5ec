"""A disturbance record as the agent sends it (manifest + chunks, numbered like its outbox)
and a relay's fault report, for the center's intake tests and the console's tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from agent.disturbance import transfer_records
from agent.normalize import DeviceContext
from gateway import wire
from protocols.profile_loader import load_named
from tests.center.records import T0, Gateway
from tests.support.disturbance_synth import Fault, observation

CTX = DeviceContext("north", "gw1", "line1", "iec103", load_named("line-protection"))
TRIGGER = T0 + timedelta(milliseconds=1021)  # the seed's line1 trip


def transfer(
    gw: Gateway, chunk_bytes: int = 2048, fault: Fault | None = None, **manifest: Any
) -> tuple[wire.DisturbanceRecord, list[wire.DisturbanceChunk]]:
    """A record as the agent's outbox would number it: the chunks carry the manifest's id."""
    obs = observation(fault or Fault(trigger_time=TRIGGER), device_id="line1")
    m, chunks = transfer_records(CTX, obs, T0, chunk_bytes)
    ids = {"session": gw.session, "seq": next(gw._seq)}
    return m.model_copy(update={**ids, **manifest}), [c.model_copy(update=ids) for c in chunks]


def fault_report(
    gw: Gateway, device: str = "line1", at: datetime = TRIGGER, **currents: float
) -> wire.FaultReport:
    """A Modbus relay's fault report block: phase A to ground, 12.4 km, trip in 58 ms."""
    return wire.FaultReport(
        **gw._common(device, at),
        fault_time=at,
        fault_type="AG",
        phases=["A", "N"],
        distance_km=12.4,
        trip_time_ms=58,
        currents_a=currents or {"A": 2950.0},
    )
