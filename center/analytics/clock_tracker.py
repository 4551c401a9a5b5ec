"""Clock quality at ingest: each batch's spontaneous events update their relays' clock
state (one read and one upsert per batch), and a relay whose verdict turns bad or good
raises or clears its `clock_quality` condition through the ticket engine, in the batch's
transaction. The condition then resolves like any other once the clear has held."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select

from center.analytics.clock import (
    SPONTANEOUS,
    TIME_SYNC,
    ClockState,
    Reading,
    evaluate,
    figures,
    fold,
)
from center.analytics.config import ClockConfig
from center.store import schema as s
from center.store.db import as_utc, insert
from center.store.ticket_repo import TicketUnitOfWork
from center.tickets.engine import TicketEngine
from center.tickets.model import CLOCK_QUALITY, Signal
from gateway import wire

Key = tuple[str, str]
_STATE_COLUMNS = (
    "gateway_id",
    "samples",
    "recent_flags",
    "timed_events",
    "invalid_events",
    "substituted_events",
    "summer_time_events",
    "last_event_at",
    "last_sync_at",
    "last_sync_valid",
    "sample_count",
    "p50_ms",
    "p95_abs_ms",
    "drift_ms_per_day",
    "verdict",
    "bad",
    "summary",
    "updated_at",
)


# Built once: a statement built per batch costs more than the query (site and device
# lists, then the exact pairs in Python).
_c = s.clock_quality.c
_SELECT_STATES = select(s.clock_quality).where(
    _c.site.in_(bindparam("sites", expanding=True)),
    _c.device_id.in_(bindparam("devices", expanding=True)),
)
# What a record's cause says about its time tag: a spontaneous event's tag is the relay's
# clock at the change; a 103 relay's answer to a time sync (raw cause "time_sync") says
# whether it took the sync. Everything else (interrogation answers, polls) is skipped.
_SYNC_RAW = {TIME_SYNC, "TIME_SYNC"}


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def state_from_row(row: Any) -> ClockState:
    return ClockState(
        site=row["site"],
        device_id=row["device_id"],
        gateway_id=row["gateway_id"],
        samples=[(t, o) for t, o in json.loads(row["samples"])],
        recent_flags=row["recent_flags"],
        timed_events=row["timed_events"],
        invalid_events=row["invalid_events"],
        substituted_events=row["substituted_events"],
        summer_time_events=row["summer_time_events"],
        last_event_at=as_utc(row["last_event_at"]),
        last_sync_at=as_utc(row["last_sync_at"]),
        last_sync_valid=row["last_sync_valid"],
        verdict=row["verdict"],
        bad=row["bad"],
        summary=row["summary"],
    )


def state_row(st: ClockState, now: datetime) -> dict[str, Any]:
    figs = figures(st)
    return {
        "site": st.site,
        "device_id": st.device_id,
        "gateway_id": st.gateway_id,
        "samples": json.dumps(st.samples, separators=(",", ":")),
        "recent_flags": st.recent_flags,
        "timed_events": st.timed_events,
        "invalid_events": st.invalid_events,
        "substituted_events": st.substituted_events,
        "summer_time_events": st.summer_time_events,
        "last_event_at": st.last_event_at,
        "last_sync_at": st.last_sync_at,
        "last_sync_valid": st.last_sync_valid,
        "sample_count": figs.sample_count,
        "p50_ms": figs.p50_ms,
        "p95_abs_ms": figs.p95_abs_ms,
        "drift_ms_per_day": figs.drift_ms_per_day,
        "verdict": st.verdict,
        "bad": st.bad,
        "summary": st.summary,
        "updated_at": now,
    }


class ClockQualityTracker:
    def __init__(self, config: ClockConfig, tickets: TicketEngine) -> None:
        self.config = config
        self.tickets = tickets
        self._upserts: dict[str, Any] = {}

    def _upsert(self, conn: Connection) -> Any:
        name = conn.dialect.name
        if name not in self._upserts:
            stmt = insert(s.clock_quality, conn)
            self._upserts[name] = stmt.on_conflict_do_update(
                index_elements=["site", "device_id"],
                set_={c: getattr(stmt.excluded, c) for c in _STATE_COLUMNS},
            )
        return self._upserts[name]

    def on_records(
        self, conn: Connection, uow: TicketUnitOfWork, records: Sequence[wire.Record]
    ) -> None:
        """Newly stored records of one transaction (duplicates never get here): one read
        and one upsert of the relays they touch."""
        if not self.config.enabled:
            return
        readings: dict[Key, list[Reading]] = {}
        gateways: dict[Key, str] = {}
        for r in records:  # every new record passes here: cheap checks first, plain tuples
            if type(r) is not wire.Event or r.device_id is None:
                continue
            if r.cause == SPONTANEOUS:
                sync = False
            elif r.cause_raw in _SYNC_RAW:
                sync = True
            else:
                continue
            key = (r.site, r.device_id)
            device_at = r.device_time
            if device_at is not None and device_at.tzinfo is None:
                device_at = device_at.replace(tzinfo=UTC)
            found = (_utc(r.gateway_time), device_at, r.device_time_flags, sync)
            if key in readings:
                readings[key].append(found)
            else:
                readings[key] = [found]
                gateways[key] = r.gateway_id
        if not readings:
            return
        rows = conn.execute(
            _SELECT_STATES,
            {"sites": sorted({k[0] for k in readings}),
             "devices": sorted({k[1] for k in readings})},
        ).mappings()  # fmt: skip
        states = {
            (row["site"], row["device_id"]): state_from_row(row)
            for row in rows
            if (row["site"], row["device_id"]) in readings
        }
        out = []
        for key, batch in readings.items():
            before = states.get(key) or ClockState(key[0], key[1], gateways[key])
            before.gateway_id = gateways[key]
            after, change = evaluate(fold(before, batch, self.config), self.config)
            out.append(state_row(after, uow.now))
            if change is not None:
                at = max(x[0] for x in batch)
                self.tickets.on_signal(uow, self.signal(after, change, at))
        conn.execute(self._upsert(conn), out)

    def signal(self, st: ClockState, raised: bool, at: datetime) -> Signal:
        return Signal(
            site=st.site,
            subject=st.device_id,
            device_id=st.device_id,
            gateway_id=st.gateway_id,
            fault_class=CLOCK_QUALITY,
            mode="condition",
            raised=raised,
            severity=self.config.severity,
            at=at,
            summary=f"{st.device_id}: clock {st.verdict}: {st.summary}",
        )
