"""Storing validated records: each record id once, sequence gaps, gateways, devices, inventory.

Everything here runs inside the caller's transaction. Inserts use ON CONFLICT DO NOTHING
with RETURNING, so a duplicate delivery inserts nothing and is not handed on to the
ticket engine: duplicates change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from center.device_time import record_time
from center.store import schema as s
from center.store.db import insert, pipeline
from center.store.record_insert import SequenceRows, insert_new_asking_sequences
from center.store.together import Write, execute_all
from gateway import wire

MAX_MISSING_RANGES = 1000  # beyond this the oldest ranges are dropped (and counted)

Lifecycle = wire.Birth | wire.Death | wire.Health


@dataclass
class StoreResult:
    new: list[wire.Record] = field(default_factory=list)
    duplicates: int = 0
    new_lifecycle: list[tuple[Lifecycle, bool]] = field(default_factory=list)  # (record, current)
    gaps_opened: list[tuple[str, int, int, int]] = field(default_factory=list)
    seqs_filled: int = 0
    # Records whose id is stored already with other content: never stored, never counted
    # as duplicates; the caller keeps them for inspection.
    conflicts: list[wire.Record] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)  # with defer_writes: still to make


def merge_sequence(
    high: int, missing: list[list[int]], seqs: Iterable[int]
) -> tuple[int, list[list[int]], list[tuple[int, int]], int]:
    """Fold newly stored seqs into (high-water mark, missing ranges). Returns the new high,
    the new missing ranges, the gaps that appeared and how many missing seqs were filled.
    Pure; seqs start at 1 in every session."""
    ranges = [list(r) for r in missing]
    opened: list[tuple[int, int]] = []
    filled = 0
    for seq in sorted(set(seqs)):
        if seq > high:
            if seq > high + 1:
                ranges.append([high + 1, seq - 1])
                opened.append((high + 1, seq - 1))
            high = seq
            continue
        for i, (first, last) in enumerate(ranges):
            if first <= seq <= last:
                filled += 1
                pieces = [[first, seq - 1], [seq + 1, last]]
                ranges[i : i + 1] = [p for p in pieces if p[0] <= p[1]]
                break
    return high, ranges[-MAX_MISSING_RANGES:], opened, filled


def _value(value: wire.Scalar) -> str | None:
    return None if value is None else str(value)[:128]


def _record_row(r: wire.Record, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "gateway_id": r.gateway_id,
        "session": r.session,
        "seq": r.seq,
        "kind": r.kind,
        "site": r.site,
        "device_id": r.device_id,
        "event_time": record_time(r),
        "received_at": now,
        "signal": None,
        "point": None,
        "severity": None,
        "value": None,
        "code": None,
        "body": r.model_dump_json(),
    }
    if isinstance(r, wire.Event):
        row.update(
            signal=r.signal,
            point=r.point or r.address,
            severity=r.severity,
            value="on" if r.active else "off",
        )
    elif isinstance(r, wire.Measurement):
        row.update(point=r.point or r.address, value=_value(r.value))
    elif isinstance(r, wire.Alarm):
        row.update(code=r.code, severity=r.severity, value=r.state)
    return row


def store_records(
    conn: Connection, records: Sequence[wire.Record], now: datetime, *, defer_writes: bool = False
) -> StoreResult:
    """Store what is new of `records`. The writes that follow from the new ones (sequence
    rows, devices, inventory) are made before this returns, or with `defer_writes` left
    in `result.writes` for the caller to make (in order, before anything reads those
    tables: `TicketUnitOfWork.prefetch` sends them with its questions)."""
    result = StoreResult()
    plain = [r for r in records if not isinstance(r, Lifecycle)]
    for r in records:
        if isinstance(r, Lifecycle):
            current = _store_lifecycle(conn, r, now)
            if current is not None:
                result.new_lifecycle.append((r, current))
    if not plain:
        return result
    inserted, sequences = insert_new_asking_sequences(conn, [_record_row(r, now) for r in plain])
    result.new = [r for r in plain if r.record_id in inserted]
    repeated = [r for r in plain if r.record_id not in inserted]
    result.conflicts = _conflicting(conn, repeated)
    result.duplicates = len(repeated) - len(result.conflicts)
    if result.new:
        result.writes = _track_sequences(conn, result, now, sequences)
        result.writes += _touch_devices(conn, result.new, now)
        result.writes += _store_inventory(conn, result.new)
    if result.writes and not defer_writes:
        with pipeline(conn):  # writes only: one round trip
            execute_all(conn, result.writes)
        result.writes = []
    return result


def _conflicting(conn: Connection, repeated: Sequence[wire.Record]) -> list[wire.Record]:
    """The repeated records whose stored copy differs: the same id with other content."""
    if not repeated:
        return []
    t = s.records.c
    stored: dict[tuple[str, int, int], str] = {}
    by_session: dict[tuple[str, int], list[int]] = {}
    for r in repeated:
        by_session.setdefault((r.gateway_id, r.session), []).append(r.seq)
    for (gw, session), seqs in by_session.items():
        rows = conn.execute(
            select(t.seq, t.body).where(
                t.gateway_id == gw, t.session == session, t.seq.in_(sorted(set(seqs)))
            )
        )
        stored.update(((gw, session, seq), body) for seq, body in rows)
    return [r for r in repeated if stored.get(r.record_id) != r.model_dump_json()]


def _track_sequences(
    conn: Connection, result: StoreResult, now: datetime, known: SequenceRows | None
) -> list[Write]:
    """Fold the new records into their sessions' sequence rows (`known`: those already
    read, None to read them here); returns the writes."""
    writes: list[Write] = []
    by_session: dict[tuple[str, int], list[wire.Record]] = {}
    for r in result.new:
        by_session.setdefault((r.gateway_id, r.session), []).append(r)
    q = s.sequences.c
    for (gateway_id, session), recs in by_session.items():
        row = (
            known.get((gateway_id, session))
            if known is not None
            else conn.execute(
                select(q.high, q.missing).where(q.gateway_id == gateway_id, q.session == session)
            ).first()
        )
        high, missing = (row[0], json.loads(row[1])) if row else (0, [])
        new_high, ranges, opened, filled = merge_sequence(high, missing, (r.seq for r in recs))
        values = {"high": new_high, "missing": json.dumps(ranges), "updated_at": now}
        if row is None:
            writes.append(
                (
                    insert(s.sequences, conn)
                    .values(gateway_id=gateway_id, session=session, site=recs[0].site, **values)
                    .on_conflict_do_nothing(),
                    None,
                )
            )
        else:
            writes.append(
                (
                    update(s.sequences)
                    .where(q.gateway_id == gateway_id, q.session == session)
                    .values(values),
                    None,
                )
            )
        result.gaps_opened.extend((gateway_id, session, a, b) for a, b in opened)
        result.seqs_filled += filled
    return writes


def _touch_devices(conn: Connection, recs: list[wire.Record], now: datetime) -> list[Write]:
    seen = {(r.site, r.device_id): r.gateway_id for r in recs if r.device_id}
    rows = [
        {"site": site, "device_id": dev, "gateway_id": gw, "first_seen": now, "last_seen": now}
        for (site, dev), gw in seen.items()
    ]
    if not rows:
        return []
    stmt = insert(s.devices, conn).inline()
    upsert = stmt.on_conflict_do_update(
        index_elements=["site", "device_id"],
        set_={"last_seen": stmt.excluded.last_seen, "gateway_id": stmt.excluded.gateway_id},
    )
    return [(upsert, rows)]


def _store_inventory(conn: Connection, recs: list[wire.Record]) -> list[Write]:
    """Firmware reports and settings snapshots, each in its own table (baselines are
    built on them); the device row keeps the latest identity and hashes. Returns the
    writes."""
    writes: list[Write] = []
    d = s.devices.c
    for r in recs:
        if isinstance(r, wire.FirmwareReport):
            report = (
                insert(s.firmware_reports, conn)
                .inline()  # no RETURNING: written in a pipeline
                .values(
                    **_device_record_ids(r),
                    manufacturer=r.manufacturer,
                    model=r.model,
                    serial=r.serial,
                    firmware_version=r.firmware_version,
                    checksum=r.checksum,
                    hash=r.hash,
                    details=json.dumps(r.details),
                )
                .on_conflict_do_nothing()
            )
            device = (
                update(s.devices)
                .where(d.site == r.site, d.device_id == r.device_id)
                .values(
                    manufacturer=r.manufacturer,
                    model=r.model,
                    serial=r.serial,
                    firmware_version=r.firmware_version,
                    firmware_hash=r.hash,
                )
            )
            writes += [(report, None), (device, None)]
        elif isinstance(r, wire.SettingsSnapshot):
            snapshot = (
                insert(s.settings_snapshots, conn)
                .inline()
                .values(
                    **_device_record_ids(r),
                    hash=r.hash,
                    previous_hash=r.previous_hash,
                    reason=r.reason,
                    settings=json.dumps({k: v.model_dump() for k, v in r.settings.items()}),
                    diff=json.dumps([c.model_dump() for c in r.diff]),
                )
                .on_conflict_do_nothing()
            )
            device = (
                update(s.devices)
                .where(d.site == r.site, d.device_id == r.device_id)
                .values(settings_hash=r.hash)
            )
            writes += [(snapshot, None), (device, None)]
    return writes


def _device_record_ids(r: wire.FirmwareReport | wire.SettingsSnapshot) -> dict[str, Any]:
    """The columns every device report's table keys and orders by."""
    return {
        "gateway_id": r.gateway_id,
        "session": r.session,
        "seq": r.seq,
        "site": r.site,
        "device_id": r.device_id,
        "gateway_time": record_time(r),
    }


