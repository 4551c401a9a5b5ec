"""Builders of wire records and envelopes for center tests, as an agent would send them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from center.ingest import Message
from gateway import wire

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


class Gateway:
    """Numbers records like an agent's outbox: one session, seq from 1."""

    def __init__(self, site: str = "north", gateway_id: str = "gw1", session: int = 1) -> None:
        self.site = site
        self.gateway_id = gateway_id
        self.session = session
        self._seq = count(1)
        self.connection = 0

    def _common(self, device: str | None, at: datetime) -> dict[str, Any]:
        return {
            "site": self.site,
            "gateway_id": self.gateway_id,
            "device_id": device,
            "session": self.session,
            "seq": next(self._seq),
            "gateway_time": at,
        }

    def event(
        self,
        device: str,
        point: str,
        value: wire.Scalar = True,
        at: datetime = T0,
        signal: str = "trip",
        severity: str = "critical",
        **extra: Any,
    ) -> wire.Event:
        return wire.Event(
            **self._common(device, at),
            address=extra.pop("address", "1011"),
            point=point,
            label=extra.pop("label", point),
            signal=signal,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            value=value,
            device_time=at,
            **extra,
        )

    def alarm(
        self, device: str | None, code: str, state: str = "raised", at: datetime = T0
    ) -> wire.Alarm:
        return wire.Alarm(
            **self._common(device, at),
            code=code,
            state=state,  # type: ignore[arg-type]
            severity="major",
            message=f"{code} {state} on {device}",
        )

    def _lifecycle(self, at: datetime) -> dict[str, Any]:
        """Lifecycle records carry the highest seq so far and the connection number."""
        seq = next(self._seq) - 1
        return {
            "site": self.site,
            "gateway_id": self.gateway_id,
            "session": self.session,
            "seq": seq,
            "gateway_time": at,
            "connection": self.connection,
        }

    def birth(self, at: datetime = T0, health_interval_s: float | None = None) -> wire.Birth:
        self.connection += 1
        return wire.Birth(
            **self._lifecycle(at), agent_version="test", health_interval_s=health_interval_s
        )

    def health(self, at: datetime = T0, health_interval_s: float | None = 60.0) -> wire.Health:
        return wire.Health(**self._lifecycle(at), health_interval_s=health_interval_s)

    def death(self, at: datetime = T0) -> wire.Death:
        return wire.Death(**self._lifecycle(at))


def message(*records: Any) -> Message:
    """One envelope of records of one topic (like the agent's uplink packs them)."""
    first = records[0]
    name = wire.topic(first.site, first.gateway_id, first.kind, first.device_id)
    return Message(name, wire.encode_records(list(records)))


def seed_records(gw: Gateway, t0: datetime = T0) -> list[wire.Event]:
    """The seed scenario as the agent forwards it (config/scenarios/seed-phase-a-fault.toml)."""

    def ms(n: int) -> datetime:
        return t0 + timedelta(milliseconds=n)

    status = {"signal": "status", "severity": "major"}
    start = {"signal": "start", "severity": "major"}
    return [
        gw.event("line1", "breaker_closed", True, ms(0), signal="status", severity="info"),
        gw.event("line1", "start", True, ms(1000), **start),
        gw.event("line2", "start", True, ms(1003), **start),
        gw.event("line1", "trip_phase_a", True, ms(1021), phase="A"),
        gw.event("line2", "trip_phase_a", True, ms(1024), phase="A"),
        gw.event("busbar", "bf_init_phase_a", True, ms(1027), phase="A", **start),
        gw.event("line1", "breaker_closed", False, ms(1065), signal="status", severity="info"),
        gw.event("line1", "trip_phase_a", False, ms(1080), phase="A"),
        gw.event("line2", "trip_phase_a", False, ms(1082), phase="A"),
        gw.event("busbar", "bf_init_phase_a", False, ms(1085), phase="A", **start),
        gw.event("line1", "start", False, ms(1100), **start),
        gw.event("line2", "start", False, ms(1102), **start),
        gw.event("line1", "reclose", True, ms(1900), **status),
        gw.event("line1", "breaker_closed", True, ms(1905), signal="status", severity="info"),
        gw.event("line1", "reclose", False, ms(2100), **status),
    ]


def clock_readings(gw: Gateway, offsets_ms: Sequence[float], device: str = "line2") -> list[Any]:
    """A relay reporting a status change every 10 minutes (spontaneous), its clock off by
    each offset in turn: device time = the gateway's receive time + offset."""
    out = []
    for i, offset in enumerate(offsets_ms):
        at = T0 + timedelta(minutes=10 * (i + 1))
        e = gw.event(device, "local_control", i % 2 == 0, at, signal="status", severity="info")
        late = at + timedelta(milliseconds=offset)
        out.append(e.model_copy(update={"device_time": late, "cause": "spontaneous"}))
    return out
