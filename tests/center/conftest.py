"""Center test fixtures: a database per test on SQLite and on PostgreSQL, and a harness
that drives ingest and the ticket engine with a manual clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from center.clock import ManualClock
from center.config import parse_config
from center.ingest import BatchResult, Counters, Ingestor
from center.store import queries
from center.store.db import make_engine, migrate
from center.ticket_service import TicketService
from center.tickets.engine import TicketEngine
from tests.center.records import T0, message


def _pg_database(admin_url: str) -> Iterator[str]:
    """A fresh database, dropped afterwards."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"center_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'center.sqlite'}"
    else:
        yield from _pg_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'center.sqlite'}"


class Harness:
    """Ingest, tick and act against a real database, with a manual clock."""

    def __init__(self, url: str, config: dict[str, Any] | None = None) -> None:
        self.config = parse_config(config or {})
        self.clock = ManualClock(T0)
        self.engine = make_engine(url)
        migrate(self.engine)
        self.counters = Counters()
        self.tickets_engine = TicketEngine(self.config, self.clock)
        endpoints = [w.name for w in self.config.webhooks] or ["hook"]
        self.ingestor = Ingestor(
            self.engine, self.tickets_engine, self.clock, endpoints, self.counters
        )
        self.service = TicketService(self.engine, self.tickets_engine, endpoints, self.counters)

    def send(self, *records: Any) -> BatchResult:
        return self.ingestor.ingest([message(*records)])

    def at(self, when: Any) -> None:
        self.clock.set(when)

    def tick(self) -> int:
        return self.service.tick()

    def tickets(self, **filters: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return queries.list_tickets(conn, queries.TicketFilter(**filters))

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            doc = queries.get_ticket(conn, ticket_id)
        assert doc is not None
        return doc

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def make_harness(db_url: str) -> Iterator[Any]:
    made: list[Harness] = []

    def make(config: dict[str, Any] | None = None) -> Harness:
        h = Harness(db_url, config)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
