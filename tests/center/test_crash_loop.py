"""A message the center dies on (not an exception: the process is gone) does not keep it
dying. `relay-center serve` runs as a process on PostgreSQL, where a trigger makes the
storage of one poison record hang; the test SIGKILLs the center each time it hangs there,
as the OOM killer or the watchdog would. After two such deaths the message is quarantined
(`crash_loop`) and acknowledged, and the messages around it are stored."""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa

from center.store.db import make_engine, migrate
from tests.center.mqtt_support import eventually, publish_all, subscribed
from tests.center.mqtt_support import start_center as start
from tests.center.records import T0, Gateway, message
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.postgres

HANG_ON_POISON = [
    """CREATE FUNCTION hang_on_poison() RETURNS trigger AS $$
       BEGIN
         IF NEW.body LIKE '%poison%' THEN PERFORM pg_sleep(3600); END IF;
         RETURN NEW;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER hang_on_poison BEFORE INSERT ON records
       FOR EACH ROW EXECUTE FUNCTION hang_on_poison()""",
]


@pytest.fixture
def pg_url(postgres_admin_url):
    from tests.center.conftest import _pg_database

    yield from _pg_database(postgres_admin_url)


def scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


def hanging(engine: sa.Engine) -> bool:
    return scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") > 0


def end_orphans(engine: sa.Engine) -> None:
    """What the database does once it notices its client is gone (TCP keepalive)."""
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


async def test_a_message_the_center_dies_on_is_quarantined_after_two_deaths(
    pg_url, mosquitto, tmp_path
):
    engine = make_engine(pg_url)
    migrate(engine)
    with engine.begin() as conn:
        for sql in HANG_ON_POISON:
            conn.execute(sa.text(sql))
    api_port = free_port()
    config = tmp_path / "center.toml"
    config.write_text(
        f'[center]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "{pg_url}"\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "center-cl"\n'
        f"[api]\nport = {api_port}\n"
    )
    log = tmp_path / "center.log"
    gw = Gateway()
    before = message(gw.event("line1", "trip_phase_a", True, T0))
    poison = message(gw.event("line2", "trip_phase_a", True, T0, label="poison"))
    after = message(gw.event("line3", "trip_phase_a", True, T0))
    center = start(config, log)
    try:
        await eventually(lambda: subscribed(api_port), what="center subscribed")
        await publish_all(mosquitto.host, mosquitto.port, [before, poison, after], "gw1")
        for death in (1, 2):
            await eventually(lambda: hanging(engine), what=f"storage hanging ({death})")
            center.send_signal(signal.SIGKILL)
            center.wait(30)
            end_orphans(engine)
            center = start(config, log)
            await eventually(lambda: subscribed(api_port), what="center back")

        def all_stored() -> bool:
            return scalar(engine, "SELECT count(*) FROM records") == 2

        await eventually(all_stored, what="the messages around the poison stored")
        assert scalar(engine, "SELECT count(*) FROM quarantine WHERE reason = 'crash_loop'") == 1
        assert scalar(engine, "SELECT count(*) FROM records WHERE device_id = 'line2'") == 0
        assert not hanging(engine)
        center.send_signal(signal.SIGTERM)
        assert center.wait(30) == 0
        # acknowledged: a new run does not see it again
        center = start(config, log)
        await eventually(lambda: subscribed(api_port), what="center back")
        await publish_all(mosquitto.host, mosquitto.port, [message(gw.event("l4", "t"))], "gw1")
        await eventually(lambda: scalar(engine, "SELECT count(*) FROM records") == 3, what="l4")
        assert not hanging(engine)
        assert scalar(engine, "SELECT count(*) FROM quarantine") == 1
    finally:
        if center.poll() is None:
            center.kill()
            center.wait(10)
        end_orphans(engine)
        engine.dispose()
