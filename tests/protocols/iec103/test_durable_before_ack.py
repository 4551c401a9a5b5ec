"""Durable before acknowledgement, against a commit that fails or hangs: the relay keeps
the event unacknowledged (the FCB that would confirm it is never sent) and sends it again
to the next master, which stores it. The relays run with their default (read-only)
config."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from protocols.iec103.driver import Iec103Driver
from protocols.observations import Observation, PointObservation, SettingsObservation
from tests.protocols.iec103.conftest import Bench, make_bench, running


async def _ready(bench: Bench) -> None:
    await bench.until(
        lambda: all(len(bench.sink.of(SettingsObservation, d)) >= 1 for d in bench.relays)
    )


TRIP = "128/69"


def _has_trip(observations: Sequence[Observation]) -> bool:
    return any(isinstance(o, PointObservation) and o.address == TRIP for o in observations)


def _disk_full(observations: Sequence[Observation]) -> None:
    if _has_trip(observations):
        raise OSError(28, "No space left on device")


def _trip_events(bench: Bench) -> list[tuple[object, object]]:
    return [(e.value, e.device_time) for e in bench.sink.events("relay1") if e.address == TRIP]


def _held_unacknowledged(bench: Bench) -> bool:
    """The relay sent its trip and still holds it: no new FCB has confirmed it."""
    relay = bench.relays["relay1"]
    retained = relay.retained
    return (
        retained is not None
        and retained[1] is not None
        and retained[1][1][0] == "point"
        and not any(t[0] == "point" for t in relay.delivered)
    )


async def _restart_and_collect(bench: Bench, stopped: asyncio.Task[None]) -> None:
    """A new driver on the same bus (the agent restarted), with a commit that works."""
    bench.sink.on_deliver = None
    bench.sink.stalled = None
    assert bench.plan is not None
    bench.driver = Iec103Driver(bench.plan)
    bench.task = asyncio.create_task(bench.driver.run(bench.sink))
    await bench.until(lambda: len(_trip_events(bench)) == 1)
    relay = bench.relays["relay1"]
    await bench.until(lambda: any(t[0] == "point" for t in relay.delivered))
    assert stopped.done()


async def test_a_failing_commit_leaves_the_event_with_the_relay(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path)
    async with running(bench):
        await _ready(bench)
        first = bench.task
        assert first is not None
        bench.sink.on_deliver = _disk_full  # the commit of the trip fails
        trip = bench.profile.by_name["trip_phase_a"]
        await bench.relays["relay1"].emit(trip, True, [], datetime.now(UTC))
        with contextlib.suppress(OSError):
            await asyncio.wait_for(first, 30)  # the driver ends: its supervisor restarts it
        assert isinstance(first.exception(), OSError)
        assert _trip_events(bench) == []
        assert _held_unacknowledged(bench)
        await _restart_and_collect(bench, first)


async def test_a_hanging_commit_leaves_the_event_with_the_relay(tmp_path: Path) -> None:
    bench = await make_bench(tmp_path)
    async with running(bench):
        await _ready(bench)
        first = bench.task
        assert first is not None
        bench.sink.stalled = asyncio.Event()
        bench.sink.stall_when = _has_trip  # the commit of the trip hangs
        trip = bench.profile.by_name["trip_phase_a"]
        await bench.relays["relay1"].emit(trip, True, [], datetime.now(UTC))
        await bench.until(lambda: bench.sink.waiting > 0)
        # However long the commit hangs, the confirming FCB is not sent...
        polls = len(bench.relays["relay1"].received)
        await asyncio.sleep(0.5)
        assert len(bench.relays["relay1"].received) == polls  # the master waits on the commit
        assert _held_unacknowledged(bench)
        # ...and when the agent dies with it (SIGKILL, watchdog), the next one gets it.
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        assert _trip_events(bench) == []
        assert _held_unacknowledged(bench)
        await _restart_and_collect(bench, first)
