"""Disturbance record transfer (ASDUs 23-31) between the driver and simulated relays on a
pty bus, through the real codec.

What is checked is what the relay received (`RecordServer.orders`, the bus's frames) and
what the sink stored, never timing: a record is stored whole and once, before the relay
gets the positive ASDU 25; a failed, aborted or interrupted transfer is started again from
the selection; the other relays on the bus keep their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocols.iec103.codec.asdu_transfer import Too
from protocols.iec103.codec.frames import PrimaryFunction
from protocols.iec103.driver import Iec103Driver
from protocols.observations import DisturbanceObservation, Observation, SettingsObservation
from simulator.relays.iec103.relay import Iec103Relay
from simulator.waveforms import FaultSpec, synthesise
from tests.protocols.iec103.conftest import Bench, RecordingSink, make_bench, running
from tests.protocols.iec103.test_bus_sharing import relay1_frames_until_fetched

ORDER, ACK = 24, 25
SMALL = FaultSpec(channels=4, samples=300)


def stored(bench: Bench, device: str = "relay1") -> list[DisturbanceObservation]:
    return bench.sink.of(DisturbanceObservation, device)


async def initialised(bench: Bench) -> None:
    await bench.until(
        lambda: all(bench.sink.of(SettingsObservation, d) for d in ("relay1", "relay2"))
    )


def selections(relay: Iec103Relay, fan: int) -> int:
    return relay.recorder.orders.count((ORDER, Too.SELECT_FAULT, fan, 0))


async def test_a_record_is_transferred_whole_and_stored_before_the_positive_ack(
    tmp_path: Path,
) -> None:
    bench = await make_bench(tmp_path)
    relay = bench.relays["relay1"]
    acked_when_stored: list[list[int]] = []

    def on_deliver(observations: Sequence[Observation]) -> None:
        if any(isinstance(o, DisturbanceObservation) for o in observations):
            acked_when_stored.append(list(relay.recorder.acknowledged))

    bench.sink.on_deliver = on_deliver
    spec = FaultSpec(channels=10, samples=300)
    async with running(bench):
        await initialised(bench)
        t0 = datetime.now(UTC).replace(microsecond=250_000)
        (fan,) = await relay.record(spec, t0)
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
    (record,) = stored(bench)
    assert acked_when_stored == [[]]  # the sink had it before the relay was told
    synth = synthesise(spec)
    assert record.fault_number == fan
    assert record.trigger_time == t0
    assert record.first_sample_time == t0 - timedelta(milliseconds=100)
    assert record.sample_interval_us == 1000
    assert [c.name for c in record.analog] == [
        *("IA", "IB", "IC", "IN", "UA", "UB", "UC", "UN"),
        *("ACC64", "ACC65"),
    ]
    assert [c.samples for c in record.analog] == [c.raw for c in synth.analog]
    for got, sent in zip(record.analog, synth.analog, strict=True):
        assert (got.primary, got.secondary, got.reference) == (
            sent.primary,
            sent.secondary,
            sent.reference,
        )
        assert got.scale == pytest.approx(sent.primary / (sent.secondary * sent.reference))
    digital = {d.name: (d.initial, d.changes) for d in record.digital}
    assert digital == {f"{t.fun}/{t.inf}": (t.initial, t.changes) for t in synth.tags}
    assert record.details["trip"] is True
    # the procedure, order by order, as the relay received it
    expected = [(ORDER, Too.SELECT_FAULT, fan, 0), (ORDER, Too.REQUEST_DATA, fan, 0)]
    expected += [(ORDER, Too.REQUEST_TAGS, fan, 0), (ACK, Too.TAGS_OK, fan, 0)]
    for channel in synth.analog:
        expected += [(ORDER, Too.REQUEST_CHANNEL, fan, channel.acc)]
        expected += [(ACK, Too.CHANNEL_OK, fan, channel.acc)]
    expected += [(ACK, Too.DATA_OK, fan, 0)]
    orders = relay.recorder.orders
    assert orders[orders.index(expected[0]) :] == expected
    assert bench.driver.relays["relay1"].counters["records_fetched"] == 1


class FailingSink(RecordingSink):
    """Cannot store the first disturbance record (a full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def deliver(self, observations: Sequence[Observation]) -> None:
        if self.failures and any(isinstance(o, DisturbanceObservation) for o in observations):
            self.failures -= 1
            raise OSError("database or disk is full")
        await super().deliver(observations)


async def test_a_record_the_sink_cannot_store_is_refused_and_fetched_again(
    tmp_path: Path,
) -> None:
    bench = await make_bench(tmp_path)
    bench.sink = FailingSink()
    relay = bench.relays["relay1"]
    async with running(bench):
        await initialised(bench)
        (fan,) = await relay.record(SMALL, datetime.now(UTC))
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
    assert relay.recorder.refused == [fan]  # negative ASDU 25 for the attempt not stored
    refused_at = relay.recorder.orders.index((ACK, Too.DATA_NOT_OK, fan, 0))
    assert (ACK, Too.DATA_OK, fan, 0) not in relay.recorder.orders[:refused_at]
    assert selections(relay, fan) == 2
    assert len(stored(bench)) == 1
    assert bench.driver.relays["relay1"].counters["records_failed"] == 1


class StallingSink(RecordingSink):
    """Holds a disturbance record until `release` is set (a slow disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def deliver(self, observations: Sequence[Observation]) -> None:
        if any(isinstance(o, DisturbanceObservation) for o in observations):
            self.entered.set()
            await self.release.wait()
        await super().deliver(observations)


async def test_no_positive_ack_while_the_sink_is_storing(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path)
    sink = StallingSink()
    bench.sink = sink
    relay = bench.relays["relay1"]
    async with running(bench):
        await initialised(bench)
        (fan,) = await relay.record(SMALL, datetime.now(UTC))
        await bench.until(sink.entered.is_set)
        assert relay.recorder.orders[-1] == (ACK, Too.CHANNEL_OK, fan, 4)
        assert relay.recorder.acknowledged == []
        assert stored(bench) == []
        sink.release.set()
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
    assert len(stored(bench)) == 1


async def test_a_relay_that_aborts_mid_transfer_is_asked_again_from_the_selection(
    tmp_path: Path,
) -> None:
    bench = await make_bench(tmp_path)
    relay = bench.relays["relay1"]
    async with running(bench):
        await initialised(bench)
        (fan,) = await relay.record(SMALL, datetime.now(UTC), abort_after=4)
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
    assert selections(relay, fan) == 2
    first_try = relay.recorder.orders[: relay.recorder.orders.index((ORDER, 1, fan, 0), 1)]
    assert (ACK, Too.DATA_OK, fan, 0) not in first_try
    (record,) = stored(bench)
    assert [c.samples for c in record.analog] == [c.raw for c in synthesise(SMALL).analog]
    assert bench.driver.relays["relay1"].counters["records_failed"] == 1


async def test_a_burst_of_records_is_fetched_one_at_a_time(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path)
    relay = bench.relays["relay1"]
    async with running(bench):
        await initialised(bench)
        fans = await relay.record(SMALL, datetime.now(UTC), count=3)
        await bench.until(lambda: relay.recorder.acknowledged == fans)
    assert [r.fault_number for r in stored(bench)] == fans
    # each selection comes only after the previous record's positive acknowledgement
    orders = relay.recorder.orders
    for previous, fan in itertools.pairwise(fans):
        assert orders.index((ACK, Too.DATA_OK, previous, 0)) < orders.index((ORDER, 1, fan, 0))


async def test_other_relays_keep_their_turn_and_own_events_come_first(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path, poll_interval_ms=0)
    relay = bench.relays["relay1"]
    point = bench.profile.by_name["self_check_fail"]
    async with running(bench):
        await initialised(bench)
        (fan,) = await relay.record(FaultSpec(channels=10, samples=2000), datetime.now(UTC))
        delays: list[int] = []
        for n in range(3):
            await bench.until(lambda: relay.recorder.values_served > 20 * (n + 1))  # noqa: B023
            delays.append(await relay1_frames_until_fetched(bench, n % 2 == 0))
        await relay.emit(point, True, [], datetime.now(UTC))  # relay1's own event
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
    assert all(d <= 5 for d in delays), delays  # as for any procedure: one turn
    own = next(i for i, o in enumerate(bench.sink.observations) if _is_event(o, "relay1"))
    record = next(
        i for i, o in enumerate(bench.sink.observations) if isinstance(o, DisturbanceObservation)
    )
    assert own < record  # the event was not held back behind the record
    assert len(bench.sink.events("relay2")) >= 3


def _is_event(o: Observation, device: str) -> bool:
    return (
        getattr(o, "device_id", None) == device
        and getattr(o, "address", None) == "128/47"
        and getattr(o, "cause", None) == "spontaneous"
    )


async def test_a_relay_restart_mid_transfer_restarts_the_transfer(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path)
    relay = bench.relays["relay1"]
    async with running(bench):
        await initialised(bench)
        relay.interrupt_after = (10, "restart")  # ASDU 5 start/restart: transfer lost
        (fan,) = await relay.record(FaultSpec(channels=8, samples=2000), datetime.now(UTC))
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
        # and a relay that goes silent mid-transfer, then is reset by the master
        relay.interrupt_after = (relay.recorder.values_served + 10, "offline")
        (fan2,) = await relay.record(FaultSpec(channels=8, samples=2000), datetime.now(UTC))
        await bench.until(lambda: not bench.driver.relays["relay1"].up)
        await relay.set_online(True)
        await bench.until(lambda: relay.recorder.acknowledged == [fan, fan2])
    assert selections(relay, fan) == 2
    assert selections(relay, fan2) == 2
    assert [r.fault_number for r in stored(bench)] == [fan, fan2]


async def test_an_agent_restart_fetches_the_interrupted_record_and_nothing_twice(
    tmp_path: Path,
) -> None:
    bench = await make_bench(tmp_path, state_dir=tmp_path / "state")
    relay = bench.relays["relay1"]
    assert bench.plan is not None
    bench.task = asyncio.create_task(bench.driver.run(bench.sink))
    try:
        await initialised(bench)
        (done,) = await relay.record(SMALL, datetime.now(UTC))
        await bench.until(lambda: relay.recorder.acknowledged == [done])
        (cut,) = await relay.record(FaultSpec(channels=8, samples=2000), datetime.now(UTC))
        served = relay.recorder.values_served
        await bench.until(lambda: relay.recorder.values_served > served + 10)
    finally:
        bench.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bench.task
    # the agent restarts: a new driver, the same state directory
    before = len(relay.recorder.orders)
    bench.driver = Iec103Driver(bench.plan)
    async with running(bench):
        await bench.until(lambda: relay.recorder.acknowledged == [done, cut])
    again = relay.recorder.orders[before:]
    assert (ORDER, Too.REQUEST_LIST, 0, 0) in again  # it asked what the relay holds
    assert (ORDER, Too.SELECT_FAULT, cut, 0) in again
    assert (ORDER, Too.SELECT_FAULT, done, 0) not in again  # already stored: not again
    assert [r.fault_number for r in stored(bench)] == [done, cut]


async def test_a_relay_without_records_is_not_asked(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path, disturbance_records=False)
    relay = bench.relays["relay1"]
    async with running(bench):
        await initialised(bench)
        await relay.record(SMALL, datetime.now(UTC))
        await bench.until(
            lambda: any(
                e.address == "128/0" for e in bench.sink.events("relay1", "disturbance_data")
            )
        )
        polls = len(relay.received)
        await bench.until(lambda: len(relay.received) > polls + 50)
    assert relay.recorder.orders == []
    assert all(
        f.function != PrimaryFunction.SEND_CONFIRM or f.type_id != ORDER for f in relay.received
    )
