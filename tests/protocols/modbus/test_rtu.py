"""Modbus RTU: over a socat pty pair, and three units on one bus (RTU over TCP), one dead."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.config import SerialBusConfig
from protocols.modbus.driver import ModbusDriver

from .helpers import RecordingSink, free_port, plan, relay, rtu_device, running, wait_until


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A null-modem cable: two linked ptys (a pty rejects even parity, so 8N1)."""
    if shutil.which("socat") is None:
        pytest.skip("socat is not installed")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if a.exists() and b.exists():
                break
            proc.poll()
            if proc.returncode is not None:
                pytest.fail("socat exited")
            import time

            time.sleep(0.02)
        yield a, b
    finally:
        proc.terminate()
        proc.wait(10)


async def test_rtu_over_a_pty_pair(pty_pair: tuple[Path, Path]) -> None:
    relay_end, agent_end = pty_pair
    sim = relay(
        "f1",
        {"transport": "rtu", "port": str(relay_end), "unit_id": 7, "parity": "N"},
        identity={"model": "FP-300", "serial": "FP3-RTU", "firmware_version": "3.0.0"},
    )
    await sim.start()
    try:
        bus = SerialBusConfig(id="rs485", port=str(agent_end), baudrate=19200, parity="N")
        driver = ModbusDriver(plan([rtu_device("f1", "rs485", 7, timeout_ms=500)], bus))
        sink = RecordingSink()
        sim.append_event(13, True, fields={"phase": 3})
        async with running(driver, sink):
            await wait_until(lambda: sink.events("f1"), what="an event over the pty")
            sim.append_event(21, True)
            await wait_until(lambda: len(sink.events("f1")) == 2)
        assert [e.address for e in sink.events("f1")] == ["event:13", "event:21"]
        assert driver.counters["f1"]["malformed"] == 0
    finally:
        await sim.stop()


async def test_three_units_on_one_bus_with_one_dead() -> None:
    port = free_port()
    url = f"socket://127.0.0.1:{port}"
    live = [
        relay(f"u{unit}", {"transport": "rtu", "port": url, "unit_id": unit}) for unit in (1, 2)
    ]
    for sim in live:
        await sim.start()
    try:
        bus = SerialBusConfig(id="rs485", port=url, parity="N", timeout_ms=200)
        devices = [rtu_device(f"u{unit}", "rs485", unit, timeout_ms=200) for unit in (1, 2, 3)]
        driver = ModbusDriver(plan(devices, bus))
        sink = RecordingSink()
        async with running(driver, sink):
            await wait_until(lambda: sink.link_states("u3") == [False], what="unit 3 marked down")
            await wait_until(lambda: sink.link_states("u1") == [True] == sink.link_states("u2"))
            # While the dead unit is retried with backoff, the live ones keep being read.
            for round_ in range(5):
                for sim in live:
                    sim.append_event(100 + round_)
                await wait_until(
                    lambda: all(len(sink.events(s.spec.id)) == round_ + 1 for s in live),  # noqa: B023
                    what=f"round {round_} from both live units",
                )
            await asyncio.sleep(0)
        counters = driver.counters
        assert counters["u3"]["no_response"] >= 2
        assert counters["u3"]["up"] is False
        assert counters["u1"]["no_response"] == counters["u2"]["no_response"] == 0
        assert not sink.events("u3")
    finally:
        for sim in live:
            await sim.stop()
