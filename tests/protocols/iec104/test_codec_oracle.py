"""Our ASDU decoder against c104's: the same bytes, every monitoring type, every octet.

The agent decodes a relay's ASDUs itself (codec.py says why). The outside oracle is c104
(lib60870) decoding the very same frames: a raw outstation sends ASDUs of every monitoring
type c104 decodes, with random values, random quality octets (reserved bits too) and
random CP56 times with their flags, to a bare c104 client; each object c104 hands to a point
callback must decode to the same value, details, quality and time here.

No `from __future__ import annotations`: c104 checks callback annotations as real objects.
"""

import asyncio
import random
import struct
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import c104
import pytest

from protocols.iec104 import codec
from protocols.iec104.apdu_check import ELEMENT_SIZE, MONITORING_TYPES
from simulator.relays.iec104.raw_outstation import RawOutstation, asdu

from .helpers import free_port

CA = 7
OBJECTS = 6  # per ASDU
ROUNDS = 4  # ASDUs per type
# Types c104 2.2.1 hands to a point callback. It drops the CP24Time2a types (2-19) without
# a word (not even `on_unexpected_message`): those are checked against golden bytes in
# test_codec.py instead.
CP24_TYPES = frozenset({2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19})
ORACLE_TYPES = sorted(MONITORING_TYPES - CP24_TYPES)
START = datetime(2026, 1, 1, tzinfo=UTC)
QUALITY = {"Invalid": "IV", "NonTopical": "NT", "Substituted": "SB", "Blocked": "BL",
           "Overflow": "OV", "ElapsedTimeInvalid": "EI"}  # fmt: skip
# c104 2.2.1 names the sequence octet's 0x40 "Carry" and 0x20 "Adjusted": swapped against
# IEC 60870-5-101 7.2.6.9 and lib60870 itself (BinaryCounterReading_hasCarry tests 0x20).
# Records before the agent decoded ASDUs itself carried c104's swap; the standard wins here.
COUNTER_QUALITY = {"Invalid": "IV", "Adjusted": "CY", "Carry": "CA"}
STARTS = {"General": "GS", "PhaseL1": "SL1", "PhaseL2": "SL2", "PhaseL3": "SL3",
          "InEarthCurrent": "SIE", "ReverseDirection": "SRD"}  # fmt: skip
CIRCUITS = {"General": "GC", "PhaseL1": "CL1", "PhaseL2": "CL2", "PhaseL3": "CL3"}


def random_element(rng: random.Random, type_id: int) -> bytes:
    size = ELEMENT_SIZE[type_id]
    if type_id not in codec.CP56_TYPES:
        return rng.randbytes(size)
    at = START + timedelta(milliseconds=rng.randrange(10**10))
    flags = tuple(f for f in ("invalid", "substituted", "summer_time") if rng.random() < 0.3)
    return rng.randbytes(size - 7) + codec.encode_cp56(at, flags)


def frames(rng: random.Random) -> list[bytes]:
    """ROUNDS ASDUs of each oracle type, SQ=0 and SQ=1, at IOAs no other type uses."""
    out = []
    for type_id in ORACLE_TYPES:
        for round_ in range(ROUNDS):
            base = type_id * 1000 + round_ * 100
            elements = [random_element(rng, type_id) for _ in range(OBJECTS)]
            if round_ % 2:
                body = struct.pack("<I", base)[:3] + b"".join(elements)
                out.append(asdu(type_id, 3, CA, body, OBJECTS, sq=True))
            else:
                objs = b"".join(struct.pack("<I", base + i)[:3] + e for i, e in enumerate(elements))
                out.append(asdu(type_id, 20 if round_ else 3, CA, objs, OBJECTS))
    return out


def flags_of(flag: Any, names: dict[str, str]) -> set[str]:
    bits = int(flag.value)
    members = type(flag).__members__
    return {ours for theirs, ours in names.items() if bits & int(members[theirs].value)}


