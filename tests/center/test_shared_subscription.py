"""Two center processes' worth of work on one database, sharing the load through an MQTT
shared subscription: every record is stored once, and one incident is still one ticket
even when its records are ingested by both centers at the same time (per-site locks)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from center.config import parse_config
from center.server import CenterService
from tests.center.mqtt_support import eventually, publish_all
from tests.center.records import Gateway, message, seed_records

SITES = 12


def center(db_url: str, mosquitto, name: str) -> CenterService:
    config = parse_config({
        "center": {"instance": name},
        "database": {"url": db_url},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "client_id": name,
                 "shared_group": "centers", "max_batch_messages": 2},
        "api": {"enabled": False},
    })  # fmt: skip
    return CenterService(config)


def scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


async def test_two_centers_share_the_stream_and_one_incident_stays_one_ticket(
    db_url, mosquitto
) -> None:
    centers = [await asyncio.to_thread(center, db_url, mosquitto, name) for name in ("c1", "c2")]
    stop = asyncio.Event()
    runs = [asyncio.create_task(c.run(stop)) for c in centers]
    try:
        await eventually(
            lambda: all(c.mqtt_status["subscribed"] for c in centers), what="both subscribed"
        )
        # Each site's seed incident, one record per message, in order: the broker hands
        # consecutive messages to alternate centers, so both ingest one incident at once.
        per_site = [
            [message(r) for r in seed_records(Gateway(site=f"site{i}", gateway_id=f"gw{i}"))]
            for i in range(SITES)
        ]
        publishers = [
            publish_all(mosquitto.host, mosquitto.port, msgs, client_id=f"pub{i}")
            for i, msgs in enumerate(per_site)
        ]
        await asyncio.gather(*publishers)
        engine = centers[0].engine
        total = sum(len(msgs) for msgs in per_site)
        await eventually(
            lambda: scalar(engine, "SELECT count(*) FROM records") == total,
            what=f"{total} records stored",
        )
    finally:
        stop.set()
        await asyncio.gather(*runs)
    # both centers did part of the work
    accepted = [c.counters.snapshot().get("messages_accepted", 0) for c in centers]
    assert all(n > 0 for n in accepted), accepted
    assert sum(accepted) >= total, accepted
    check = sa.create_engine(db_url)
    try:
        with check.connect() as conn:
            per_site_tickets = conn.execute(sa.text(
                "SELECT site, count(*) FROM tickets WHERE fault_class = 'protection_operation' "
                "GROUP BY site"
            )).all()  # fmt: skip
            members = conn.execute(sa.text(
                "SELECT t.site, m.subject FROM tickets t JOIN ticket_members m "
                "ON m.ticket_id = t.id WHERE t.fault_class = 'protection_operation'"
            )).all()  # fmt: skip
            stored = conn.execute(sa.text("SELECT count(DISTINCT id) FROM records")).scalar()
    finally:
        check.dispose()
    assert stored == total
    assert sorted(per_site_tickets) == sorted((f"site{i}", 1) for i in range(SITES))
    by_site: dict[str, set[str]] = {}
    for site, subject in members:
        by_site.setdefault(site, set()).add(subject)
    assert all(devices == {"line1", "line2", "busbar"} for devices in by_site.values()), by_site
