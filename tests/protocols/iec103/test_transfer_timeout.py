"""A transfer the relay stops feeding while it goes on answering polls (no abort, no
restart, no silence) ends at the procedure timeout and is fetched again from the
selection: the one interruption test_disturbance_transfer.py does not make."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from protocols.iec103 import driver as driver_module
from protocols.iec103.codec.asdu_transfer import Too
from simulator.waveforms import FaultSpec, synthesise
from tests.protocols.iec103.conftest import make_bench, running
from tests.protocols.iec103.test_disturbance_transfer import (
    ORDER,
    initialised,
    selections,
    stored,
)


async def test_a_stalled_transfer_times_out_and_is_fetched_again_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "PROCEDURE_TIMEOUT_S", 1.0)
    bench = await make_bench(tmp_path)
    relay = bench.relays["relay1"]
    spec = FaultSpec(channels=4, samples=600)
    async with running(bench):
        await initialised(bench)
        relay.interrupt_after = (5, "stall")
        (fan,) = await relay.record(spec, datetime.now(UTC))
        await bench.until(lambda: relay.recorder.acknowledged == [fan])
        assert bench.driver.relays["relay1"].up  # answered every poll: never taken down
    assert selections(relay, fan) == 2
    orders = relay.recorder.orders
    select = (ORDER, Too.SELECT_FAULT, fan, 0)
    first = orders.index(select)
    retry = orders.index(select, first + 1)
    assert (ORDER, Too.ABORT_DATA, fan, 0) in orders[first:retry]  # the master gave up first
    (record,) = stored(bench)
    assert [c.samples for c in record.analog] == [c.raw for c in synthesise(spec).analog]
    assert bench.driver.relays["relay1"].counters["records_failed"] == 1
