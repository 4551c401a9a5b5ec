"""Inserting a message's records, each record id once, reporting which were new (only
those reach the ticket engine).

- PostgreSQL: one `INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING
  RETURNING` (center/store/bulk.py says why this form).
- SQLite: RETURNING rows one by one through Python is slow; `BEGIN IMMEDIATE` makes a
  check-then-insert exact, so look up the existing ids of each session's seq range and
  insert the rest with the driver's executemany.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, bindparam, select

from center.store import schema as s
from center.store.bulk import columns_of, unnest_insert, unnest_statement
from center.store.db import is_postgres
from center.store.together import run_together

RecordId = tuple[str, int, int]

_RECORD_COLUMNS = columns_of(s.records)


_PG_ON_CONFLICT = (
    "ON CONFLICT (gateway_id, session, seq) DO NOTHING RETURNING gateway_id, session, seq"
)


class InsertRace(Exception):
    """Another center stored some of these records between our check and our insert;
    the caller retries the transaction (the check then sees them)."""


def insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[RecordId]:
    """Insert the record rows whose id is not stored yet; returns the ids inserted."""
    if is_postgres(conn):
        inserted = unnest_insert(conn, s.records, rows, _PG_ON_CONFLICT)
        return {cast(RecordId, tuple(row)) for row in inserted}
    return _sqlite_insert_new(conn, rows)


SequenceRows = dict[tuple[str, int], tuple[int, str]]  # (gateway, session): (high, missing)


def insert_new_asking_sequences(
    conn: Connection, rows: Sequence[dict[str, Any]]
) -> tuple[set[RecordId], SequenceRows | None]:
    """`insert_new`, and on PostgreSQL, in the same round trip, the sequence rows of the
    rows' sessions (the insert does not change them); None elsewhere (ask later)."""
    if not is_postgres(conn):
        return _sqlite_insert_new(conn, rows), None
    sessions = sorted({(row["gateway_id"], row["session"]) for row in rows})
    asked = {"gateways": [g for g, _ in sessions], "sessions": [n for _, n in sessions]}
    inserted, found = run_together(
        conn,
        [],
        [unnest_statement(s.records, rows, _PG_ON_CONFLICT), (_SEQUENCES, asked)],
        as_dicts=False,
    )
    return set(inserted), {(gw, session): (high, missing) for gw, session, high, missing in found}


_SEQUENCES = (
    "SELECT gateway_id, session, high, missing FROM sequences "
    "WHERE (gateway_id, session) IN "
    "(SELECT * FROM unnest(%(gateways)s::text[], %(sessions)s::bigint[]))"
)


def _sqlite_insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[RecordId]:
    existing: set[RecordId] = set()
    by_session: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        by_session.setdefault((row["gateway_id"], row["session"]), []).append(row["seq"])
    for (gw, session), seqs in by_session.items():
        found = conn.execute(
            _EXISTING, {"gw": gw, "session": session, "lo": min(seqs), "hi": max(seqs)}
        )
        existing.update((gw, session, seq) for (seq,) in found)
    fresh = [row for row in rows if _id(row) not in existing]
    if fresh:
        # The driver's own executemany: SQLAlchemy's per-row parameter processing costs
        # more than SQLite's insert. Datetimes in SQLAlchemy's SQLite storage format.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(_SQLITE_INSERT, [_sqlite_tuple(row) for row in fresh])
            inserted = cursor.rowcount
        finally:
            cursor.close()
        if inserted != len(fresh):
            raise InsertRace(f"{len(fresh) - inserted} records appeared meanwhile")
    return {_id(row) for row in fresh}


def _id(row: dict[str, Any]) -> RecordId:
    return row["gateway_id"], row["session"], row["seq"]


_EXISTING = select(s.records.c.seq).where(
    s.records.c.gateway_id == bindparam("gw"),
    s.records.c.session == bindparam("session"),
    s.records.c.seq.between(bindparam("lo"), bindparam("hi")),
)
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO records ({', '.join(_RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_RECORD_COLUMNS))})"
)


def _sqlite_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for name in _RECORD_COLUMNS:
        value = row[name]
        if isinstance(value, datetime):
            offset = value.utcoffset()
            if offset:
                value = value - offset
            value = value.replace(tzinfo=None).isoformat(" ", "microseconds")
        out.append(value)
    return tuple(out)
