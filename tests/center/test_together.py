"""Statements sent together (center/store/together.py) on both backends: writes before
reads in order, and on PostgreSQL an error or a lost connection inside a pipeline is
raised as SQLAlchemy raises it, the lost connection replaced for the next transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from center.store import schema as s
from center.store.db import is_postgres, make_engine, migrate, pipeline
from center.store.together import run_together


def test_writes_go_before_the_reads_sent_with_them(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    window = {
        "site": "north",
        "device_id": None,
        "starts_at": sa.func.now(),
        "ends_at": sa.func.now(),
        "reason": "test",
        "created_by": "test",
    }
    with engine.begin() as conn:
        # .inline(): no RETURNING of the serial id, which a pipeline could not read
        insert = s.maintenance_windows.insert().inline().values(window)
        if is_postgres(conn):
            read = "SELECT site FROM maintenance_windows WHERE site = %(site)s"
            (rows,) = run_together(conn, [(insert, None)], [(read, {"site": "north"})])
            assert rows == [{"site": "north"}]
        else:  # elsewhere the callers ask one by one
            conn.execute(insert)
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(s.maintenance_windows)).scalar()
            == 1
        )
    engine.dispose()


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    from tests.center.conftest import _pg_database

    yield from _pg_database(postgres_admin_url)


@pytest.mark.postgres
def test_an_error_in_a_pipeline_is_sqlalchemys(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with pytest.raises(sa.exc.DataError), engine.begin() as conn, pipeline(conn):
        conn.execute(sa.text("SELECT 1 / 0"))
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT 2")).scalar() == 2
    engine.dispose()


@pytest.mark.postgres
def test_a_connection_lost_in_a_pipeline_is_replaced(pg_url: str) -> None:
    engine = make_engine(pg_url)
    other = sa.create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with pytest.raises(sa.exc.OperationalError) as lost:
        _lose_the_connection_in_a_pipeline(engine, other)
    assert lost.value.connection_invalidated  # what the center's ingest retries on
    with engine.begin() as conn:  # within a second: no ping, yet a fresh connection
        assert conn.execute(sa.text("SELECT 2")).scalar() == 2
    other.dispose()
    engine.dispose()


def _lose_the_connection_in_a_pipeline(engine: sa.Engine, other: sa.Engine) -> None:
    with engine.begin() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with other.connect() as killer:
            killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pipeline(conn):
            conn.execute(sa.text("SELECT 1"))