def _store_lifecycle(conn: Connection, r: Lifecycle, now: datetime) -> bool | None:
    """Store a birth/death/health once. Returns None for a duplicate, else whether it is
    current: a death older than the newest birth (a late will) is not, nor a health of an
    older connection."""
    new = conn.execute(
        insert(s.lifecycle, conn)
        .values(
            gateway_id=r.gateway_id,
            session=r.session,
            kind=r.kind,
            connection=r.connection,
            seq=r.seq,
            site=r.site,
            gateway_time=record_time(r),
            received_at=now,
            body=r.model_dump_json(),
        )
        .on_conflict_do_nothing()
        .returning(s.lifecycle.c.id)
    ).first()
    if new is None:
        return None
    g = s.gateways.c
    row = conn.execute(select(s.gateways).where(g.gateway_id == r.gateway_id)).mappings().first()
    if row is None:
        conn.execute(
            insert(s.gateways, conn)
            .values(
                gateway_id=r.gateway_id,
                site=r.site,
                online=False,
                birth_session=-1,
                birth_connection=0,
                death_session=-1,
                death_connection=0,
                last_seen=now,
            )
            .on_conflict_do_nothing()
        )
        row = conn.execute(select(s.gateways).where(g.gateway_id == r.gateway_id)).mappings().one()
    key = (r.session, r.connection)
    birth = (row["birth_session"], row["birth_connection"])
    death = (row["death_session"], row["death_connection"])
    values: dict[str, Any] = {"last_seen": now, "site": r.site}
    current = False
    if isinstance(r, wire.Birth):
        current = key > death and key >= birth
        if key > birth:
            values.update(birth_session=r.session, birth_connection=r.connection)
            values.update(agent_version=r.agent_version, outbox_depth=r.outbox_depth)
        _devices_from_birth(conn, r, now)
    elif isinstance(r, wire.Death):
        current = key >= birth and key > death
        if key > death:
            values.update(death_session=r.session, death_connection=r.connection)
    else:
        values["outbox_depth"] = r.outbox_depth
        current = key >= birth and key > death
    new_birth = max(birth, key) if isinstance(r, wire.Birth) else birth
    new_death = max(death, key) if isinstance(r, wire.Death) else death
    if current or not isinstance(r, wire.Health):  # a late health says nothing of now
        values["online"] = new_birth > new_death
    conn.execute(update(s.gateways).where(g.gateway_id == r.gateway_id).values(values))
    return current


def _devices_from_birth(conn: Connection, r: wire.Birth, now: datetime) -> None:
    rows = [
        {
            "site": r.site,
            "device_id": d.device_id,
            "gateway_id": r.gateway_id,
            "protocol": d.protocol,
            "profile": d.profile,
            "first_seen": now,
            "last_seen": now,
        }
        for d in r.devices
    ]
    if rows:
        stmt = insert(s.devices, conn)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device_id"],
                set_={
                    "gateway_id": stmt.excluded.gateway_id,
                    "protocol": stmt.excluded.protocol,
                    "profile": stmt.excluded.profile,
                    "last_seen": stmt.excluded.last_seen,
                },
            ),
            rows,
        )
