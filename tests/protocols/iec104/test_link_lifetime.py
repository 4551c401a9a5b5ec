"""A link that has ended is freed: a relay that flaps or stays away must not cost memory
per attempt.

c104 keeps each connection's callbacks in C++, out of reach of Python's garbage collector,
and does not free every stopped connection. While those callbacks were the link's bound
methods (and the link held its connection), every link the agent ever ran stayed alive,
with its latest values, recent events and guard: about 16 KB per attempt against an
absent relay in bench/link_flap.py, more for a relay that had sent data. The callbacks
now hold the link weakly. (What c104 itself keeps per attempt is native memory, outside
this test: bench/absent_relays.py.) And a relay that is away costs no c104 client at all:
the link reaches the relay before it makes one."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from typing import Any

import c104
import pytest

from protocols.errors import LinkError
from protocols.iec104.link import Iec104Link
from protocols.profile_loader import load_named
from simulator.relays.iec104.relay import make_relay
from simulator.scenario import RelaySpec

from .helpers import RecordingSink, device, free_port, unanswered_port, wait_until


async def freed(ref: weakref.ref[Iec104Link]) -> None:
    """The link is collected once its threads (guard, c104's) have finished."""

    def gone() -> bool:
        gc.collect()
        return ref() is None

    await wait_until(gone, timeout=20, what="the ended link to be freed")


async def test_a_link_to_an_absent_relay_is_freed_when_it_gives_up() -> None:
    link = Iec104Link(device("gone", free_port(), 1, connect_timeout_s=0.3), frozenset(),
                      RecordingSink())  # fmt: skip
    with contextlib.suppress(LinkError):
        await link.run()
    ref = weakref.ref(link)
    del link
    await freed(ref)


async def test_a_relay_that_is_away_costs_no_c104_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused (nothing listens) or unanswered (a host switched off): each attempt is one
    connect, without a c104 client and its three threads (native memory that grew with
    every attempt in the whole agent, bench/absent_relays.py)."""
    made: list[object] = []
    real = c104.Client

    def counted(**kwargs: Any) -> c104.Client:
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(c104, "Client", counted)
    with unanswered_port() as silent:
        for port in (free_port(), silent):
            link = Iec104Link(device("gone", port, 1, connect_timeout_s=0.3), frozenset(),
                              RecordingSink())  # fmt: skip
            with pytest.raises(LinkError, match="not reachable"):
                await link.run()
    assert made == []


async def test_a_link_whose_relay_went_away_is_freed() -> None:
    port = free_port()
    relay = make_relay(
        RelaySpec(id="line1", protocol="iec104", profile="line-protection",
                  link={"port": port, "common_address": 1}),
        load_named("line-protection"),
    )  # fmt: skip
    await relay.start()
    link = Iec104Link(device("line1", port, 1), frozenset(), RecordingSink())
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(30):
            await link.ready.wait()  # connected and interrogated
    finally:
        await relay.stop()
    with contextlib.suppress(LinkError):
        await task
    ref = weakref.ref(link)
    del link, task
    await freed(ref)
