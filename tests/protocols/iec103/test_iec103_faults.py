"""Line faults and relay faults: each is counted, the link recovers, nothing is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from protocols.driver import PollKind, StatusResult
from protocols.observations import IdentityObservation, LinkStateObservation, SettingsObservation
from tests.protocols.iec103.conftest import Bench


async def _initialised(bench: Bench) -> None:
    await bench.until(
        lambda: all(len(bench.sink.of(SettingsObservation, d)) >= 1 for d in bench.relays)
    )


async def test_garbage_bad_checksums_lost_frames_and_unknown_asdus(bench: Bench) -> None:
    await _initialised(bench)
    relay, sink = bench.relays["relay1"], bench.sink
    trip = bench.profile.by_name["trip_phase_a"]
    t0 = datetime.now(UTC)
    expected = []
    for i in range(12):
        when = t0 + timedelta(milliseconds=10 * i)
        if i % 4 == 0:
            relay.garbage_next = b"\x00\x55\xaa\x68\x02"  # line noise, even a false start
        elif i % 4 == 1:
            relay.corrupt_next = 1  # the answer's checksum is wrong: retry, same FCB
        elif i % 4 == 2:
            relay.ignore_next = 1  # the request is lost: retry, same FCB
        await relay.emit(trip, i % 2 == 0, [], when)
        expected.append(
            ("128/69", i % 2 == 0, when.replace(microsecond=when.microsecond // 1000 * 1000))
        )
        if i == 5:
            relay.queue_raw(bytes([99, 0x81, 1, 1, 128, 200, 1, 2, 3]), "unknown")
            relay.queue_raw(bytes([1, 0x81, 1, 1, 128, 201, 2]), "malformed")  # ASDU 1, short
        await bench.until(lambda: not relay.class1, timeout=30)
    await bench.until(
        lambda: len([e for e in sink.events("relay1") if e.address == "128/69"]) >= 12
    )
    got = [
        (e.address, e.value, e.device_time) for e in sink.events("relay1") if e.address == "128/69"
    ]
    assert got == expected  # every event once, in order: no loss, no duplicate
    status = await bench.driver.poll("relay1", PollKind.STATUS)
    assert isinstance(status, StatusResult)
    counters = {k: v for k, v in status.counters.items() if isinstance(v, int)}  # counts
    assert counters["bus_garbage_bytes"] > 0
    assert counters["bus_bad_frames"] > 0
    assert counters["retries"] >= 6
    assert counters["timeouts"] >= 6
    assert counters["unknown_asdus"] == 1
    assert counters["decode_errors"] == 1
    unknown = [
        o
        for o in sink.of(type(sink.events("relay1")[0]), "relay1")
        if o.details.get("unknown_asdu") or o.details.get("undecodable")
    ]
    assert {o.address for o in unknown} == {"128/200", "128/201"}  # forwarded, not dropped
    assert relay.repeats >= 3  # the relay answered the repeated FCB with its last answer


async def test_a_silent_relay_goes_down_alone_and_is_reinitialised(bench: Bench) -> None:
    await _initialised(bench)
    sink = bench.sink
    quiet, chatty = bench.relays["relay2"], bench.relays["relay1"]
    point = bench.profile.by_name["self_check_fail"]
    await quiet.set_online(False)
    await bench.until(lambda: any(not o.up for o in sink.of(LinkStateObservation, "relay2")))
    # The other relay on the bus keeps delivering while relay2 is silent.
    before = len(sink.events("relay1"))
    await chatty.emit(point, True, [], datetime.now(UTC))
    await bench.until(lambda: len(sink.events("relay1")) > before)
    assert all(o.up for o in sink.of(LinkStateObservation, "relay1"))
    # Events raised while silent are kept by the relay and collected after re-init.
    await quiet.emit(point, True, [], datetime.now(UTC))
    idents = len(sink.of(IdentityObservation, "relay2"))
    await quiet.set_online(True)
    await bench.until(lambda: sink.of(LinkStateObservation, "relay2")[-1].up)
    await bench.until(
        lambda: any(e.address == "128/47" and e.value is True for e in sink.events("relay2"))
    )
    await bench.until(lambda: len(sink.of(IdentityObservation, "relay2")) > idents)
    counters = bench.driver.relays["relay2"].counters
    await bench.until(lambda: counters["gi_completed"] >= 2)
    assert bench.driver.relays["relay2"].station.counters["resets"] >= 2
