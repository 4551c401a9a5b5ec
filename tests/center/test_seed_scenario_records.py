"""End to end through a real Mosquitto: the seed scenario's records, published as the agent
would, open exactly one ticket. (The full simulator -> agent -> center test comes later.)"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby

import sqlalchemy as sa

from center.ingest import Message
from gateway import wire
from tests.center.mqtt_support import eventually, publish_all, running_center
from tests.center.records import Gateway, message, seed_records


async def test_seed_scenario_opens_exactly_one_ticket(mosquitto, db_url):
    async with running_center(mosquitto.host, mosquitto.port, db_url, "center-seed") as service:
        gw = Gateway(site="north-220kv", gateway_id="gw-north-1")
        records = seed_records(gw, datetime.now(UTC))
        batches = [message(*recs) for _, recs in groupby(records, key=lambda r: r.device_id)]
        hostile = [
            Message(batches[0].topic, b"{oops"),
            Message(batches[0].topic.replace("gw-north-1", "gw-other"), batches[0].payload),
        ]
        await publish_all(mosquitto.host, mosquitto.port, hostile + batches + batches[:2])

        repeats = sum(len(wire.decode_envelope(m.payload)) for m in batches[:2])

        def stored() -> bool:
            with service.engine.connect() as conn:
                n = conn.execute(sa.text("SELECT count(*) FROM records")).scalar()
                r = conn.execute(sa.text("SELECT count(*) FROM rejected_messages")).scalar()
            # the repeated batches come last: once counted, everything was ingested
            duplicates = service.counters.snapshot().get("records_duplicate", 0)
            return n == len(records) and r == 2 and duplicates == repeats

        await eventually(stored, what="all records stored")
        with service.engine.connect() as conn:
            tickets = conn.execute(sa.text("SELECT id, fault_class FROM tickets")).all()
            members = conn.execute(sa.text("SELECT subject FROM ticket_members")).scalars().all()
        assert len(tickets) == 1
        assert tickets[0][1] == "protection_operation"
        assert sorted(members) == ["busbar", "line1", "line2"]
        counters = service.counters.snapshot()
        assert counters["rejected_malformed"] == 1
        assert counters["rejected_topic_mismatch"] == 1
        assert counters["records_duplicate"] == repeats
