"""When each periodic analytics job last ran (`analytics_runs`), so that a restart or a
second center does not run a daily job twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, select, text

from center.store import schema as s
from center.store.db import as_utc, insert, is_postgres

_LOCK_KEY = 7340051  # beside the center's migration and tick locks


def last_finished(conn: Connection, job: str) -> datetime | None:
    r = s.analytics_runs.c
    return as_utc(conn.execute(select(r.finished_at).where(r.job == job)).scalar())


def claim(engine: Engine, job: str, now: datetime, every_s: float) -> bool:
    """True when the job is due and this process may run it (PostgreSQL: one center)."""
    with engine.begin() as conn:
        if (
            is_postgres(conn)
            and not conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY}
            ).scalar()
        ):
            return False
        done = last_finished(conn, job)
        r = s.analytics_runs.c
        started = as_utc(conn.execute(select(r.started_at).where(r.job == job)).scalar())
        every = timedelta(seconds=every_s)
        if done is not None and now - done < every:
            return False
        if started is not None and (done is None or started > done) and now - started < every:
            return False  # another process started it and has not finished yet
        _write(conn, job, now, {"started_at": now, "summary": "running"})
        return True


def finish(conn: Connection, job: str, now: datetime, summary: str) -> None:
    _write(conn, job, now, {"finished_at": now, "summary": summary})


def _write(conn: Connection, job: str, now: datetime, values: dict[str, object]) -> None:
    stmt = insert(s.analytics_runs, conn).values({"job": job, "started_at": now, **values})
    conn.execute(stmt.on_conflict_do_update(index_elements=["job"], set_=values))
