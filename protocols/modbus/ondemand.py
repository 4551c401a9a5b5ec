"""Engineers' on-demand reads (`Driver.poll`): identity, settings, status, events.

These share the link (and its lock) with the pollers, and never move the event-log read
position: an on-demand result is not durable, so it must not count as delivered.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from protocols.modbus import eventlog
from protocols.modbus.poller import DevicePoller

RECENT_EVENTS = 16


async def on_demand(poller: DevicePoller, what: str) -> dict[str, Any]:
    reads = poller.reads
    if what == "identity":
        return asdict(await reads.identity())
    if what == "settings":
        return {"settings": [asdict(s) for s in await reads.settings()]}
    if what == "status":
        return {"status": await reads.status()}
    if what == "measurements":
        return {"measurements": {m.name: v for m, v in await reads.measurements()}}
    if what == "events":
        return await _events(poller)
    raise ValueError(f"cannot poll {what!r}: identity, settings, status, measurements, events")


async def _events(poller: DevicePoller) -> dict[str, Any]:
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
            {
                "slot": slot,
                "code": record.code,
                "raised": record.raised,
                "device_time": record.device_time.isoformat() if record.device_time else None,
                "fields": dict(record.fields),
            }
        )
    unread = None if position is None else eventlog.pending(ring, position, pointer).unread
    return {"pointer": pointer, "position": position, "unread": unread, "recent": records}
