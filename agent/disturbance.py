"""Disturbance records and fault reports to wire records: pure functions, no I/O.

A `DisturbanceObservation` (a whole record the driver transferred) becomes COMTRADE
(`gateway/comtrade.py`), then one `disturbance` manifest (metadata, sizes, SHA-256) and
the `disturbance_chunk` records that carry `.cfg` + `.dat` in order. The pipeline appends
them in one outbox commit, the chunks in the bulk lane, so the record is durable before
the driver acknowledges it to the relay and survives restarts and broker outages.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from agent.normalize import DeviceContext, record_ids
from gateway import comtrade, wire
from protocols.observations import (
    DigitalChannel,
    DisturbanceObservation,
    FaultReportObservation,
)

# 32 KiB of content per chunk (~44 KB of JSON): on a 1 Mbit/s cellular uplink a trip waits
# at most ~0.35 s behind the chunk in flight.
DEFAULT_CHUNK_BYTES = 32 * 1024
# IEC 103 records carry no line frequency; a driver may give one in `details`.
DEFAULT_LINE_FREQUENCY_HZ = 50.0


def comtrade_record(ctx: DeviceContext, obs: DisturbanceObservation) -> comtrade.Record:
    frequency = obs.details.get("line_frequency_hz", DEFAULT_LINE_FREQUENCY_HZ)
    return comtrade.Record(
        station=ctx.site,
        device=ctx.device_id,
        start_time=obs.first_sample_time,
        trigger_time=obs.trigger_time,
        sample_rate_hz=1e6 / obs.sample_interval_us,
        line_frequency_hz=float(frequency) if isinstance(frequency, int | float) else 50.0,
        analog=tuple(
            comtrade.AnalogTrace(
                name=ch.name,
                unit=ch.unit,
                phase=ch.phase or "",
                a=ch.scale,
                b=0.0,
                primary=ch.primary,
                secondary=ch.secondary,
                samples=ch.samples,
            )
            for ch in obs.analog
        ),
        digital=tuple(_status_trace(ctx, ch) for ch in obs.digital),
    )


def _status_trace(ctx: DeviceContext, ch: DigitalChannel) -> comtrade.DigitalTrace:
    """A status channel named by the profile's point ("trip_phase_a", "breaker_closed"),
    which is what an engineer and the center's analysis look for; the driver's name (the
    point's address, e.g. "128/69") stays in the channel's ccbm field."""
    point = ctx.profile.point(ch.name)
    name = point.name if point is not None else ch.name
    return comtrade.DigitalTrace(name, ch.initial, ch.changes, ccbm=ch.name)


def transfer_records(
    ctx: DeviceContext,
    obs: DisturbanceObservation,
    now: datetime,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[wire.DisturbanceRecord, list[wire.DisturbanceChunk]]:
    """The manifest and its chunks. Raises comtrade.ComtradeError for a record COMTRADE
    cannot hold (the caller reports it as a condition rather than losing it silently)."""
    record = comtrade_record(ctx, obs)
    cfg, dat = comtrade.write(record)
    content = cfg + dat
    pieces = [content[i : i + chunk_bytes] for i in range(0, len(content), chunk_bytes)]
    common = record_ids(ctx, now)
    manifest = wire.DisturbanceRecord(
        **common,
        fault_number=obs.fault_number,
        trigger_time=obs.trigger_time,
        first_sample_time=obs.first_sample_time,
        sample_rate_hz=record.sample_rate_hz,
        samples=record.samples,
        analog_channels=[ch.name for ch in record.analog],
        digital_channels=[ch.name for ch in record.digital],  # as in the COMTRADE
        cfg_bytes=len(cfg),
        dat_bytes=len(dat),
        sha256=hashlib.sha256(content).hexdigest(),
        chunks=len(pieces),
        details=dict(obs.details),
    )
    chunks = [
        wire.DisturbanceChunk(**common, index=i, data=base64.b64encode(piece).decode())
        for i, piece in enumerate(pieces)
    ]
    return manifest, chunks


def fault_report_record(
    ctx: DeviceContext, obs: FaultReportObservation, now: datetime
) -> wire.FaultReport:
    return wire.FaultReport(
        site=ctx.site,
        gateway_id=ctx.gateway_id,
        device_id=ctx.device_id,
        session=0,
        seq=0,
        gateway_time=now,
        fault_time=obs.fault_time,
        fault_type=obs.fault_type,
        phases=[p for p in obs.phases if p in ("A", "B", "C", "N")],  # type: ignore[misc]
        distance_km=obs.distance_km,
        trip_time_ms=obs.trip_time_ms,
        currents_a=dict(obs.currents_a),
        details=dict(obs.details),
    )
