"""A relay that sends malformed, unusual or fuzzed ASDUs, against the real driver and c104.

The relay is `simulator.relays.iec104.raw_outstation.RawOutstation`: it writes exactly the bytes
given, keeps every I-frame until the master's N(R) confirms it, and resends what is unconfirmed to
the next master. So "acknowledged" below is what the relay saw on the wire, not what the agent says.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from protocols.errors import LinkError
from protocols.iec104.driver import Iec104Driver
from simulator.harness.fuzz104 import fuzzed_asdus
from simulator.relays.iec104.raw_outstation import RawOutstation, asdu, single_point_tb

from .helpers import RecordingSink, device, driver_for, free_port, running, wait_until

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CRASHES_C104 = bytes.fromhex("01ff0300050001000001")  # M_SP_NA_1, SQ=1, 127 objects, 1 held
MALFORMED = {
    "sq_count_beyond_payload": CRASHES_C104,
    "unknown_type_id": bytes.fromhex("7f01030005000a000001"),
    "object_missing": bytes.fromhex("010103000500"),
    "count_zero": bytes.fromhex("01000300050001000001"),
    "two_declared_one_sent": bytes.fromhex("0102030005000b000001"),
    "shorter_than_dui": bytes.fromhex("0101"),
}


@contextlib.asynccontextmanager
async def outstation(**kwargs: object) -> AsyncIterator[RawOutstation]:
    relay = await RawOutstation(free_port(), **kwargs).start()  # type: ignore[arg-type]
    try:
        yield relay
    finally:
        await relay.close()


def relay_driver(device_id: str, relay: RawOutstation, **extra: object) -> Iec104Driver:
    return driver_for(device(device_id, relay.port, relay.common_address, **extra))


async def test_malformed_asdus_are_stored_raw_and_acknowledged_without_a_restart() -> None:
    """c104 segfaults on the first frame when it sees it; here each becomes an observation
    with its bytes, the relay gets every frame confirmed, and the link never restarts."""
    sink = RecordingSink()
    async with (
        outstation(common_address=5) as relay,
        running(driver := relay_driver("r1", relay), sink) as task,
    ):
        await relay.send_many(MALFORMED.values())
        await relay.send_asdu(single_point_tb(5, 1001, True, T0))
        await wait_until(lambda: any(o.address == "1001" for o in sink.points("r1")))
        await relay.wait_all_acked()
        assert not task.done()
    assert relay.connections == 1
    assert driver.counters["asdus_diverted"] == len(MALFORMED)
    assert driver.counters["framing_errors"] == 0
    kept = {o.details["raw"]: o for o in sink.points("r1") if "diverted" in o.details}
    assert set(kept) == {frame.hex() for frame in MALFORMED.values()}
    crash = kept[CRASHES_C104.hex()]
    assert (crash.address, crash.value, crash.cause) == ("1", None, "spontaneous")
    assert crash.cause_raw == "SPONTANEOUS"
    assert crash.details["type"] == "M_SP_NA_1"
    assert "127 objects" in str(crash.details["diverted"])
    unknown = kept[MALFORMED["unknown_type_id"].hex()]
    assert (unknown.details["type"], unknown.details["type_id"]) == ("unknown", 0x7F)
    event = next(o for o in sink.points("r1") if o.address == "1001")
    assert event.device_time == T0
    assert event.details["time_source"] == "cp56"


@pytest.mark.parametrize("cot", [48, 63, 42])
async def test_a_cause_c104_does_not_name_is_kept_by_number(cot: int) -> None:
    sink = RecordingSink()
    async with outstation() as relay, running(relay_driver("r1", relay), sink) as task:
        await relay.send_asdu(single_point_tb(1, 1001, True, T0, cot=cot))
        await relay.send_asdu(single_point_tb(1, 1002, True, T0 + timedelta(seconds=1)))
        await wait_until(lambda: {"1001", "1002"} <= {o.address for o in sink.points("r1")})
        await relay.wait_all_acked()
        assert not task.done()
    assert relay.connections == 1
    private = next(o for o in sink.points("r1") if o.address == "1001")
    assert (private.cause_raw, private.details["cot"], private.value) == (f"COT_{cot}", cot, True)
    assert private.cause == "other"
    assert private.device_time == T0


async def test_broken_framing_ends_only_that_link() -> None:
    """Garbage where an APCI belongs ends the connection (as lib60870 would); the relay
    keeps what was not confirmed, and a relay beside it is untouched."""
    sink = RecordingSink()
    async with (
        outstation() as bad,
        outstation(common_address=2) as good,
        running(bad_driver := relay_driver("bad", bad), sink) as bad_task,
        running(relay_driver("good", good), sink) as good_task,
    ):
        await wait_until(lambda: bad.started.is_set() and good.started.is_set())
        bad.send_raw(b"\x69\x04\x01\x00\x00\x00")
        with pytest.raises(LinkError):
            await asyncio.wait_for(bad_task, 30)
        await good.send_asdu(single_point_tb(2, 7, True, T0))
        await good.wait_all_acked()
        assert not good_task.done()
    assert [o.address for o in sink.points("good")] == ["7"]
    assert bad_driver.counters["framing_errors"] == 1


async def test_fuzzed_relay_beside_two_healthy_relays_that_lose_nothing() -> None:
    """100,000 fuzzed ASDUs from one relay while two others send events: the agent lives,
    the fuzzed link never restarts, every fuzzed frame is confirmed only after it was
    stored (given to c104 or kept raw), and the healthy relays' events all arrive."""
    fuzz_count, healthy_events = 100_000, 300
    sink = _CountingSink()
    async with (
        # A window of 200: a throughput choice for 100,000 frames, not a need (the guard
        # confirms 5 ms after a durable frame; the end-to-end test runs k = 12).
        outstation(common_address=9, k=200) as fuzzed,
        outstation(common_address=2) as healthy_a,
        outstation(common_address=3) as healthy_b,
        running(relay_driver("fuzzed", fuzzed, interrogation_timeout_s=120), sink) as fuzz_task,
        running(relay_driver("a", healthy_a), sink) as task_a,
        running(relay_driver("b", healthy_b), sink) as task_b,
    ):

        async def healthy(relay: RawOutstation) -> None:
            for i in range(healthy_events):
                at = T0 + timedelta(milliseconds=i)
                await relay.send_asdu(single_point_tb(relay.common_address, 1 + i % 20, True, at))

        await asyncio.gather(
            fuzzed.send_many(fuzzed_asdus(seed=104, count=fuzz_count, ca=9)),
            healthy(healthy_a),
            healthy(healthy_b),
        )
        for relay in (fuzzed, healthy_a, healthy_b):
            await relay.wait_all_acked(wait_s=60)
        assert not (fuzz_task.done())
        assert not (task_a.done())
        assert not (task_b.done())
    assert (fuzzed.connections, healthy_a.connections, healthy_b.connections) == (1, 1, 1)
    for device_id in ("a", "b"):
        times = sorted(sink.timed[device_id])
        assert times == [T0 + timedelta(milliseconds=i) for i in range(healthy_events)]
    assert sink.diverted > fuzz_count // 2  # most mutations break the structure


class _CountingSink(RecordingSink):
    """Keeps counts and the healthy relays' device times, not 100,000 observations."""

    def __init__(self) -> None:
        super().__init__()
        self.diverted = 0
        self.timed: dict[str, list[datetime]] = {"a": [], "b": []}

    def deliver_blocking(self, observations: object) -> None:
        for o in observations:  # type: ignore[attr-defined]
            if o.device_id in self.timed and o.device_time is not None:
                self.timed[o.device_id].append(o.device_time)
            elif "diverted" in o.details:
                self.diverted += 1


def test_asdu_helper_builds_the_documented_reproducer() -> None:
    assert asdu(1, 3, 5, bytes.fromhex("01000001"), 127, sq=True) == CRASHES_C104
