"""Data flow control (DFC) against the simulated relays on a pty.

A relay whose last answer had DFC=1 (buffer full) gets no user data (time sync, GI,
generic-services reads): the master polls it instead and sends once DFC clears. A send it
refuses (NACK with DFC=1) is sent again later as a new exchange (toggled FCB), not lost.
The other relay on the bus is not held up meanwhile. Every check is made on the frames
the relay recorded (`Iec103Relay.received`), never on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocols.driver import PollKind, SettingsResult
from protocols.iec103 import driver as driver_module
from protocols.iec103.codec.frames import PrimaryFunction, SecondaryFunction
from protocols.observations import LinkStateObservation, SettingsObservation
from simulator.relays.iec103.relay import Iec103Relay
from simulator.relays.iec103.station import ReceivedFrame
from tests.protocols.iec103.conftest import Bench, make_bench

TIME_SYNC, GI, GENERIC_COMMAND, DISTURBANCE_ORDER = 6, 7, 21, 24
POLLS = {PrimaryFunction.REQUEST_CLASS_1, PrimaryFunction.REQUEST_CLASS_2}
FOREVER = 10**9


@pytest.fixture
async def idle_bench(tmp_path: Path) -> AsyncIterator[Bench]:
    """Relays set up, the master not yet started: a test arranges the relays first."""
    b = await make_bench(tmp_path, allow_commands=True, time_sync=True)
    try:
        yield b
    finally:
        if b.task is not None:
            b.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await b.task
        for relay in b.relays.values():
            await relay.stop()


def start(bench: Bench) -> None:
    bench.task = asyncio.create_task(bench.driver.run(bench.sink))


def settled(bench: Bench, device: str, n: int = 1) -> bool:
    return len(bench.sink.of(SettingsObservation, device)) >= n


def user_data(relay: Iec103Relay) -> list[ReceivedFrame]:
    return [f for f in relay.received if f.user_data]


def assert_no_user_data_while_full(relay: Iec103Relay) -> None:
    """No send/confirm of user data reached the relay after an answer with DFC=1."""
    late = [f for f in user_data(relay) if f.dfc_announced]
    assert late == [], late


def assert_fcb_rules(relay: Iec103Relay) -> None:
    """After each reset CU the FCV frames carry FCB=1 first and then alternate; nothing
    was a repeat (a refused send toggled FCB like any completed exchange)."""
    previous: bool | None = None
    for f in relay.received:
        if f.function == PrimaryFunction.RESET_CU:
            previous = None
            continue
        if not f.fcv:
            continue
        assert not f.repeat, f
        assert f.fcb == (True if previous is None else not previous), f
        previous = f.fcb


async def test_a_full_relay_is_polled_not_sent_to_and_does_not_stall_the_bus(
    idle_bench: Bench,
) -> None:
    busy, other = idle_bench.relays["relay1"], idle_bench.relays["relay2"]
    busy.hold_busy(FOREVER)  # full from its very first answer (the one to reset CU)
    start(idle_bench)
    # relay2 is initialised completely while relay1 stays full ...
    await idle_bench.until(lambda: settled(idle_bench, "relay2"))
    assert [f.type_id for f in user_data(other)][:3] == [TIME_SYNC, GI, DISTURBANCE_ORDER]
    # ... and relay1 is polled meanwhile, at its poll interval
    await idle_bench.until(
        lambda: sum(f.function == PrimaryFunction.REQUEST_CLASS_2 for f in busy.received) >= 5
    )
    relay1 = idle_bench.driver.relays["relay1"]
    assert relay1.up
    assert relay1.counters["procedures_refused"] == 0
    assert user_data(busy) == []
    assert busy.time_syncs == 0
    assert all(f.function in POLLS for f in busy.received[1:])  # after the reset: polls only
    assert relay1.counters["dfc_waits"] >= 5

    busy.hold_busy(0)  # the buffer empties: the next answer has DFC=0
    await idle_bench.until(lambda: settled(idle_bench, "relay1"))
    assert_no_user_data_while_full(busy)
    assert_fcb_rules(busy)
    sends = user_data(busy)
    # the pending steps, in order: time sync, GI, the list of recorded disturbances
    assert [f.type_id for f in sends][:3] == [TIME_SYNC, GI, DISTURBANCE_ORDER]
    assert all(f.type_id == GENERIC_COMMAND for f in sends[3:])
    assert len(sends) > 3
    assert all(f.answer == SecondaryFunction.ACK for f in sends)
    assert busy.time_syncs == 1
    assert busy.refused_sends == 0
    assert relay1.counters["gi_completed"] == 1
    assert idle_bench.driver.relays["relay2"].counters["dfc_waits"] == 0


async def test_a_send_refused_for_a_full_buffer_is_sent_again(idle_bench: Bench) -> None:
    busy = idle_bench.relays["relay1"]
    busy.nack_next_send = 1  # its buffer fills just as the time sync arrives
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay1") and settled(idle_bench, "relay2"))
    sends = user_data(busy)
    refused, repeat = sends[0], sends[1]
    assert (refused.type_id, refused.answer, refused.answer_dfc) == (
        TIME_SYNC,
        SecondaryFunction.NACK,
        True,
    )
    assert (repeat.type_id, repeat.answer) == (TIME_SYNC, SecondaryFunction.ACK)
    between = busy.received[busy.received.index(refused) + 1 : busy.received.index(repeat)]
    assert between
    assert all(f.function in POLLS for f in between)
    assert between[0].dfc_announced
    assert_no_user_data_while_full(busy)
    assert_fcb_rules(busy)  # the repeat is a new exchange, not a repeated FCB
    assert busy.refused_sends == 1
    assert busy.time_syncs == 1
    relay1 = idle_bench.driver.relays["relay1"]
    assert relay1.counters["sends_deferred_dfc"] == 1
    assert relay1.counters["gi_completed"] == 1
    assert relay1.station.counters["nacks"] == 1
    assert not any(not o.up for o in idle_bench.sink.of(LinkStateObservation, "relay1"))


async def test_an_accepted_send_whose_ack_says_full_holds_the_next_one(
    idle_bench: Bench,
) -> None:
    busy = idle_bench.relays["relay1"]
    busy.hold_busy(6, after_next_send=True)  # time sync accepted, then full for 6 answers
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay1"))
    sends = user_data(busy)
    sync, gi = sends[0], sends[1]
    assert (sync.type_id, sync.answer, sync.answer_dfc) == (
        TIME_SYNC,
        SecondaryFunction.ACK,
        True,
    )
    assert gi.type_id == GI
    assert not gi.busy
    assert not gi.dfc_announced
    between = busy.received[busy.received.index(sync) + 1 : busy.received.index(gi)]
    assert len([f for f in between if f.busy]) == 5  # the rest of the full answers: polls
    assert all(f.function in POLLS for f in between)
    assert_no_user_data_while_full(busy)
    assert_fcb_rules(busy)
    assert busy.time_syncs == 1
    assert busy.refused_sends == 0
    assert idle_bench.driver.relays["relay1"].counters["gi_completed"] == 1


async def test_a_settings_read_cut_by_a_full_buffer_is_read_again(idle_bench: Bench) -> None:
    busy = idle_bench.relays["relay1"]
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay1") and settled(idle_bench, "relay2"))
    before = len(busy.received)
    # the first generic read is accepted, then the buffer is full for a while
    busy.hold_busy(8, after_next_send=True)
    result = await idle_bench.driver.poll("relay1", PollKind.SETTINGS)
    assert isinstance(result, SettingsResult)
    read = {s.name: s.value for s in result.settings}
    assert read == {"zone1_reach": 4.2, "zone1_time": 0.0, "station_name": "North"}
    sends = [f for f in busy.received[before:] if f.user_data]
    assert sends[0].answer_dfc
    assert all(f.type_id == GENERIC_COMMAND for f in sends)
    assert len(sends) > 3  # the read started again from its first request (INF 240)
    assert_no_user_data_while_full(busy)
    assert_fcb_rules(busy)


async def test_a_relay_full_for_too_long_goes_down_alone(
    idle_bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "PROCEDURE_TIMEOUT_S", 1.0)
    busy = idle_bench.relays["relay1"]
    busy.hold_busy(FOREVER)  # never empties
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay2"))
    # relay2 keeps delivering events while relay1 stays full
    point = idle_bench.profile.by_name["self_check_fail"]
    await idle_bench.relays["relay2"].emit(point, True, [], datetime.now(UTC))
    await idle_bench.until(
        lambda: any(e.address == "128/47" for e in idle_bench.sink.events("relay2"))
    )
    await idle_bench.until(
        lambda: idle_bench.driver.relays["relay1"].counters["procedures_refused"] >= 1
    )
    down = [o for o in idle_bench.sink.of(LinkStateObservation, "relay1") if not o.up]
    assert down
    assert "DFC" in down[0].reason
    assert user_data(busy) == []
    assert busy.time_syncs == 0
    assert not any(not o.up for o in idle_bench.sink.of(LinkStateObservation, "relay2"))
