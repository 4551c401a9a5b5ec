"""The one-statement record insert behaves as plain inserts would, on both backends: each
id stored once, only new ids reported, every column stored as given, rows in the order
given, and a value too long for its column refused on PostgreSQL as a plain insert
refuses it (an explicit cast to varchar(n) would truncate it silently instead)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from center.store import schema as s
from center.store.bulk import insert_rows
from center.store.db import make_engine, migrate
from center.store.record_insert import insert_new
from center.store.records import _record_row
from gateway import wire
from tests.center.records import T0, Gateway


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


def rows(gw: Gateway, n: int) -> list[dict[str, Any]]:
    records: list[wire.Record] = [
        gw.event(f"line{i % 3}", "breaker_closed", i % 2 == 0, T0 + timedelta(seconds=i))
        for i in range(n)
    ]
    records.append(gw.alarm(None, "outbox_near_cap", "raised"))  # code and state columns
    return [_record_row(r, T0) for r in records]


def stored(engine: sa.Engine) -> list[dict[str, Any]]:
    columns = [c for c in s.records.columns if c.name != "id"]
    with engine.connect() as conn:
        found = conn.execute(sa.select(*columns).order_by(s.records.c.id)).mappings().all()
    return [dict(row) for row in found]


def test_each_id_once_and_only_new_ids_reported(engine):
    gw = Gateway()
    first = rows(gw, 5)
    with engine.begin() as conn:
        assert insert_new(conn, first) == {(r["gateway_id"], r["session"], r["seq"]) for r in first}
    later = rows(gw, 3)
    with engine.begin() as conn:  # a redelivery of the first rows, with new ones
        new = insert_new(conn, first[2:] + later)
    assert new == {(r["gateway_id"], r["session"], r["seq"]) for r in later}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM records")).scalar() == len(first + later)


def test_columns_stored_as_given_in_the_order_given(engine):
    given = list(reversed(rows(Gateway(), 6)))  # seqs descending: ids must follow the list
    with engine.begin() as conn:
        insert_new(conn, given)
    back = stored(engine)
    assert [r["seq"] for r in back] == [r["seq"] for r in given]
    for want, got in zip(given, back, strict=True):
        for name, value in want.items():
            if name in ("event_time", "received_at"):
                got_time = got[name] if got[name].tzinfo else got[name].replace(tzinfo=value.tzinfo)
                assert got_time == value, name
            else:
                assert got[name] == value, name


def test_bulk_and_plain_insert_agree_on_an_over_long_value(engine):
    too_long = {**rows(Gateway("north", "gw1"), 0)[0], "point": "p" * 129}
    outcomes = []
    for gateway_id, insert in (
        ("gw-plain", lambda conn, row: conn.execute(s.records.insert(), [row])),
        ("gw-bulk", lambda conn, row: insert_new(conn, [row])),
    ):
        try:
            with engine.begin() as conn:
                insert(conn, {**too_long, "gateway_id": gateway_id})
            outcomes.append("stored")
        except sa.exc.DataError:
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1]
    if engine.dialect.name == "postgresql":
        assert outcomes == ["refused", "refused"]  # never silently truncated


def test_insert_rows_keeps_the_order_given(make_harness):
    h = make_harness()
    h.send(Gateway().event("line1", "trip_phase_a"))
    [ticket] = h.tickets()
    entries = [
        {"ticket_id": ticket["id"], "at": T0 - timedelta(seconds=i), "recorded_at": T0,
         "entry": "event", "subject": "line1", "summary": f"entry {i}",
         "gateway_id": None, "session": None, "seq": None}
        for i in range(5)
    ]  # fmt: skip
    with h.engine.begin() as conn:
        first_new = conn.execute(sa.select(sa.func.max(s.timeline.c.id))).scalar() or 0
        insert_rows(conn, s.timeline, entries)
        t = s.timeline.c
        query = sa.select(t.summary).where(t.id > first_new).order_by(t.id)
        summaries = conn.execute(query).scalars().all()
    assert summaries == [e["summary"] for e in entries]
