"""The peer benches count losses themselves (bench/compare_c104.py, compare_thingsboard.py):
these check that their counters count, on the real stacks.

bench/ is not a package; its modules are imported by path, as the benches import them.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bare104_client import start_clients
from buffered104_outstation import BufferedStation
from modbus_seq_simulator import start_units
from ports import free_port_run


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - the station's counters have no event
            await asyncio.sleep(0.02)


def test_a_full_relay_buffer_overwrites_its_oldest_event_and_counts_it() -> None:
    station = BufferedStation(0, port=0, points=20, buffer=3)
    moments = [datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(5)]
    for at in moments:
        station.record(at)
    station.pump()  # no master: nothing may leave
    assert list(station.buffer) == moments[2:]
    totals = station.totals()
    assert (totals["generated"], totals["overwritten"], totals["sent"]) == (5, 2, 0)
    assert totals["left_in_buffer"] == 3


async def test_events_a_c104_master_acknowledged_are_counted_as_acknowledged() -> None:
    port = free_port_run(1)
    station = BufferedStation(0, port, points=20, buffer=0)
    server = await station.serve()
    counting = start_clients(1, port)
    try:
        await until(lambda: station.started)
        for _ in range(16):  # two receive windows (w = 8): acknowledged without waiting on t2
            station.record(datetime.now(UTC))
        station.pump()
        await until(lambda: not station.buffer and station.acked_frames == station.frames)
        totals = station.totals()
        assert (totals["sent"], totals["acked"], totals["overwritten"]) == (16, 16, 0)
        with counting.lock:
            assert len(counting.arrivals) == 16
    finally:
        counting.stop()
        if station.writer is not None:
            station.writer.close()
        server.close()


async def test_a_sequenced_unit_numbers_every_read_of_its_block_and_only_those() -> None:
    port = free_port_run(1)
    [unit] = await start_units(1, port)
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        assert await client.connect()
        seen = []
        for _ in range(3):
            rr = await client.read_holding_registers(0, count=34, device_id=1)
            seen.append(rr.registers[0] << 16 | rr.registers[1])
        await client.read_holding_registers(2, count=2, device_id=1)  # not the block's start
        assert seen == [1, 2, 3]
        assert len(unit.reads) == 3
    finally:
        client.close()
        await unit.stop()


def test_free_port_run_hands_out_ports_that_can_be_bound() -> None:
    base = free_port_run(5)
    for port in range(base, base + 5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
