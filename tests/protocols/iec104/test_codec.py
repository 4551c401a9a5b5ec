"""The pure decoder on golden bytes: CP56 time and its flags, objects, quality bits, values.

Every type c104 decodes is also held to c104 itself in test_codec_oracle.py."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta

import c104
import pytest

from protocols.errors import DecodeError
from protocols.iec104 import codec
from protocols.observations import PointObservation
from simulator.relays.iec104.raw_outstation import asdu

from .helpers import local_timezone

CA = 1

# Captured from c104 on loopback (docs/domain.md, c104): M_SP_TB_1, spontaneous, CA 1, IOA 1011,
# SIQ = IV|BL|on, CP56 2024-03-05 10:20:30.123 (APCI control octets zeroed by c104).
SP_TB_FRAME = bytes.fromhex("6815000000001e0103000100f3030091ab75140a050318")
# A general-interrogation answer: two M_SP_TB_1 objects (IOA 1011 and 9999) in one ASDU.
GI_FRAME = bytes.fromhex("6820000000001e0214000100f30300009f9e280d1c0b1a0f2700009f9e280d1c0b1a")
T = datetime(2024, 3, 5, 10, 20, 30, 123000, tzinfo=UTC)


def test_cp56_golden_bytes() -> None:
    decoded = codec.decode_cp56(bytes.fromhex("ab75140a050318"))
    assert decoded.at == T
    assert decoded.flags == ()
    assert codec.encode_cp56(T)[:4] == bytes.fromhex("ab75140a")


@pytest.mark.parametrize(
    "flags",
    [("invalid",), ("substituted",), ("summer_time",), ("invalid", "substituted", "summer_time")],
)
def test_cp56_flags_are_kept_and_do_not_change_the_time(flags: tuple[str, ...]) -> None:
    decoded = codec.decode_cp56(codec.encode_cp56(T, flags))
    assert decoded.flags == flags
    assert decoded.at == T


def test_cp56_round_trip_keeps_every_millisecond() -> None:
    at = datetime(2031, 12, 31, 23, 59, 0, tzinfo=UTC)
    for ms in (0, 1, 999, 1000, 59_999):
        when = at + timedelta(milliseconds=ms)
        assert codec.decode_cp56(codec.encode_cp56(when)).at == when


@pytest.mark.parametrize("octets", ["ab75140a050018", "60ea140a050318", "ab75", "ab753c0a050318"])
def test_cp56_garbage_raises_decode_error(octets: str) -> None:
    with pytest.raises(DecodeError):
        codec.decode_cp56(bytes.fromhex(octets))


def test_cp56_any_seven_octets_as_the_fields_say() -> None:
    """Every time through the minute cache (`codec._MINUTES`, cleared when full on the way)
    is the datetime its seven fields make, or the same DecodeError, flags included."""
    rng = random.Random(56)
    codec._MINUTES.clear()
    # Mostly valid fields (minute, hour, day, month, year), so that the cache is used.
    fields = (
        [*range(60), 0x7F, 0xBB],
        [*range(24), 0x98],
        [*range(1, 32), 0, 0xE5],
        [*range(1, 13), 0, 13],
        [26, 0xA0],
    )
    flag_bits = ((2, 0x80, "invalid"), (2, 0x40, "substituted"), (3, 0x80, "summer_time"))
    for _ in range(20_000):
        octets = bytes([rng.randrange(256), rng.randrange(256)] + [rng.choice(f) for f in fields])
        ms = octets[0] | octets[1] << 8
        try:
            expected = datetime(
                2000 + (octets[6] & 0x7F), octets[5] & 0x0F, octets[4] & 0x1F, octets[3] & 0x1F,
                octets[2] & 0x3F, ms // 1000, ms % 1000 * 1000, tzinfo=UTC,
            )  # fmt: skip
        except ValueError:
            expected = None
        flags = tuple(name for at, bit, name in flag_bits if octets[at] & bit)
        if expected is None:
            with pytest.raises(DecodeError):
                codec.decode_cp56(octets)
        else:
            assert codec.decode_cp56(octets) == codec.DeviceTime(expected, flags), octets.hex()
    assert len(codec._MINUTES) <= codec.MINUTES_LIMIT


def decode(frame: bytes, own_ca: int = CA) -> list[PointObservation]:
    """The observations of one ASDU, given with or without its APCI."""
    return codec.decode_asdu("line1", own_ca, frame[6:] if frame[0] == 0x68 else frame)


def one(type_id: int, element: bytes, cot: int = 3, ioa: int = 1011) -> PointObservation:
    (obs,) = decode(asdu(type_id, cot, CA, struct.pack("<I", ioa)[:3] + element, 1))
    return obs


def test_the_golden_frame_keeps_everything() -> None:
    (obs,) = decode(SP_TB_FRAME)
    assert (obs.address, obs.value, obs.device_time, obs.device_time_flags) == ("1011", True, T, ())
    assert obs.quality == ("IV", "BL")  # SIQ 0x91
    assert (obs.cause, obs.cause_raw, obs.measurement) == ("spontaneous", "SPONTANEOUS", False)
    assert obs.details == {
        "type": "M_SP_TB_1",
        "type_id": 30,
        "ioa": 1011,
        "common_address": 1,
        "time_source": "cp56",
    }


def test_time_flags_are_kept() -> None:
    frame = bytearray(SP_TB_FRAME)
    frame[-7:] = codec.encode_cp56(T, ("substituted", "summer_time"))
    (obs,) = decode(bytes(frame))
    assert (obs.device_time, obs.device_time_flags) == (T, ("substituted", "summer_time"))


def test_every_object_of_a_multi_object_asdu() -> None:
    first, second = decode(GI_FRAME)
    assert (first.address, second.address) == ("1011", "9999")
    assert first.cause == second.cause == "interrogated"
    assert (
        first.device_time == second.device_time == datetime(2026, 11, 28, 13, 40, 40, 607000, UTC)
    )


def test_a_sequence_asdu_numbers_its_objects_from_the_first_address() -> None:
    elements = [bytes([i % 2]) + codec.encode_cp56(T + timedelta(milliseconds=i)) for i in range(3)]
    body = (100).to_bytes(3, "little") + b"".join(elements)
    got = decode(asdu(30, 3, CA, body, 3, sq=True))
    assert [(o.address, o.value) for o in got] == [("100", False), ("101", True), ("102", False)]
    assert got[2].device_time == T + timedelta(milliseconds=2)


def test_another_common_address_is_named_in_the_address() -> None:
    (obs,) = decode(asdu(1, 3, 99, b"\x07\x00\x00\x01", 1))
    assert (obs.address, obs.details["common_address"]) == ("99:7", 99)


@pytest.mark.parametrize(
    ("type_id", "element", "value", "quality", "extras"),
    [
        (1, b"\x01", True, (), {}),
        (1, b"\xf0", False, ("IV", "NT", "SB", "BL"), {}),
        (3, b"\x00", "intermediate", (), {}),
        (3, b"\x12", "on", ("BL",), {}),
        (3, b"\x03", "indeterminate", (), {}),
        (5, b"\xfd\x01", -3, ("OV",), {"transient": True}),
        (7, bytes.fromhex("000000ff00"), 0xFF, (), {}),  # wire order, read as one number
        (9, bytes.fromhex("00c080"), -0.5, ("IV",), {}),
        (11, bytes.fromhex("d4fe08"), -300.0, ("EI",), {}),
        (13, bytes.fromhex("0000484101"), 12.5, ("OV",), {}),
        (15, bytes.fromhex("4d000000a3"), 77, ("IV", "CY"), {"sequence": 3}),  # CY is 0x20
        (15, bytes.fromhex("ffffffff43"), -1, ("CA",), {"sequence": 3}),
        (20, bytes.fromhex("0500000110"), 5, ("BL",), {"changed": 256}),
        (21, bytes.fromhex("0040"), 0.5, (), {}),  # no quality octet
    ],
)
def test_values_and_quality_of_untimed_types(
    type_id: int, element: bytes, value: object, quality: tuple[str, ...], extras: dict[str, object]
) -> None:
    obs = one(type_id, element)
    assert (obs.value, obs.quality, obs.device_time) == (value, quality, None)
    assert obs.measurement == (type_id in (9, 11, 13, 15, 21))
    assert {k: obs.details[k] for k in extras} == extras
    assert "time_source" not in obs.details


def test_protection_equipment_events() -> None:
    when = codec.encode_cp56(T)
    event = one(38, bytes.fromhex("0a2500") + when)  # ON, EI, 37 ms
    assert (event.value, event.quality, event.device_time) == ("on", ("EI",), T)
    assert event.details["elapsed_ms"] == 37
    starts = one(39, bytes.fromhex("03000c00") + when)
    assert starts.value is True
    assert (starts.details["start_events"], starts.details["relay_duration_ms"]) == ("GS,SL1", 12)
    circuits = one(40, bytes.fromhex("08802800") + when)
    assert (circuits.value, circuits.quality) == (True, ("IV",))
    assert (circuits.details["output_circuits"], circuits.details["relay_operating_ms"]) == (
        "CL3",
        40,
    )
    nothing = one(39, bytes.fromhex("00000000") + when)
    assert (nothing.value, nothing.details["start_events"]) == (False, "")


@pytest.mark.parametrize(
    ("type_id", "element", "value"),
    [(2, b"\x01", True), (4, b"\x02", "on"), (13 + 1, bytes.fromhex("0000484100"), 12.5)],
)
def test_cp24_types_are_decoded_without_a_device_time(
    type_id: int, element: bytes, value: object
) -> None:
    """c104 drops these without a word (test_codec_oracle.py); they are kept here, their
    three-octet time (minutes and milliseconds) is not a device time."""
    obs = one(type_id, element + bytes.fromhex("ab7514"))
    assert (obs.value, obs.device_time) == (value, None)
    assert obs.details["type"] == codec.TYPE_NAMES[type_id]


def test_an_unreadable_time_is_reported_not_dropped() -> None:
    obs = one(30, b"\x01" + bytes.fromhex("60ea140a050318"))  # 60,000 ms
    assert (obs.value, obs.device_time) == (True, None)
    assert "milliseconds 60000" in str(obs.details["time_error"])
    assert codec.UNREADABLE & obs.details.keys()


def test_decode_from_bytes_ignores_the_process_time_zone() -> None:
    with local_timezone("America/New_York"):
        (obs,) = decode(SP_TB_FRAME)
    assert obs.device_time == T


def test_test_and_negative_bits_and_an_unnamed_cause_are_kept() -> None:
    obs = one(1, b"\x01", cot=0x80 | 0x40 | 48)
    assert (obs.cause, obs.cause_raw) == ("other", "COT_48")
    assert (obs.details["test"], obs.details["negative"], obs.details["cot"]) == (True, True, 48)


@pytest.mark.parametrize(
    ("cot", "cause"),
    [
        (3, "spontaneous"),
        (11, "spontaneous"),
        (12, "spontaneous"),
        (20, "interrogated"),
        (36, "interrogated"),
        (5, "requested"),
        (37, "requested"),
        (1, "periodic"),
        (2, "periodic"),
        (7, "other"),
    ],
)
def test_the_cause_of_transmission_says_why_a_value_was_sent(cot: int, cause: str) -> None:
    """COT 20-36 answer an interrogation, 5 and 37-41 a read: states, not changes."""
    obs = one(1, b"\x01", cot=cot)
    assert (obs.cause, obs.cause_raw) == (cause, codec.COT_NAMES[cot])


def test_every_c104_cause_of_transmission_has_a_meaning() -> None:
    assert {codec.cause_of(name) for name in c104.Cot.__members__} == {
        "spontaneous", "interrogated", "requested", "periodic", "other",
    }  # fmt: skip


@pytest.mark.parametrize("type_id", sorted(codec.SHAPED_TYPES))
def test_a_shape_decoded_again_is_what_a_first_decode_gives(type_id: int) -> None:
    """The later events of a shape take their parts from `_SHAPED`: for every value and
    quality octet, cause octet, own or foreign common address and time flags, each equals
    the decode of the same bytes with nothing remembered, its time its own."""
    times = [T, T + timedelta(minutes=7, milliseconds=1), T + timedelta(days=40)]

    def frame(octet: int, cot: int, ca: int, at: datetime, flags: tuple[str, ...]) -> bytes:
        element = bytes([octet]) + codec.encode_cp56(at, flags)
        return asdu(type_id, cot, ca, b"\xf3\x03\x00" + element, 1)

    checked = 0
    for octet in range(256):
        for cot in (3, 0x14, 0x43, 0x85, 0x3F):
            for ca in (CA, 7):
                codec._SHAPED.clear()  # each shape starts unknown
                (first,) = decode(frame(octet, cot, ca, T - timedelta(hours=1), ()))
                for n, at in enumerate(times):
                    flags = ("invalid", "summer_time") if n == 1 else ()
                    (again,) = decode(frame(octet, cot, ca, at, flags))
                    assert again.details is first.details  # taken from the table
                    codec._SHAPED.clear()  # the decode with nothing kept
                    (fresh,) = decode(frame(octet, cot, ca, at, flags))
                    assert again == fresh
                    assert again.shape == fresh.shape
                    assert (again.device_time, again.device_time_flags) == (at, flags)
                    (first,) = decode(frame(octet, cot, ca, T - timedelta(hours=1), ()))
                    checked += 1
    assert checked == 256 * 5 * 2 * 3


def test_an_unreadable_time_is_never_taken_from_a_shape() -> None:
    element = b"\x01" + codec.encode_cp56(T)
    decode(asdu(30, 3, CA, b"\xf3\x03\x00" + element, 1))  # the shape is known
    broken = b"\x01" + b"\xff\xff" + codec.encode_cp56(T)[2:]  # 65535 ms
    (obs,) = decode(asdu(30, 3, CA, b"\xf3\x03\x00" + broken, 1))
    assert obs.device_time is None
    assert obs.shape is None
    assert "milliseconds 65535" in str(obs.details["time_error"])
    assert "time_source" not in obs.details


def test_one_shape_read_by_devices_of_different_common_addresses() -> None:
    """Two devices' links share the table: CA 7's frame is "7:1011" to a device of CA 1
    and "1011" to the device of CA 7, whichever decoded it first."""
    frame = asdu(30, 3, 7, b"\xf3\x03\x00\x01" + codec.encode_cp56(T), 1)
    for _ in range(2):
        assert [o.address for o in decode(frame, own_ca=1)] == ["7:1011"]
        assert [o.address for o in decode(frame, own_ca=7)] == ["1011"]
