"""Poison through the real intake (Mosquitto, `relay-center serve` in this loop), on SQLite
and PostgreSQL: a record the database cannot hold and a message whose storage fails are
quarantined and acknowledged, good messages around them are stored, and a restarted
center does not meet them again."""

from __future__ import annotations

import sqlalchemy as sa

from center.ingest import Message
from center.store.db import make_engine, migrate
from tests.center.mqtt_support import eventually, publish_all, running_center
from tests.center.records import T0, Gateway, message

# A real database failure for one message: a trigger refuses records that mention "poison"
# (PostgreSQL raises an error that is not an outage, SQLite aborts the statement).
POISON_TRIGGER = {
    "postgresql": [
        """CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
           BEGIN
             IF NEW.body LIKE '%poison%' THEN RAISE EXCEPTION 'poison record'; END IF;
             RETURN NEW;
           END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER refuse_poison BEFORE INSERT ON records
           FOR EACH ROW EXECUTE FUNCTION refuse_poison()""",
    ],
    "sqlite": [
        """CREATE TRIGGER refuse_poison BEFORE INSERT ON records
           WHEN NEW.body LIKE '%poison%'
           BEGIN SELECT RAISE(ABORT, 'poison record'); END""",
    ],
}


def prepare(db_url: str) -> sa.Engine:
    engine = make_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        for sql in POISON_TRIGGER[engine.dialect.name]:
            conn.execute(sa.text(sql))
    return engine


def scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def nul_record(gw: Gateway) -> Message:
    """One event whose address holds a NUL byte, between two good ones."""
    good = [gw.event("line1", "breaker_closed", True, T0, signal="status") for _ in range(2)]
    bad = gw.event("line1", "trip_phase_a", True, T0, address="10\x0011")
    return message(good[0], bad, good[1])


async def test_poison_is_quarantined_and_a_restart_does_not_meet_it_again(db_url, mosquitto):
    engine = prepare(db_url)
    gw = Gateway()
    first = message(gw.event("line1", "trip_phase_a", True, T0))
    store_fails = message(gw.event("line2", "trip_phase_a", True, T0, label="poison"))
    rejected = Message(first.topic, b'{"v":1,"records":[\x00]}')
    after = message(gw.event("line3", "trip_phase_a", True, T0))
    host, port = mosquitto.host, mosquitto.port
    try:
        async with running_center(host, port, db_url, "center-poison") as service:
            await publish_all(host, port, [first, store_fails, nul_record(gw), rejected, after])

            def after_stored() -> bool:
                return scalar(engine, "SELECT count(*) FROM records WHERE device_id = 'line3'") == 1

            await eventually(after_stored, what="the message after the poison stored")
            assert scalar(engine, "SELECT count(*) FROM records") == 4  # first, 2 good, after
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT scope, reason FROM quarantine")).all()
            reasons = sorted((row.scope, row.reason) for row in rows)
            assert reasons == [("message", "store_error"), ("record", "unstorable")]
            assert scalar(engine, "SELECT count(*) FROM rejected_messages") == 1
            counters = service.counters.snapshot()
            assert counters["quarantined_store_error"] == 1
            assert counters["quarantined_unstorable"] == 1

        # A restart with the same persistent session: nothing comes back to fail again.
        async with running_center(host, port, db_url, "center-poison") as service:
            sentinel = message(gw.event("line4", "trip_phase_a", True, T0))
            await publish_all(host, port, [sentinel])

            def sentinel_stored() -> bool:
                return scalar(engine, "SELECT count(*) FROM records WHERE device_id = 'line4'") == 1

            await eventually(sentinel_stored, what="a message after the restart")
            assert scalar(engine, "SELECT count(*) FROM quarantine") == 2
            assert scalar(engine, "SELECT count(*) FROM rejected_messages") == 1
            assert "quarantined_store_error" not in service.counters.snapshot()
    finally:
        engine.dispose()
