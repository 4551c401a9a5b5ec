"""Data flow control: a relay whose buffer is full (DFC=1 in its answers) gets no user
data until it has emptied; a send it refuses (NACK with DFC) is sent again, not lost; the
other relay on the bus is not held up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocols.observations import SettingsObservation
from tests.protocols.iec103.conftest import Bench, make_bench


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


def settled(bench: Bench, device: str) -> bool:
    return len(bench.sink.of(SettingsObservation, device)) >= 1


async def test_a_full_relay_gets_no_user_data_until_it_has_emptied(idle_bench: Bench) -> None:
    busy, other = idle_bench.relays["relay1"], idle_bench.relays["relay2"]
    busy.busy_answers = 40  # full for its first 40 answers: reset, identity, polls …
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay2") and settled(idle_bench, "relay1"))
    # The master waited: no time sync, GI or settings command while DFC was announced.
    assert busy.sends_after_dfc == 0 and busy.refused_sends == 0
    assert busy.busy_answers == 0 and busy.time_syncs == 1
    counters = idle_bench.driver.relays["relay1"].counters
    assert counters["dfc_waits"] >= 1 and counters["gi_completed"] == 1
    # relay2 was initialised the same way and never waited.
    assert other.time_syncs == 1 and idle_bench.driver.relays["relay2"].counters["dfc_waits"] == 0


async def test_a_send_refused_for_a_full_buffer_is_sent_again(idle_bench: Bench) -> None:
    busy = idle_bench.relays["relay1"]
    busy.nack_next_send = 1  # its buffer fills just as the time sync arrives
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay1") and settled(idle_bench, "relay2"))
    assert busy.refused_sends == 1  # the first time sync was refused …
    assert busy.time_syncs == 1  # … and the repeat went through, once
    assert busy.sends_after_dfc == 0  # the repeat waited for DFC to clear
    counters = idle_bench.driver.relays["relay1"].counters
    assert counters["sends_deferred_dfc"] == 1 and counters["gi_completed"] == 1
    assert idle_bench.driver.relays["relay1"].station.counters["nacks"] == 1


async def test_a_relay_full_for_too_long_goes_down_alone(idle_bench: Bench) -> None:
    busy = idle_bench.relays["relay1"]
    busy.busy_answers = 10**9  # never empties
    start(idle_bench)
    await idle_bench.until(lambda: settled(idle_bench, "relay2"))
    # relay2 keeps delivering events while relay1 stays full
    point = idle_bench.profile.by_name["self_check_fail"]
    await idle_bench.relays["relay2"].emit(point, True, [], datetime.now(UTC))
    await idle_bench.until(
        lambda: any(e.address == "128/47" for e in idle_bench.sink.events("relay2"))
    )
    await idle_bench.until(
        lambda: idle_bench.driver.relays["relay1"].counters["procedures_refused"] >= 1,
        timeout=60,
    )
    assert busy.sends_after_dfc == 0 and busy.time_syncs == 0
