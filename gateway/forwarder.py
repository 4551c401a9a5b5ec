"""The forwarder: drains the outbox in order over one MQTT connection, and removes a record
only once the center has acknowledged storing it.

A broker's PUBACK only marks a row as sent (the `cursor`, in memory: any new connection
sends every unacknowledged row again, from the oldest). The center publishes a `wire.Ack`
after its commit; `on_ack` deletes what it names. Rows sent and not acknowledged are sent
again, in order, after a reconnect, or when no acknowledgement has come for `ack_timeout_s`
(doubling up to `ack_timeout_max_s` while none comes, so a center that is down for hours
costs a few re-sent windows, not a flood). At most `max_unacked_records` wait for their
acknowledgement at once: that bounds what a re-send repeats and what the broker queues for
a center that is away. The center stores each record id once, so re-sends are harmless.

Messages are packed by bytes under `wire.MAX_PAYLOAD_BYTES`, the limit the center
enforces, and by count under `max_records_per_message`.

Bulk rows (disturbance record chunks) leave one at a time, only while no main row is
unsent, and the next leaves only once the center acknowledged the previous: chunks reach
the center in order even when several center processes share the subscription, and a
trip never waits behind more than one chunk.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway import wire
from gateway.outbox import Outbox, Row

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], Awaitable[None]]  # topic, payload, records
_CHUNK_INDEX = re.compile(rb'"index":(\d+)')
# An acknowledgement's deletion may wait this long to share an outbox commit with others
# (gateway/outbox_writer.py): only the count of records awaiting acknowledgement lags.
# A disturbance chunk's goes at once: the next chunk leaves only after it.
ACK_COMMIT_WITHIN_S = 0.05
IDLE_CHECK_S = 1.0  # an idle forwarder looks at its acknowledgement timeout this often


@dataclass
class ForwardSettings:
    max_records_per_message: int = 200
    max_message_bytes: int = wire.MAX_PAYLOAD_BYTES
    max_in_flight: int = 8
    max_unacked_records: int = 10_000
    ack_timeout_s: float = 30.0
    ack_timeout_max_s: float = 600.0
    linger_s: float = 0.005


def pack(
    rows: list[Row], max_records: int, max_bytes: int, batch_topic: str
) -> list[tuple[str, list[Row], bytes]]:
    """Messages for a window of rows, in order: (topic, rows, payload), each payload at most
    `max_bytes` and `max_records` records.

    Rows of one topic go to that topic. Rows of many topics (many devices trickling events)
    go, in order, to the gateway's batch topic: a publish costs far more CPU than a record,
    so one message per device topic would make a gateway with many relays publish-bound."""
    topics = {row.topic for row in rows}
    target = rows[0].topic if len(topics) == 1 else batch_topic
    messages: list[tuple[str, list[Row], bytes]] = []
    group: list[Row] = []
    stamped: list[bytes] = []
    size = wire.ENVELOPE_OVERHEAD_BYTES
    for row in rows:
        body = wire.stamp(row.body, row.session, row.seq)
        grown = size + len(body) + (1 if stamped else 0)
        if stamped and (grown > max_bytes or len(stamped) == max_records):
            messages.append((target, group, wire.encode_envelope(stamped)))
            group, stamped, size = [], [], wire.ENVELOPE_OVERHEAD_BYTES
            grown = size + len(body)
        if grown > max_bytes:
            # Refused at creation (agent/pipeline.py); only an outbox from an agent that
            # predates that check can hold one. Sent alone, the center keeps it as rejected.
            log.error("record %d/%d is %d bytes alone", row.session, row.seq, grown)
        group.append(row)
        stamped.append(body)
        size = grown
    if stamped:
        messages.append((target, group, wire.encode_envelope(stamped)))
    return messages


def chunk_key(row: Row) -> tuple[int, int, int]:
    """(session, seq, index) of a bulk row: what the center's acknowledgement names."""
    found = _CHUNK_INDEX.search(row.body)
    return (row.session, row.seq, int(found.group(1)) if found else -1)


