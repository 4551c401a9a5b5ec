"""Whether a message's trips can adopt anything: one question instead of two per trip.

A trip or start adopts the site's complete disturbance records and fault reports that
have no ticket yet and lie within the grouping window of its time
(`DisturbanceIntake._adopt_orphans`, two queries per trip). Nearly always there are none.
When the message holds no manifest or report of its own (nothing it stores could become
an orphan on the way) and one site's trips, a single question over the span of all its
trips says so for all of them: if nothing lies within [first - window, last + window],
no trip's own window holds anything either, and nothing is written meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TypeGuard

from sqlalchemy import Connection, exists, or_, select

from center.device_time import event_time
from center.store import schema as s
from gateway import wire


def adopting(r: wire.Record) -> TypeGuard[wire.Event]:
    """A record that looks for orphans to adopt: an active trip or start."""
    return isinstance(r, wire.Event) and r.signal in ("trip", "start") and r.active


def none_to_adopt(conn: Connection, new: Sequence[wire.Record], window: timedelta) -> bool:
    """True when no trip of `new` would adopt anything (then none need ask); False when
    some might, or when this cannot tell (each trip then asks as before)."""
    trips = [r for r in new if adopting(r)]
    if not trips:
        return True
    if any(isinstance(r, wire.DisturbanceRecord | wire.FaultReport) for r in new):
        return False
    if len({r.site for r in trips}) != 1:
        return False
    times = [event_time(r) for r in trips]
    low, high = min(times) - window, max(times) + window
    d, f = s.disturbance_records.c, s.fault_reports.c
    records = select(d.id).where(
        d.site == trips[0].site,
        d.status == "complete",
        d.ticket_id.is_(None),
        d.trigger_time.between(low, high),
    )
    reports = select(f.id).where(
        f.site == trips[0].site, f.ticket_id.is_(None), f.fault_time.between(low, high)
    )
    return not conn.execute(select(or_(exists(records), exists(reports)))).scalar()
