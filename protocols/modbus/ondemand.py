"""Engineers' on-demand reads (`Driver.poll`): identity, settings, status, events.

These share the link (and its lock) with the pollers, and never move the event-log read
position: an on-demand result is not durable, so it must not count as delivered.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols.driver import (
    EventsResult,
    PolledPoint,
    PollKind,
    PollResult,
    SettingsResult,
    StatusResult,
)
from protocols.modbus import eventlog
from protocols.modbus.poller import DevicePoller
from protocols.observations import Scalar

RECENT_EVENTS = 16


async def on_demand(
    poller: DevicePoller, kind: PollKind, counters: Mapping[str, Scalar]
) -> PollResult:
    """`counters`: the unit's wire counters and its poller's, shown with its status."""
    reads = poller.reads
    if kind == PollKind.IDENTITY:
        return await reads.identity(poller.manufacturer)
    if kind == PollKind.SETTINGS:
        return SettingsResult(await reads.settings(), source="modbus holding registers")
    if kind == PollKind.STATUS:
        return await _status(poller, counters)
    if kind == PollKind.EVENTS:
        return await _events(poller)
    raise ValueError(f"cannot poll {kind!r}")


async def _status(poller: DevicePoller, counters: Mapping[str, Scalar]) -> StatusResult:
    reads = poller.reads
    status = await reads.status()
    measured = await reads.measurements()
    return StatusResult(
        points=tuple(PolledPoint(f"status:{name}", value) for name, value in status.items()),
        measurements=tuple(
            PolledPoint(f"measurement:{m.name}", value, details={"unit": m.unit} if m.unit else {})
            for m, value in measured
        ),
        counters=counters,
    )


async def _events(poller: DevicePoller) -> EventsResult:
    events = poller.events
    if events is None:
        raise ValueError(f"{poller.id}: the profile declares no event log")
    ring = events.ring
    pointer = await events.pointer()
    position = events.position
    newest = min(RECENT_EVENTS, ring.capacity)
    raw = await events.read_slots((pointer - newest) % ring.modulus, newest)
    records = []
    for slot, data in raw:
        if events.decoder.is_blank(data):
            continue
        record = events.decoder.decode(slot, data)
        records.append(
            PolledPoint(
                f"event:{record.code}",
                record.raised,
                device_time=record.device_time,
                cause="spontaneous",  # logged by the relay as it happened
                details={**record.fields, "slot": slot},
            )
        )
    unread = None if position is None else eventlog.pending(ring, position, pointer).unread
    return EventsResult.in_time_order(
        records,
        source="the relay's event log",
        details={"pointer": pointer, "position": position, "unread": unread},
    )
