"""Engine creation, migrations and the few places where SQLite and PostgreSQL differ."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, sqlite_synchronous: str = "NORMAL", pool_size: int = 5) -> Engine:
    """An engine for `url`. SQLite: WAL, a busy timeout, and BEGIN IMMEDIATE so that two
    writers queue instead of failing on lock upgrade. PostgreSQL: psycopg 3."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_size=pool_size)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, for connections idle over `PING_AFTER_IDLE_S` only: a
    ping is a round trip per transaction, and one back in the pool for less than a second
    has just been used. A connection lost within that second fails its transaction like
    any outage (ingest retries it); one found dead by the ping is replaced."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc


@contextmanager
def one_connection(url: str, *, up_to_date: bool = False) -> Iterator[Connection]:
    """A connection for a one-shot command (CLI), its engine disposed afterwards;
    `up_to_date` migrates the schema first."""
    engine = make_engine(url)
    try:
        if up_to_date:
            migrate(engine)
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic, programmatically)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if is_postgres(conn):
            # Two centers starting together must not both run the migration.
            conn.execute(text("SELECT pg_advisory_xact_lock(7340043)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def insert(table: Table, conn: Connection) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has on_conflict_do_nothing / do_update."""
    if is_postgres(conn):
        return postgresql.insert(table)
    return sqlite.insert(table)


def lock_site(conn: Connection, site: str) -> None:
    """Serialise ticket decisions per site across center processes (PostgreSQL). SQLite
    serialises every writer already (BEGIN IMMEDIATE)."""
    lock_sites(conn, {site})


@contextmanager
def pipeline(conn: Connection) -> Iterator[None]:
    """PostgreSQL: the statements of the block go to the server together and their results
    come back together at its end (psycopg's pipeline mode), one round trip for all;
    an error in any of them is raised there. Only for statements whose results the block
    does not read (writes, locks). Elsewhere a plain block."""
    if not is_postgres(conn):
        yield
        return
    driver: Any = conn.connection.driver_connection
    base = conn.dialect.loaded_dbapi.Error
    try:
        with driver.pipeline():
            yield
    except base as exc:  # raised by the driver at the sync: handled as SQLAlchemy would
        lost = bool(driver.closed) or conn.dialect.is_disconnect(exc, driver, None)
        if lost:
            conn.invalidate(exc)  # the pool replaces it
        raise DBAPIError.instance(
            None, None, exc, base, connection_invalidated=lost, dialect=conn.dialect
        ) from exc


def lock_sites(conn: Connection, sites: Collection[str]) -> None:
    """`lock_site` for each of these sites, in sorted order (so no two centers deadlock),
    in one round trip: the locks are taken one by one in the array's order, as its
    elements come out of `unnest`."""
    if is_postgres(conn) and sites:
        keys = [zlib.crc32(f"site:{site}".encode()) - 2**31 for site in sorted(sites)]
        with pipeline(conn):  # with the transaction's BEGIN
            conn.execute(_LOCK_SITES, {"keys": keys})


_LOCK_SITES = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
)


def try_lock_tick(conn: Connection) -> bool:
    """Only one center process runs the periodic ticket work at a time."""
    if is_postgres(conn):
        return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(7340044)")).scalar())
    return True


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