def c104_view(info: Any) -> dict[str, Any]:
    """What c104 made of one object, in our terms (names from c104's own enums)."""
    view: dict[str, Any] = {}
    if isinstance(info, c104.SingleInfo):
        view["value"] = bool(info.on)
    elif isinstance(info, c104.DoubleInfo):
        view["value"] = info.state.name.lower()
    elif isinstance(info, c104.StepInfo):
        view |= {"value": int(float(info.position)), "transient": bool(info.transient)}  # type: ignore[arg-type]
    elif isinstance(info, c104.BinaryInfo):
        view["value"] = int.from_bytes(bytes(info.blob), "big")
    elif isinstance(info, c104.NormalizedInfo | c104.ScaledInfo | c104.ShortInfo):
        view["value"] = float(info.actual)  # type: ignore[arg-type]
    elif isinstance(info, c104.BinaryCounterInfo):
        view |= {"value": int(info.counter), "sequence": int(float(info.sequence))}  # type: ignore[arg-type]
    elif isinstance(info, c104.StatusAndChanged):
        view |= {"value": int(info.status.value), "changed": int(info.changed.value)}
    else:
        view = protection_view(info)
    counter = isinstance(info, c104.BinaryCounterInfo)
    if info.quality is not None:
        view["quality"] = flags_of(info.quality, COUNTER_QUALITY if counter else QUALITY)
    if info.recorded_at is not None:  # naive local time; the test runs in UTC
        view["time"] = info.recorded_at.replace(tzinfo=UTC)
    return view


def protection_view(info: Any) -> dict[str, Any]:
    if isinstance(info, c104.ProtectionEventInfo):
        # c104 reads the event state as three bits, where IEC 60870-5-101 7.2.6.10 has two
        # and a spare (c104 has no name when the spare is set): the two bits are compared
        names = {int(v.value): k for k, v in c104.EventState.__members__.items()}
        state = names[int(info.state.value) & 0x03].lower()
        return {"value": state, "elapsed_ms": int(info.elapsed_ms)}
    if isinstance(info, c104.ProtectionStartInfo):
        return {
            "start_events": flags_of(info.events, STARTS),
            "relay_duration_ms": int(info.relay_duration_ms),
        }
    assert isinstance(info, c104.ProtectionCircuitInfo), type(info)
    return {
        "output_circuits": flags_of(info.circuits, CIRCUITS),
        "relay_operating_ms": int(info.relay_operating_ms),
    }


def our_view(obs: Any, like: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    details = obs.details
    for key in like:
        if key in ("start_events", "output_circuits"):
            view[key] = set(filter(None, str(details[key]).split(",")))
        elif key == "quality":
            view[key] = set(obs.quality)
        elif key == "time":
            view[key] = obs.device_time
        elif key == "value":
            view[key] = obs.value
        else:
            view[key] = details[key]
    return view


async def c104_decodes(relay: RawOutstation, bodies: list[bytes]) -> dict[str, Any]:
    """Every object c104's point callbacks got, by "<type>:<ioa>"."""
    got: dict[str, Any] = {}
    unexpected: list[str] = []
    lock = threading.Lock()
    client = c104.Client(tick_rate_ms=50)
    connection = client.add_connection(ip="127.0.0.1", port=relay.port, init=c104.Init.MUTED)
    assert connection is not None

    def on_point(
        point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        with lock:
            got[f"{int(message.type.value)}:{point.io_address}"] = point.info
        return c104.ResponseState.SUCCESS

    def on_new_point(
        client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type
    ) -> None:
        point = station.add_point(io_address=io_address, type=point_type)
        if point is not None:
            point.on_receive(callable=on_point)

    def on_unexpected(
        connection: c104.Connection, message: c104.IncomingMessage, cause: c104.Umc
    ) -> None:
        unexpected.append(f"{message.type.name} {cause.name}")

    def on_state(connection: c104.Connection, state: c104.ConnectionState) -> None:
        if state == c104.ConnectionState.OPEN_MUTED:  # as the link does (link.py)
            connection.unmute()

    connection.add_station(common_address=CA)
    connection.on_state_change(callable=on_state)
    client.on_new_point(callable=on_new_point)
    connection.on_unexpected_message(callable=on_unexpected)
    client.start()
    try:
        await relay.send_many(bodies)
        await relay.wait_all_acked()
        await asyncio.sleep(0.5)  # lib60870 confirms a frame after its callbacks returned
    finally:
        await asyncio.to_thread(client.stop)
    with lock:
        got["unexpected"] = unexpected
        return dict(got)  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_monitoring_type_decodes_as_c104_decodes_it(seed: int) -> None:
    bodies = frames(random.Random(seed))
    relay = await RawOutstation(free_port(), common_address=CA).start()
    try:
        theirs = await c104_decodes(relay, bodies)
    finally:
        await relay.close()
    # c104 flags time-tagged interrogation answers (INVALID_COT) and still decodes them
    assert {u for u in theirs.pop("unexpected") if not u.endswith("INVALID_COT")} == set()
    compared = 0
    for body in bodies:
        for obs in codec.decode_asdu("r", CA, body):
            expected = c104_view(theirs[f"{body[0]}:{obs.address}"])
            assert our_view(obs, expected) == expected, (codec.TYPE_NAMES[body[0]], obs)
            compared += 1
    assert compared == len(ORACLE_TYPES) * ROUNDS * OBJECTS
