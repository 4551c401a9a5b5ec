from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiomqtt

from gateway import wire
from gateway.forwarder import pack
from gateway.outbox import Outbox, Pending
from gateway.uplink import Uplink, UplinkSettings
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto


def event(device: str, n: int) -> Pending:
    record = wire.Event(
        site="s1",
        gateway_id="gw1",
        device_id=device,
        session=0,
        seq=0,
        gateway_time=wire.utcnow(),
        address=str(n),
        value=True,
    )
    return Pending(wire.topic("s1", "gw1", "event", device), "event", wire.encode_body(record))


def birth(box: Outbox) -> object:
    def make(connection: int) -> wire.Birth:
        return wire.Birth(
            site="s1",
            gateway_id="gw1",
            session=box.session,
            seq=box.last_seq,
            gateway_time=wire.utcnow(),
            connection=connection,
            agent_version="test",
        )

    return make


@contextlib.asynccontextmanager
async def running_uplink(box: Outbox, broker: Mosquitto, **kw: object) -> AsyncIterator[Uplink]:
    box.bind_loop(asyncio.get_running_loop())
    settings = UplinkSettings(
        site="s1",
        gateway_id="gw1",
        host=broker.host,
        port=broker.port,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        **kw,  # type: ignore[arg-type]
    )
    uplink = Uplink(settings, box, birth(box))  # type: ignore[arg-type]
    task = asyncio.create_task(uplink.run())
    try:
        yield uplink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_pack_keeps_one_topic_and_sends_mixed_windows_to_the_batch_topic() -> None:
    from gateway.outbox import Row

    def rows(topics: str) -> list[Row]:
        return [Row(i, 1, i, t, "event", 0.0, b"{}") for i, t in enumerate(topics)]

    limit = wire.MAX_PAYLOAD_BYTES
    assert [(t, [r.id for r in rs]) for t, rs, _ in pack(rows("aaa"), 2, limit, "B")] == [
        ("a", [0, 1]), ("a", [2]),
    ]  # fmt: skip
    assert [(t, [r.id for r in rs]) for t, rs, _ in pack(rows("abab"), 3, limit, "B")] == [
        ("B", [0, 1, 2]), ("B", [3]),
    ]  # fmt: skip


async def test_records_reach_the_broker_with_their_ids_then_leave_the_outbox(
    outbox: Outbox, mosquitto: Mosquitto
) -> None:
    async with Collector(mosquitto.host, mosquitto.port) as sub:
        await outbox.append([event("d1", n) for n in range(50)])
        async with running_uplink(outbox, mosquitto, max_records_per_message=20):
            await sub.wait_for(lambda c: len(c.of_kind("event")) == 50, what="50 events")
            await sub.wait_for(lambda c: len(c.of_kind("birth")) == 1, what="birth")
            for _ in range(100):
                if outbox.depth == 0:
                    break
                await asyncio.sleep(0.05)
    events = sub.of_kind("event")
    assert [(e.session, e.seq) for e in events] == [(1, n) for n in range(1, 51)]
    assert [e.address for e in events] == [str(n) for n in range(50)]
    assert outbox.depth == 0
    # Backlog is packed: fewer messages than records.
    assert len([m for m in sub.messages if "/event/" in m[0]]) < 50


async def test_broker_restart_mid_stream_loses_nothing_and_keeps_order(
    outbox: Outbox, mosquitto: Mosquitto
) -> None:
    async with (
        Collector(mosquitto.host, mosquitto.port) as sub,
        running_uplink(outbox, mosquitto, max_records_per_message=5),
    ):
        for n in range(300):
            await outbox.append([event(f"d{n % 3}", n)])
            if n == 100:
                mosquitto.stop()
            if n == 200:
                mosquitto.start()
            await asyncio.sleep(0.002)
        await sub.wait_for(
            lambda c: len({e.seq for e in c.of_kind("event")}) == 300,
            timeout=60,
            what="all 300 events",
        )
    events = sub.of_kind("event")
    assert {e.seq for e in events} == set(range(1, 301))
    for device in ("d0", "d1", "d2"):
        seqs = [e.seq for e in events if e.device_id == device]
        # Duplicates are allowed (at-least-once). A stopped broker may lose part of its
        # queue and keep a later part, so first arrivals need not be in order; but the
        # agent re-sends everything unacknowledged from the oldest, in order, so the
        # last copy of each record arrives in order.
        last_seen = list(reversed(dict.fromkeys(reversed(seqs))))
        assert last_seen == sorted(last_seen)


