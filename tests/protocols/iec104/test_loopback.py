"""The driver against the simulated relay on real loopback sockets (c104 on both sides)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from datetime import UTC, datetime, timedelta

import c104
import pytest

from protocols.driver import EventsResult, PollKind, StatusResult
from protocols.errors import LinkError
from protocols.iec104.driver import Iec104Driver
from protocols.profile_loader import load_named
from simulator.relays.iec104.relay import Iec104Relay, make_relay
from simulator.relays.iec104.values import make_info
from simulator.runner import ScenarioRunner, relocate
from simulator.scenario import SEED_SCENARIO, RelaySpec, load_scenario

from .helpers import (
    RecordingSink,
    device,
    driver_for,
    free_port,
    local_timezone,
    native_threads,
    running,
    unanswered_port,
    wait_until,
)

LINE = load_named("line-protection")
T0 = datetime(2025, 6, 1, 8, 30, 0, 0, tzinfo=UTC)


async def line_relay(port: int, **link: object) -> Iec104Relay:
    relay = make_relay(
        RelaySpec(
            id="line1",
            protocol="iec104",
            profile="line-protection",
            link={"port": port, "common_address": 1, **link},
        ),
        LINE,
    )
    await relay.start()
    return relay


async def connected(sink: RecordingSink, device_id: str, gi_answers: int = 1) -> None:
    await wait_until(lambda: sink.link_states(device_id)[-1:] == [True], what="link up")
    await wait_until(
        lambda: len(sink.points(device_id, "interrogated")) >= gi_answers,
        what="general interrogation answers",
    )


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai"])
async def test_seed_scenario_arrives_exactly(tz: str) -> None:
    """Every step: device time to the ms, value, quality, cause; under a non-UTC TZ too."""
    with local_timezone(tz):
        scenario = load_scenario(SEED_SCENARIO)
        ports = {r.id: free_port() for r in scenario.relays}
        scenario = relocate(scenario, {k: {"port": p} for k, p in ports.items()})
        runner = ScenarioRunner(scenario, speed=2.0, progress=lambda _line: None)
        await runner.start()
        sink = RecordingSink()
        drivers = {
            r.id: driver_for(
                device(r.id, ports[r.id], int(r.link["common_address"])),
                [p.address for p in scenario.profiles[r.id].points],
            )
            for r in scenario.relays
        }
        try:
            async with contextlib.AsyncExitStack() as stack:
                for relay_id, drv in drivers.items():
                    await stack.enter_async_context(running(drv, sink))
                    await connected(sink, relay_id)
                await runner.play()
                expected = [p for p in runner.played if p.address is not None]
                await wait_until(
                    lambda: len(sink.points(cause="spontaneous")) >= len(expected),
                    what="every scenario event",
                )
        finally:
            await runner.stop()
    for relay_id in drivers:
        want = [p for p in expected if p.relay == relay_id]
        got = sink.points(relay_id, "spontaneous")
        assert [o.address for o in got] == [p.address for p in want]
        for played, obs in zip(want, got, strict=True):
            spec = scenario.profiles[relay_id].by_address[obs.address]
            assert obs.device_time == played.device_time  # to the millisecond, in UTC
            assert obs.device_time_flags == ()
            assert obs.quality == ()
            if spec.kind == "trip":  # protection event M_EP_TD_1
                assert obs.details["type"] == "M_EP_TD_1"
                assert obs.value == ("on" if played.step.value else "off")
            else:
                assert obs.details["type"] == "M_SP_TB_1"
                assert obs.value is played.step.value
            assert obs.details["time_source"] == "cp56"


async def test_quality_bits_travel_end_to_end() -> None:
    port = free_port()
    relay = await line_relay(port)
    sink = RecordingSink()
    drv = driver_for(device("line1", port, 1))
    try:
        async with running(drv, sink):
            await connected(sink, "line1")
            cases = [
                ("ct_circuit_alarm", True, ["IV", "NT", "SB", "BL"]),  # SIQ has no OV
                ("trip_phase_a", True, ["IV", "NT", "SB", "BL", "EI"]),  # SEP
                ("current_phase_a", 812.5, ["IV", "NT", "SB", "BL", "OV"]),  # QDS
            ]
            for i, (name, value, quality) in enumerate(cases):
                at = T0 + timedelta(milliseconds=7 * i + 1)
                await relay.emit(LINE.by_name[name], value, quality, at)
            await wait_until(lambda: len(sink.points("line1", "spontaneous")) >= 3)
    finally:
        await relay.stop()
    got = sink.points("line1", "spontaneous")
    for i, ((name, _value, quality), obs) in enumerate(zip(cases, got, strict=True)):
        assert obs.address == LINE.by_name[name].address
        assert obs.quality == tuple(quality)
        assert obs.device_time == T0 + timedelta(milliseconds=7 * i + 1)
    assert got[2].value == 812.5
    assert got[2].measurement
    assert got[1].value == "on"


async def test_general_interrogation_after_connect_reports_current_states() -> None:
    port = free_port()
    relay = await line_relay(port, types={"1031": "M_DP_TB_1"})
    # The relay's state before any master connects (no event: just its current values).
    relay.point("1031").info = make_info("M_DP_TB_1", "on", [], T0)
    relay.point("1101").info = make_info("M_SP_TB_1", True, ["NT"], T0)
    relay.point("2001").info = make_info("M_ME_TF_1", 401.25, [], T0)
    # An event emitted while no master was connected waits in the relay's buffer.
    await relay.emit(LINE.by_name["start"], True, [], T0 + timedelta(milliseconds=5))
    sink = RecordingSink()
    try:
        async with running(driver_for(device("line1", port, 1)), sink):
            await connected(sink, "line1", gi_answers=3)
            await wait_until(lambda: sink.points("line1", "spontaneous"), what="buffered event")
    finally:
        await relay.stop()
    gi = {o.address: o for o in sink.points("line1", "interrogated")}
    assert gi["1031"].value == "on"
    assert gi["1101"].value is True
    assert gi["1101"].quality == ("NT",)
    assert gi["2001"].value == 401.25
    assert gi["2001"].measurement
    assert "1011" not in gi  # protection events are not part of a general interrogation
    assert {o.cause_raw for o in gi.values()} == {"INTERROGATED_BY_STATION"}  # COT 20
    buffered = sink.points("line1", "spontaneous")[0]
    assert buffered.cause_raw == "SPONTANEOUS"  # COT 3
    assert (buffered.address, buffered.device_time) == ("1001", T0 + timedelta(milliseconds=5))


async def test_a_slow_sink_commits_in_order_and_loses_nothing() -> None:
    """c104's callbacks hand ASDUs on without waiting; the sink commits them on one
    thread, one at a time, in the order received, and a slow commit loses nothing (the
    guard holds the relay's window until each commit returned)."""
    port = free_port()
    relay = await line_relay(port)
    sink = RecordingSink()
    try:
        async with running(driver_for(device("line1", port, 1)), sink):
            await connected(sink, "line1")
            sink.delay_s = 0.05
            first_call = len(sink.calls)
            for i in range(20):
                value = i % 2 == 0
                await relay.emit(LINE.by_name["start"], value, [], T0 + timedelta(seconds=i))
            await wait_until(lambda: len(sink.points("line1", "spontaneous")) >= 20)
    finally:
        await relay.stop()
    calls = sink.calls[first_call:]
    assert len({thread for _, _, thread in calls}) == 1
    for (_, end, _), (start, _, _) in itertools.pairwise(calls):
        assert start >= end  # the next delivery began only after the previous returned
    times = [o.device_time for o in sink.points("line1", "spontaneous")]
    assert times == [T0 + timedelta(seconds=i) for i in range(20)]


async def test_relay_vanishes_then_returns_with_a_fresh_interrogation() -> None:
    port = free_port()
    relay = await line_relay(port)
    sink = RecordingSink()
    cfg = device("line1", port, 1, connect_timeout_s=20.0)
    try:
        drv = driver_for(cfg)
        task = asyncio.create_task(drv.run(sink))
        await connected(sink, "line1")
        gi_before = len(sink.points("line1", "interrogated"))
        await relay.set_online(False)
        with pytest.raises(LinkError):
            await asyncio.wait_for(task, 30)
        assert sink.link_states("line1") == [True, False]
        await relay.set_online(True)
        async with running(driver_for(cfg), sink):  # the supervisor makes a fresh driver
            await wait_until(lambda: sink.link_states("line1") == [True, False, True])
            await wait_until(
                lambda: len(sink.points("line1", "interrogated")) >= 2 * gi_before,
                what="a fresh general interrogation",
            )
            await relay.emit(LINE.by_name["reclose"], True, [], T0)
            await wait_until(lambda: sink.points("line1", "spontaneous"), what="event after return")
    finally:
        await relay.stop()


async def test_unknown_points_stations_and_mismatched_types_are_reported() -> None:
    port = free_port()
    relay = await line_relay(port)
    sink = RecordingSink()
    drv = driver_for(device("line1", port, 1), [p.address for p in LINE.points])
    try:
        async with running(drv, sink):
            await connected(sink, "line1")
            station = relay.station
            stray = station.add_point(io_address=4242, type=c104.Type.M_SP_TB_1)
            assert stray is not None
            stray.info = make_info("M_SP_TB_1", True, [], T0)
            stray.transmit(cause=c104.Cot.SPONTANEOUS)
            # The client learned 1031 as M_SP_TB_1 (from the GI); now the relay sends M_DP_TB_1.
            station.remove_point(1031)
            dp = station.add_point(io_address=1031, type=c104.Type.M_DP_TB_1)
            assert dp is not None
            dp.info = make_info("M_DP_TB_1", "intermediate", [], T0)
            dp.transmit(cause=c104.Cot.SPONTANEOUS)
            server = relay._server
            assert server is not None
            other = server.add_station(common_address=99)
            assert other is not None
            foreign = other.add_point(io_address=7, type=c104.Type.M_SP_TB_1)
            assert foreign is not None
            foreign.info = make_info("M_SP_TB_1", True, [], T0)
            foreign.transmit(cause=c104.Cot.SPONTANEOUS)
            await wait_until(lambda: len(sink.points("line1", "spontaneous")) >= 3)
    finally:
        await relay.stop()
    got = {o.address: o for o in sink.points("line1", "spontaneous")}
    assert got["4242"].value is True
    assert got["4242"].device_time == T0
    assert got["1031"].value == "intermediate"
    assert got["1031"].details["type"] == "M_DP_TB_1"  # its own type, whatever the GI said
    assert got["99:7"].details["common_address"] == 99


async def test_polls() -> None:
    port = free_port()
    relay = await line_relay(port)
    sink = RecordingSink()
    drv = driver_for(device("line1", port, 1))
    with pytest.raises(LinkError):
        await drv.poll("line1", PollKind.STATUS)
    try:
        async with running(drv, sink):
            await connected(sink, "line1")
            before = len(sink.points("line1", "interrogated"))
            relay.point("1101").info = make_info("M_SP_TB_1", True, [], T0)
            status = await drv.poll("line1", PollKind.STATUS)
            assert isinstance(status, StatusResult)
            # the poll's general interrogation: its answers are states, not changes (stored
            # in the background: the poll answers from what the link decoded)
            await wait_until(
                lambda: "1101" in {o.address for o in sink.points("line1", "interrogated")[before:]}
            )
            assert not sink.points("line1", "spontaneous")
            assert {p.address: p.value for p in status.points}["1101"] is True
            assert "2001" in {p.address for p in status.measurements}
            await relay.emit(LINE.by_name["start"], True, [], T0)
            await wait_until(lambda: sink.points("line1", "spontaneous"))
            recent = await drv.poll("line1", PollKind.EVENTS)
            assert isinstance(recent, EventsResult)
            # the change, not the interrogation answers
            assert [(e.address, e.cause) for e in recent.events] == [("1001", "spontaneous")]
            with pytest.raises(ValueError, match="identity"):
                await drv.poll("line1", PollKind.IDENTITY)
            with pytest.raises(ValueError, match="settings"):
                await drv.poll("line1", PollKind.SETTINGS)
            with pytest.raises(KeyError):
                await drv.poll("line9", PollKind.STATUS)
    finally:
        await relay.stop()


async def test_no_relay_gives_link_error_refused_or_after_the_connect_timeout() -> None:
    drv = driver_for(device("line1", free_port(), 1, connect_timeout_s=1.0))
    with pytest.raises(LinkError, match=r"not reachable: \[Errno 111\]"):
        await asyncio.wait_for(drv.run(RecordingSink()), 30)
    with unanswered_port() as port:
        drv = driver_for(device("line1", port, 1, connect_timeout_s=1.0))
        with pytest.raises(LinkError, match="not reachable: timed out"):
            await asyncio.wait_for(drv.run(RecordingSink()), 30)


async def interrogated(drv: Iec104Driver) -> None:
    """Cancelled mid-GI, c104's interrogation would hold a worker thread until it ends."""
    await wait_until(lambda: drv.ready, what="general interrogation confirmed")


async def test_cancelled_run_stops_the_client() -> None:
    """Cancelling `run` closes the socket and joins c104's threads: repeated runs do not
    accumulate threads (measured after a first run, which starts the executor's workers)."""
    port = free_port()
    relay = await line_relay(port)
    counts = []
    try:
        for _ in range(4):
            sink = RecordingSink()
            drv = driver_for(device("line1", port, 1))
            async with running(drv, sink):
                await connected(sink, "line1")
                await interrogated(drv)
                assert relay.connected_clients == 1
            await wait_until(lambda: relay.connected_clients == 0, what="connection closed")
            # c104's native threads only: asyncio's executor keeps (bounded) idle workers,
            # more of them whenever two `to_thread` calls happened to overlap
            counts.append(native_threads() - threading.active_count())
    finally:
        await relay.stop()
    # A leaked client keeps at least one native thread per run (+3 over three more runs); a
    # Python thread ending between the two reads above shifts one reading by one.
    assert counts[-1] <= counts[0] + 1, counts
