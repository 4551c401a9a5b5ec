"""`relay-center serve` as a process: SIGKILLed mid-stream and restarted, it loses nothing
(persistent MQTT session, PUBACK only after commit) and stores each record once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import aiomqtt

from tests.center.mqtt_support import eventually, publish_all, start_center, subscribed
from tests.center.records import T0, Gateway, message
from tests.support.mosquitto import free_port

TOKEN = "crash-test-token-0123456789"


def count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return -1


async def test_killed_center_loses_nothing(mosquitto, tmp_path):
    db = tmp_path / "center.sqlite"
    api_port = free_port()
    config = tmp_path / "center.toml"
    config.write_text(
        f'[center]\nstate_dir = "{tmp_path}"\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nclient_id = "center-crash"\n'
        f"max_batch_messages = 4\n"
        f'[api]\nport = {api_port}\ntokens = [{{ name = "t", token = "{TOKEN}" }}]\n'
    )
    log = tmp_path / "center.log"
    gw = Gateway()
    messages = [
        message(
            *[
                gw.event(f"line{i % 3}", "breaker_closed", j % 2 == 0, T0, signal="status")
                for j in range(50)
            ]
        )
        for i in range(60)
    ]
    total = 60 * 50
    center = start_center(config, log)
    try:
        await eventually(lambda: subscribed(api_port), what="center subscribed")
        publisher = asyncio.create_task(
            publish_all(mosquitto.host, mosquitto.port, messages, client_id="gw1")
        )
        await eventually(lambda: count(db, "SELECT count(*) FROM records") > 0, what="first rows")
        center.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
        center.wait(30)
        await publisher  # the gateway keeps publishing while the center is down
        stored_while_down = count(db, "SELECT count(*) FROM records")
        assert stored_while_down < total
        center = start_center(config, log)
        await eventually(
            lambda: count(db, "SELECT count(*) FROM records") == total,
            timeout=120,
            what=f"all {total} records",
        )
        assert count(db, "SELECT count(DISTINCT seq) FROM records") == total
        assert count(db, "SELECT count(*) FROM sequences WHERE missing != '[]'") == 0
        # the retained state says online
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="probe") as probe:
            await probe.subscribe("relay/v1/center/state", qos=1)
            async with asyncio.timeout(30):
                async for m in probe.messages:
                    assert json.loads(m.payload)["state"] == "online"
                    break
        center.send_signal(signal.SIGTERM)
        assert center.wait(30) == 0
    finally:
        if center.poll() is None:
            center.kill()
            center.wait(10)
    assert "Traceback" not in log.read_text()