async def acknowledge(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    """What the center does after its commit (center/acks.py)."""
    from center import acks

    async with aiomqtt.Client(broker.host, broker.port) as center:
        for ack in acks.collect(messages):
            topic = wire.ack_topic(ack.site, ack.gateway_id)
            await center.publish(topic, acks.encode(ack), qos=1)


async def test_records_the_broker_took_stay_until_the_center_acknowledges_them(
    outbox: Outbox, mosquitto: Mosquitto
) -> None:
    async with Collector(mosquitto.host, mosquitto.port, acknowledge=False) as sub:
        await outbox.append([event("d1", n) for n in range(50)])
        async with running_uplink(outbox, mosquitto, max_records_per_message=20) as uplink:
            await sub.wait_for(lambda c: len(c.of_kind("event")) == 50, what="50 events")
            await sub.wait_for(lambda c: uplink.stats.records_published == 50, what="PUBACKs")
            assert outbox.depth == 50  # every PUBACK is in: still kept
            records = [m for m in sub.messages if "/event/" in m[0]]
            await acknowledge(mosquitto, records[:1])  # the first message's 20 records
            await sub.wait_for(lambda c: outbox.depth == 30, what="the acknowledged 20 gone")
            assert [r.seq for r in outbox.read(100)] == list(range(21, 51))
            await acknowledge(mosquitto, records)
            await sub.wait_for(lambda c: outbox.depth == 0, what="all acknowledged")
            # counted once the deletion's commit returns to the loop, just after the depth
            await sub.wait_for(lambda c: uplink.forwarder.acked == 50, what="50 counted")
            assert uplink.forwarder.resends == 0


async def test_at_most_max_unacked_records_wait_for_the_center_at_once(
    outbox: Outbox, mosquitto: Mosquitto
) -> None:
    """The forwarder keeps a bound on what it has sent unacknowledged and counts the held
    rows only when the bound comes near the limit: the limit still holds exactly, and each
    acknowledgement lets exactly as many more leave."""
    async with Collector(mosquitto.host, mosquitto.port, acknowledge=False) as sub:
        await outbox.append([event("d1", n) for n in range(60)])
        async with running_uplink(
            outbox, mosquitto, max_records_per_message=10, max_unacked_records=25
        ) as uplink:

            async def settled_at(count: int) -> None:
                await sub.wait_for(
                    lambda c: uplink.stats.records_published == count, what=f"{count} sent"
                )
                await asyncio.sleep(0.5)  # and no more
                assert uplink.stats.records_published == count
                assert uplink.forwarder.unacked == count - uplink.forwarder.acked

            await settled_at(25)
            first = [m for m in sub.messages if "/event/" in m[0]][:1]  # 10 records
            await acknowledge(mosquitto, first)
            await settled_at(35)
            await acknowledge(mosquitto, [m for m in sub.messages if "/event/" in m[0]][1:])
            await sub.wait_for(lambda c: len(c.of_kind("event")) == 60, what="the rest")
            assert [e.seq for e in sub.of_kind("event")] == list(range(1, 61))
            assert uplink.forwarder.resends == 0


async def test_unacknowledged_records_are_sent_again_in_order_after_the_ack_timeout(
    outbox: Outbox, mosquitto: Mosquitto
) -> None:
    async with Collector(mosquitto.host, mosquitto.port, acknowledge=False) as sub:
        await outbox.append([event("d1", n) for n in range(10)])
        async with running_uplink(outbox, mosquitto, ack_timeout_s=0.5) as uplink:
            await sub.wait_for(
                lambda c: len(c.of_kind("event")) >= 30, what="three rounds", timeout=30
            )
            assert uplink.forwarder.resends >= 2
            seqs = [e.seq for e in sub.of_kind("event")]
            assert seqs[:30] == list(range(1, 11)) * 3  # each round whole, in order
            await acknowledge(mosquitto, [m for m in sub.messages if "/event/" in m[0]])
            await sub.wait_for(lambda c: outbox.depth == 0, what="acknowledged")


async def test_records_made_after_the_outbox_drained_still_leave(
    outbox: Outbox, mosquitto: Mosquitto
) -> None:
    """SQLite gives an emptied table's next row the first row id again: the forwarder's
    place in the outbox is a record id, so new rows are not taken for sent ones."""
    async with (
        Collector(mosquitto.host, mosquitto.port) as sub,
        running_uplink(outbox, mosquitto),
    ):
        for batch in range(3):
            await outbox.append([event("d1", 10 * batch + n) for n in range(5)])
            await sub.wait_for(lambda c: outbox.depth == 0, what=f"batch {batch} acked")
        await sub.wait_for(lambda c: len(c.of_kind("event")) == 15, what="15 events")
    assert [e.seq for e in sub.of_kind("event")] == list(range(1, 16))
