"""A gateway that goes quiet without a will: found silent when its health records stop.

The broker's will covers an agent that dies while the broker lives. It does not cover a
broker that dies (the will dies with it), a broker that restarts and forgets the session,
or an agent whose uplink stalls while its MQTT pings keep the connection up (a whole
agent that hangs stops pinging, and the broker sends its will). What does: births and
health records say how often health records come (`health_interval_s`), and each one
heard moves the gateway's `silent_due` to `silent_after_intervals` intervals later.

The ticket tick finds a gateway still online whose due time passed: it is marked offline
(`online` false, `silent_since` set) and its `site_comms` condition is raised, the same
ticket a will opens. Its next birth or health record clears it. A death stops the watch
(the gateway said it is gone). Agents that do not send their interval are not watched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select, update

from center.device_time import record_time
from center.store import schema as s
from center.store.records import Lifecycle
from center.tickets.model import SITE_COMMS, Signal
from gateway import wire

g = s.gateways.c


@dataclass(frozen=True)
class DueGateway:
    gateway_id: str
    site: str
    last_seen: datetime


def _signal(site: str, gateway_id: str, raised: bool, at: datetime, summary: str) -> Signal:
    return Signal(
        site=site,
        subject=f"@{gateway_id}",
        device_id=None,
        gateway_id=gateway_id,
        fault_class=SITE_COMMS,
        mode="condition",
        raised=raised,
        severity="major",
        at=at,
        summary=summary,
    )


def _utc(at: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they are stored in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def after_lifecycle(
    conn: Connection, stored: Sequence[tuple[Lifecycle, bool]], now: datetime, intervals: int
) -> list[Signal]:
    """Move the watch on for the current lifecycle records just stored; a health record
    from a silent gateway clears its condition (a birth clears it by itself)."""
    signals = []
    for r, current in stored:
        if not current:
            continue
        where = g.gateway_id == r.gateway_id
        if isinstance(r, wire.Death):
            conn.execute(update(s.gateways).where(where).values(silent_due=None, silent_since=None))
            continue
        every = r.health_interval_s
        due = now + timedelta(seconds=intervals * every) if every else None
        silent_since = conn.execute(select(g.silent_since).where(where)).scalar()
        conn.execute(update(s.gateways).where(where).values(silent_due=due, silent_since=None))
        if silent_since is not None and isinstance(r, wire.Health):
            signals.append(
                _signal(
                    r.site,
                    r.gateway_id,
                    False,
                    record_time(r),
                    f"gateway {r.gateway_id} heard again (health, connection {r.connection}) "
                    f"after silence since {_utc(silent_since):%Y-%m-%d %H:%M:%S}Z",
                )
            )
    return signals


def due(conn: Connection, now: datetime) -> list[DueGateway]:
    """Online gateways whose next birth or health record is overdue."""
    rows = conn.execute(
        select(g.gateway_id, g.site, g.last_seen).where(
            g.online.is_(True), g.silent_since.is_(None), g.silent_due <= now
        )
    )
    return [DueGateway(r.gateway_id, r.site, _utc(r.last_seen)) for r in rows]


def mark_silent(
    conn: Connection, gateways: Sequence[DueGateway], now: datetime, intervals: int
) -> list[Signal]:
    """Mark them offline and raise their site comms; call under the site's lock. A record
    that arrived since `due` was read has moved the due time on: that gateway is skipped."""
    signals = []
    for gw in gateways:
        marked = conn.execute(
            update(s.gateways)
            .where(
                g.gateway_id == gw.gateway_id,
                g.online.is_(True),
                g.silent_since.is_(None),
                g.silent_due <= now,
            )
            .values(online=False, silent_since=now, silent_due=None)
        ).rowcount
        if marked:
            summary = (
                f"gateway {gw.gateway_id} silent: no birth or health record since "
                f"{gw.last_seen:%Y-%m-%d %H:%M:%S}Z ({intervals} health intervals)"
            )
            signals.append(_signal(gw.site, gw.gateway_id, True, gw.last_seen, summary))
    return signals
