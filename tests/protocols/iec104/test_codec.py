"""The pure conversion: CP56 time and its flags, element lookup, quality bits, values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import c104
import pytest

from protocols.errors import DecodeError
from protocols.iec104 import codec

from .helpers import local_timezone

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


def test_find_element_in_a_multi_object_asdu() -> None:
    assert codec.find_element(GI_FRAME, 1011) == bytes.fromhex("009f9e280d1c0b1a")
    assert codec.find_element(GI_FRAME, 9999) == bytes.fromhex("009f9e280d1c0b1a")
    assert codec.find_element(GI_FRAME, 42) is None
    assert codec.find_element(SP_TB_FRAME[6:], 1011) == bytes.fromhex("91ab75140a050318")


def test_find_element_in_a_sequence_asdu() -> None:
    # SQ=1, three M_SP_TB_1 elements from IOA 100.
    elements = [bytes([i]) + codec.encode_cp56(T + timedelta(milliseconds=i)) for i in range(3)]
    asdu = bytes([30, 0x83, 3, 0, 1, 0]) + (100).to_bytes(3, "little") + b"".join(elements)
    assert codec.find_element(asdu, 102) == elements[2]
    assert codec.find_element(asdu, 103) is None


def test_every_quality_bit_is_named() -> None:
    everything = (
        c104.Quality.Invalid  # type: ignore[operator]  # c104's stubs lack the flags' |
        | c104.Quality.NonTopical
        | c104.Quality.Substituted
        | c104.Quality.Blocked
        | c104.Quality.Overflow
        | c104.Quality.ElapsedTimeInvalid
    )
    assert codec.quality_names(everything) == ("IV", "NT", "SB", "BL", "OV", "EI")
    assert codec.quality_names(c104.Quality()) == ()
    assert codec.quality_names(None) == ()
    counter = c104.BinaryCounterQuality.Invalid | c104.BinaryCounterQuality.Carry  # type: ignore[operator]  # c104's stubs lack the flags' |
    assert codec.quality_names(counter) == ("IV", "CY")


@pytest.mark.parametrize(
    ("info", "value", "measurement", "extras"),
    [
        (c104.SingleInfo(on=True), True, False, {}),
        (c104.DoubleInfo(state=c104.Double.INTERMEDIATE), "intermediate", False, {}),
        (c104.DoubleInfo(state=c104.Double.ON), "on", False, {}),
        (
            c104.ProtectionEventInfo(state=c104.EventState.OFF, elapsed_ms=c104.UInt16(37)),
            "off",
            False,
            {"elapsed_ms": 37},
        ),
        (
            c104.ProtectionStartInfo(
                events=c104.StartEvents.General | c104.StartEvents.PhaseL1,  # type: ignore[operator]  # c104's stubs lack the flags' |
                relay_duration_ms=c104.UInt16(12),
            ),
            True,
            False,
            {"start_events": "GS,SL1", "relay_duration_ms": 12},
        ),
        (
            # c104 2.2.1's constructor takes events/relay_duration_ms (its stub says otherwise)
            c104.ProtectionCircuitInfo(  # type: ignore[call-arg]
                events=c104.OutputCircuits.PhaseL3, relay_duration_ms=c104.UInt16(40)
            ),
            True,
            False,
            {"output_circuits": "CL3", "relay_operating_ms": 40},
        ),
        (c104.ShortInfo(actual=12.5), 12.5, True, {}),
        (c104.ScaledInfo(actual=c104.Int16(-300)), -300.0, True, {}),
        (c104.NormalizedInfo(actual=c104.NormalizedFloat(0.5)), 0.5, True, {}),
        (
            c104.BinaryCounterInfo(
                counter=77, sequence=c104.UInt5(3), quality=c104.BinaryCounterQuality()
            ),
            77,
            True,
            {"sequence": 3},
        ),
    ],
)
def test_point_values(
    info: c104.Information, value: object, measurement: bool, extras: dict[str, object]
) -> None:
    assert codec.point_value(info) == (value, extras, measurement)


def test_observation_keeps_everything_from_the_frame() -> None:
    info = c104.SingleInfo(on=True, quality=c104.Quality.Invalid | c104.Quality.Blocked)  # type: ignore[operator]  # c104's stubs lack the flags' |
    frame = bytearray(SP_TB_FRAME)
    frame[-7:] = codec.encode_cp56(T, ("substituted", "summer_time"))
    obs = codec.to_observation(
        "line1",
        "1011",
        io_address=1011,
        common_address=1,
        type_name="M_SP_TB_1",
        cot_name="SPONTANEOUS",
        info=info,
        raw=bytes(frame),
        flags={"test": False, "negative": False},
    )
    assert obs.value is True
    assert obs.quality == ("IV", "BL")
    assert obs.device_time == T
    assert obs.device_time_flags == ("substituted", "summer_time")
    assert (obs.cause, obs.cause_raw) == ("spontaneous", "SPONTANEOUS")
    assert obs.measurement is False
    assert obs.details == {
        "type": "M_SP_TB_1",
        "type_id": 30,
        "ioa": 1011,
        "common_address": 1,
        "time_source": "cp56",
    }


def test_protection_event_observation_carries_elapsed_time() -> None:
    frame = bytes.fromhex("681700000000260103000100f403000a2500ab75140a050318")
    info = c104.ProtectionEventInfo(
        state=c104.EventState.ON,
        elapsed_ms=c104.UInt16(37),
        quality=c104.Quality.ElapsedTimeInvalid,
    )
    obs = codec.to_observation(
        "line1", "1012", io_address=1012, common_address=1, type_name="M_EP_TD_1",
        cot_name="SPONTANEOUS", info=info, raw=frame,
    )  # fmt: skip
    assert (obs.value, obs.quality, obs.device_time) == ("on", ("EI",), T)
    assert obs.details["elapsed_ms"] == 37


def test_untimed_measurement_has_no_device_time() -> None:
    frame = bytes.fromhex("6812000000000d0103000100d107000000484100")
    obs = codec.to_observation(
        "line1", "2001", io_address=2001, common_address=1, type_name="M_ME_NC_1",
        cot_name="PERIODIC", info=c104.ShortInfo(actual=12.5), raw=frame,
    )  # fmt: skip
    assert (obs.value, obs.measurement, obs.device_time) == (12.5, True, None)
    assert "time_source" not in obs.details


def test_fallback_to_c104_time_is_utc_under_a_non_utc_zone() -> None:
    """When the element is not in the bytes, c104's naive *local* time is converted."""
    with local_timezone("Asia/Shanghai"):
        local = datetime(2024, 3, 5, 18, 20, 30, 123000)  # 10:20:30.123 UTC in UTC+8
        info = c104.SingleInfo(on=False, recorded_at=local)
        obs = codec.to_observation(
            "line1", "1011", io_address=1011, common_address=1, type_name="M_SP_TB_1",
            cot_name="SPONTANEOUS", info=info, raw=b"",
        )  # fmt: skip
    assert obs.device_time == T
    assert obs.details["time_source"] == "c104_local"


