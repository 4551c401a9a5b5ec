"""Links take turns to connect: never more than `TURNS` at once, and every turn comes back,
from a link that connected and was interrogated as from one whose relay was not there."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from protocols.iec104 import connect_turns
from protocols.profile_loader import load_named
from simulator.relays.iec104.relay import Iec104Relay, make_relay
from simulator.scenario import RelaySpec

from .helpers import (
    RecordingSink,
    device,
    driver_for,
    free_port,
    running,
    unanswered_port,
    wait_until,
)

LINE = load_named("line-protection")


async def relay(index: int, port: int) -> Iec104Relay:
    spec = RelaySpec(
        id=f"r{index}",
        protocol="iec104",
        profile="line-protection",
        link={"port": port, "common_address": index + 1},
    )
    started = make_relay(spec, LINE)
    await started.start()
    return started


async def test_five_links_come_up_two_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connect_turns, "TURNS", 2)
    ports = [free_port() for _ in range(5)]
    relays = [await relay(i, port) for i, port in enumerate(ports)]
    sink = RecordingSink()
    seen: list[int] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            for i, port in enumerate(ports):
                drv = driver_for(device(f"r{i}", port, i + 1))
                await stack.enter_async_context(running(drv, sink))

            async def all_up() -> None:
                while not all(sink.link_states(f"r{i}")[-1:] == [True] for i in range(5)):
                    seen.append(connect_turns.taken())
                    await asyncio.sleep(0.002)

            await asyncio.wait_for(all_up(), 60)
            await wait_until(lambda: connect_turns.taken() == 0, what="every turn given back")
    finally:
        for r in relays:
            await r.stop()
    assert max(seen) == 2  # the turns were all in use while links waited ...
    assert all(taken <= 2 for taken in seen)  # ... and never more


async def test_a_relay_that_is_not_there_gives_its_turn_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connect_turns, "TURNS", 1)
    present = free_port()
    live = await relay(1, present)
    sink = RecordingSink()
    try:
        async with contextlib.AsyncExitStack() as stack:
            absent = stack.enter_context(unanswered_port())  # holds the turn while it waits
            dead = driver_for(device("r0", absent, 1, connect_timeout_s=1.0))
            await stack.enter_async_context(running(dead, sink))
            await wait_until(lambda: connect_turns.taken() == 1, what="the absent relay's turn")
            await stack.enter_async_context(running(driver_for(device("r1", present, 2)), sink))
            await wait_until(lambda: sink.link_states("r1")[-1:] == [True], what="r1 up")
    finally:
        await live.stop()