class Forwarder:
    """Lives as long as the uplink; `run` is one connection's forwarding."""

    def __init__(self, outbox: Outbox, settings: ForwardSettings, batch_topic: str) -> None:
        self.outbox = outbox
        self.settings = settings
        self.batch_topic = batch_topic
        self.cursor = (0, 0)  # the (session, seq) of the last main row sent on this connection
        self.bulk_in_flight: tuple[tuple[int, int, int], int] | None = None  # key, row id
        self.acked = 0  # rows the center acknowledged (this process)
        self.resends = 0  # times unacknowledged rows were sent again after a timeout
        self.records_sent = 0
        self.messages_sent = 0
        self._timeout = settings.ack_timeout_s
        self._last_progress = time.monotonic()
        self._wake = asyncio.Event()
        # Main rows held up to `cursor`, at most: exact when counted, plus every row sent
        # since (acknowledgements and evictions only lower the truth). Counting is a scan
        # of the held rows (~0.1-1 ms per thousand), too dear for every turn of `run`.
        self._held_at_most = 0

    @property
    def unacked(self) -> int:
        """Rows sent on this connection and not yet acknowledged (bulk included): exact."""
        held = self.outbox.count_upto(self.cursor) if self.cursor != (0, 0) else 0
        self._held_at_most = held
        return held + (1 if self.bulk_in_flight else 0)

    def _room(self, wanted: int) -> int:
        """How many more rows may be sent before `max_unacked_records` wait for their
        acknowledgement, or `wanted` if at least that many: counted only when the bound
        leaves less."""
        bulk = 1 if self.bulk_in_flight else 0
        room = self.settings.max_unacked_records - self._held_at_most - bulk
        return wanted if room >= wanted else self.settings.max_unacked_records - self.unacked

    def rewind(self) -> None:
        """Send every unacknowledged row again, from the oldest (a new connection)."""
        self.cursor = (0, 0)
        self._held_at_most = 0
        self.bulk_in_flight = None
        self._last_progress = time.monotonic()

    async def on_ack(self, ack: wire.Ack) -> int:
        """Delete what the center stored; wake the forwarder."""
        bulk_ids = []
        if self.bulk_in_flight is not None:
            key, row_id = self.bulk_in_flight
            if any((c.session, c.seq, c.index) == key for c in ack.chunks):
                bulk_ids.append(row_id)
                self.bulk_in_flight = None
        within = 0.0 if bulk_ids else ACK_COMMIT_WITHIN_S
        removed = await self.outbox.acknowledge(ack.ranges, bulk_ids, within)
        if removed or bulk_ids:
            self.acked += removed
            self._last_progress = time.monotonic()
            self._timeout = self.settings.ack_timeout_s
        self._wake.set()
        return removed

    async def run(self, publish: Publish) -> None:
        """Forward until the connection fails (the publish raises)."""
        s = self.settings
        gate = asyncio.Semaphore(s.max_in_flight)
        self.rewind()
        while True:
            self._wake.clear()
            self.outbox.expect_rows(self._wake)
            room = self._room(s.max_in_flight * s.max_records_per_message)
            rows = self.outbox.read(room, self.cursor) if room > 0 else []
            if rows:
                batch = self.batch_topic
                messages = pack(rows, s.max_records_per_message, s.max_message_bytes, batch)
                await asyncio.gather(
                    *(self._send(publish, t, p, len(r), gate) for t, r, p in messages)
                )
                self.cursor = (rows[-1].session, rows[-1].seq)
                self._held_at_most += len(rows)
                continue
            if room > 0 and self.bulk_in_flight is None and await self._send_bulk(publish):
                continue
            await self._idle()

    async def _idle(self) -> None:
        """Wait for new rows, an acknowledgement or the ack timeout; on the timeout, with
        rows still unacknowledged, send them again from the oldest."""
        if time.monotonic() - self._last_progress > self._timeout and self.unacked:
            log.warning(
                "no acknowledgement from the center for %.0fs: sending %d records again",
                self._timeout,
                self.unacked,
            )
            self.resends += 1
            self.rewind()
            self._timeout = min(2 * self._timeout, self.settings.ack_timeout_max_s)
            return
        # One event for new rows (the outbox sets it), acknowledgements and this timer:
        # a turn costs no task, as waiting on several awaitables would.
        timer = asyncio.get_running_loop().call_later(IDLE_CHECK_S, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()
        # Linger a moment: under a trickle, rows arriving together leave together.
        await asyncio.sleep(self.settings.linger_s)

    async def _send_bulk(self, publish: Publish) -> bool:
        rows = self.outbox.read_bulk(1)
        if not rows:
            return False
        row = rows[0]
        payload = wire.encode_envelope([wire.stamp(row.body, row.session, row.seq)])
        # Marked before the publish: the center's acknowledgement may beat our PUBACK.
        self.bulk_in_flight = (chunk_key(row), row.id)
        await self._send(publish, row.topic, payload, 1, asyncio.Semaphore(1))
        return True

    async def _send(
        self, publish: Publish, topic: str, payload: bytes, records: int, gate: asyncio.Semaphore
    ) -> None:
        async with gate:
            await publish(topic, payload, records)
        self.messages_sent += 1
        self.records_sent += records