def test_decode_from_bytes_ignores_the_process_time_zone() -> None:
    with local_timezone("America/New_York"):
        obs = codec.to_observation(
            "line1", "1011", io_address=1011, common_address=1, type_name="M_SP_TB_1",
            cot_name="SPONTANEOUS", info=c104.SingleInfo(on=True), raw=SP_TB_FRAME,
        )  # fmt: skip
    assert obs.device_time == T


@pytest.mark.parametrize(
    ("cot", "cause"),
    [
        ("SPONTANEOUS", "spontaneous"),
        ("RETURN_INFO_REMOTE", "spontaneous"),
        ("RETURN_INFO_LOCAL", "spontaneous"),
        ("INTERROGATED_BY_STATION", "interrogated"),
        ("INTERROGATED_BY_GROUP_16", "interrogated"),
        ("REQUEST", "requested"),
        ("REQUESTED_BY_GENERAL_COUNTER", "requested"),
        ("PERIODIC", "periodic"),
        ("BACKGROUND_SCAN", "periodic"),
        ("ACTIVATION_CON", "other"),
        ("UNKNOWN_COT", "other"),
    ],
)
def test_the_cause_of_transmission_says_why_a_value_was_sent(cot: str, cause: str) -> None:
    """COT 20-36 answer an interrogation, 5 and 37-41 a read: states, not changes."""
    obs = codec.to_observation(
        "line1", "1011", io_address=1011, common_address=1, type_name="M_SP_TB_1",
        cot_name=cot, info=c104.SingleInfo(on=True), raw=SP_TB_FRAME,
    )  # fmt: skip
    assert (obs.cause, obs.cause_raw) == (cause, cot)


def test_every_c104_cause_of_transmission_has_a_meaning() -> None:
    assert {codec.cause_of(name) for name in c104.Cot.__members__} == {
        "spontaneous", "interrogated", "requested", "periodic", "other",
    }  # fmt: skip
