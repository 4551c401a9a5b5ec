"""A backlog of large records leaves in messages the center accepts: packed by bytes under
wire.MAX_PAYLOAD_BYTES, whatever `max_records_per_message` says.

With 5,000 records per message and ~450-byte records, packing by count made 2.25 MB
messages that the broker took and the center rejected as oversized. Real Mosquitto, the
uplink, and the center's service storing on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway import wire
from gateway.outbox import Outbox, Pending
from tests.center.mqtt_support import eventually
from tests.e2e.test_end_to_end_ack import Center
from tests.gateway.test_uplink import running_uplink
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto

RECORDS = 12_000


def large_event(n: int) -> Pending:
    record = wire.Event(
        site="s1", gateway_id="gw1", device_id="line1", session=0, seq=0,
        gateway_time=wire.utcnow(), address=str(n), signal="trip", severity="major",
        label="distance protection zone 1 trip, phase A to ground",
        details={"fault_number": n, "note": "x" * 200},
    )  # fmt: skip
    return Pending(wire.topic("s1", "gw1", "event", "line1"), "event", wire.encode_body(record))


async def test_a_backlog_of_large_records_is_packed_under_the_centers_limit(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    center = Center(tmp_path, mosquitto)
    await center.start()
    events = "SELECT count(*) FROM records WHERE kind = 'event'"
    try:
        await box.append([large_event(n) for n in range(RECORDS)])  # built up in an outage
        total = box.size_bytes
        assert total > 4 * wire.MAX_PAYLOAD_BYTES
        async with (
            Collector(mosquitto.host, mosquitto.port, acknowledge=False) as seen,
            running_uplink(box, mosquitto, max_records_per_message=5000),
        ):
            await eventually(lambda: center.value(events) == RECORDS, 120, "backlog stored")
            await eventually(lambda: box.depth == 0, 30, "acknowledged")
            await asyncio.sleep(0.5)  # the collector may lag the center
        assert center.value("SELECT count(*) FROM rejected_messages") == 0
        sizes = [len(p) for t, p in seen.messages if t.endswith("/event/line1")]
        assert max(sizes) <= wire.MAX_PAYLOAD_BYTES
        assert len(sizes) > total // wire.MAX_PAYLOAD_BYTES  # bytes decided, not the count
    finally:
        await center.stop()
        box.close()
