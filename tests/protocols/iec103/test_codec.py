"""Codec: Golden vectors (docs/domain.md), hypothesis round trips, extractor resync."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError
from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_base import UnknownAsdu
from protocols.iec103.codec.asdu_disturbance import DisturbanceList, DisturbanceRecord
from protocols.iec103.codec.asdu_generic import (
    GenericCommand,
    GenericData,
    GenericDataSet,
    GenericItem,
    generic_value,
)
from protocols.iec103.codec.asdu_measurands import Measurand, Measurands1, Measurands2
from protocols.iec103.codec.asdu_messages import (
    FaultLocation,
    GeneralInterrogation,
    GiTermination,
    Identification,
    RelativeTimeMessage,
    TimeSync,
    TimeTaggedMessage,
)
from protocols.iec103.codec.frames import (
    Control,
    FixedFrame,
    FrameExtractor,
    SingleCharFrame,
    VariableFrame,
    decode_frame,
    encode_frame,
)
from protocols.iec103.codec.time import (
    Cp32Time,
    Cp56Time,
    cp32_to_datetime,
    cp56_from_datetime,
    cp56_to_datetime,
    decode_cp32,
    decode_cp56,
    encode_cp32,
    encode_cp56,
)

GOLDEN = {
    "reset CU": ("10 40 01 41 16", FixedFrame(Control.primary(0), 1)),
    "class-1 poll, FCB=1": (
        "10 7a 01 7b 16",
        FixedFrame(Control.primary(10, fcb=True, fcv=True), 1),
    ),
    "class-2 poll, FCB=0": ("10 5b 01 5c 16", FixedFrame(Control.primary(11, fcv=True), 1)),
    "ACK with ACD=1": ("10 20 01 21 16", FixedFrame(Control.secondary(0, acd=True), 1)),
}
ASDU5 = "68 15 15 68 28 01 05 81 04 01 a0 03 02 53 49 45 4d 45 4e 53 20 56 34 2e 37 7c 16"


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_fixed_frames(name: str) -> None:
    hexbytes, frame = GOLDEN[name]
    raw = bytes.fromhex(hexbytes)
    assert decode_frame(raw) == frame
    assert encode_frame(frame) == raw


def test_golden_asdu5_siemens() -> None:
    raw = bytes.fromhex(ASDU5)
    frame = decode_frame(raw)
    assert isinstance(frame, VariableFrame)
    assert frame.control == Control.secondary(8, acd=True)
    assert frame.address == 1
    asdu = decode_asdu(frame.asdu)
    assert isinstance(asdu, Identification)
    assert (asdu.cot, asdu.common_address, asdu.fun, asdu.inf, asdu.col) == (4, 1, 160, 3, 2)
    assert asdu.manufacturer_text == "SIEMENS"
    assert asdu.software_text == "V4.7"
    assert encode_frame(VariableFrame(frame.control, 1, encode_asdu(asdu))) == raw


def test_single_char_and_bad_frames() -> None:
    assert decode_frame(b"\xe5") == SingleCharFrame()
    for bad in ("10 40 01 42 16", "10 40 01 41 17", "68 03 04 68 08 01 05 0e 16", "", "16"):
        with pytest.raises(DecodeError):
            decode_frame(bytes.fromhex(bad))


def test_extractor_resyncs_after_garbage_and_bad_checksums() -> None:
    ex = FrameExtractor()
    good = bytes.fromhex(ASDU5)
    stream = b"\x00\xff" + bytes.fromhex("10 40 01 42 16") + good[:10]
    assert ex.feed(stream) == []
    frames = ex.feed(good[10:] + b"\x68\x03\x03\x68" + bytes.fromhex("10 40 01 41 16"))
    assert frames[0] == decode_frame(good)
    assert ex.garbage_bytes >= 2
    assert ex.bad_frames >= 1
    frames += ex.flush()  # the false 68 start swallowed the reset frame until the line idled
    assert FixedFrame(Control.primary(0), 1) in frames


def test_cp56_datetime_round_trip() -> None:
    when = datetime(2031, 7, 4, 23, 59, 58, 765000, tzinfo=UTC)
    t = cp56_from_datetime(when)
    assert cp56_to_datetime(decode_cp56(encode_cp56(t))) == when
    with pytest.raises(DecodeError):
        cp56_to_datetime(Cp56Time(milliseconds=0, minute=0, hour=0, day=31, month=2, year=1))


def test_cp32_completes_the_date_nearest_the_reference() -> None:
    ref = datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC)
    t = Cp32Time(milliseconds=59_000, minute=59, hour=23)  # 1 s before midnight: yesterday
    assert cp32_to_datetime(t, ref) == datetime(2029, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_measurand_scaling_and_flags() -> None:
    assert Measurand.of(0.5).value == 0.5
    assert Measurand.of(-1.0).value == -1.0
    m = Measurand.of(3.0)
    assert m.overflow
    assert m.quality == ("OV",)
    assert Measurand(0x0002).error


def test_generic_values() -> None:
    assert generic_value(GenericDataSet.of_value(1, 1, 4.2)) == 4.2
    assert generic_value(GenericDataSet.of_value(1, 2, -7)) == -7
    assert generic_value(GenericDataSet.of_value(1, 3, "Zone 1")) == "Zone 1"
    assert generic_value(GenericDataSet.of_value(1, 4, True)) is True


def test_unknown_type_is_kept_not_raised() -> None:
    raw = bytes([99, 0x81, 1, 1, 128, 5, 1, 2, 3])
    asdu = decode_asdu(raw)
    assert isinstance(asdu, UnknownAsdu)
    assert asdu.type_id == 99
    assert asdu.payload == b"\x01\x02\x03"
    assert encode_asdu(asdu) == raw


# --- property tests -------------------------------------------------------------------------

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
cp32 = st.builds(
    Cp32Time,
    milliseconds=u16,
    minute=st.integers(0, 63),
    hour=st.integers(0, 31),
    invalid=st.booleans(),
    summer_time=st.booleans(),
    res1=st.booleans(),
    res2=st.integers(0, 3),
)
cp56 = st.builds(
    Cp56Time,
    milliseconds=u16,
    minute=st.integers(0, 63),
    hour=st.integers(0, 31),
    day=st.integers(0, 31),
    month=st.integers(0, 15),
    year=st.integers(0, 127),
    day_of_week=st.integers(0, 7),
    invalid=st.booleans(),
    summer_time=st.booleans(),
    res1=st.booleans(),
    res2=st.integers(0, 3),
    res3=st.integers(0, 15),
    res4=st.booleans(),
)
head = {"cot": u8, "common_address": u8, "fun": u8, "inf": u8}
data_sets = st.builds(
    GenericDataSet,
    group=u8,
    entry=u8,
    kod=u8,
    data_type=st.sampled_from([1, 3, 4, 7, 9]),
    data_size=st.just(2),
    number=st.integers(0, 3),
    cont=st.booleans(),
    data=st.just(b""),
).map(
    lambda s: GenericDataSet(
        group=s.group,
        entry=s.entry,
        kod=s.kod,
        data_type=s.data_type,
        data_size=2,
        number=s.number,
        cont=s.cont,
        data=bytes(range(2 * s.number)),
    )
)
asdus = st.one_of(
    st.builds(TimeTaggedMessage, **head, dpi=u8, time=cp32, sin=u8),
    st.builds(
        RelativeTimeMessage, **head, dpi=u8, relative_time=u16, fault_number=u16, time=cp32, sin=u8
    ),
    st.builds(
        FaultLocation,
        **head,
        scl=st.floats(width=32, allow_nan=False),
        relative_time=u16,
        fault_number=u16,
        time=cp32,
    ),
    st.builds(
        Identification,
        **head,
        col=u8,
        manufacturer=st.binary(min_size=8, max_size=8),
        software=st.binary(min_size=4, max_size=4),
    ),
    st.builds(TimeSync, **head, time=cp56),
    st.builds(GeneralInterrogation, **head, scn=u8),
    st.builds(GiTermination, **head, scn=u8),
    st.builds(
        Measurands1,
        **head,
        vsq=u8,
        values=st.lists(st.builds(Measurand, u16), max_size=4).map(tuple),
    ),
    st.builds(
        Measurands2,
        **head,
        vsq=u8,
        values=st.lists(st.builds(Measurand, u16), max_size=9).map(tuple),
    ),
    st.builds(
        GenericData,
        **head,
        rii=u8,
        more_follows=st.booleans(),
        counter=st.booleans(),
        sets=st.lists(data_sets, max_size=5).map(tuple),
    ),
    st.builds(
        GenericCommand,
        **head,
        rii=u8,
        items=st.lists(st.builds(GenericItem, u8, u8, u8), max_size=5).map(tuple),
    ),
    st.builds(
        DisturbanceList,
        **head,
        records=st.lists(
            st.builds(DisturbanceRecord, fault_number=u16, sof=u8, time=cp56), max_size=8
        ).map(tuple),
    ).map(lambda a: replace(a, vsq=len(a.records))),  # VSQ counts the records
)


@settings(max_examples=400, deadline=None)
@given(asdus)
def test_asdu_round_trip(asdu: object) -> None:
    raw = encode_asdu(asdu)  # type: ignore[arg-type]
    assert decode_asdu(raw) == asdu
    assert encode_asdu(decode_asdu(raw)) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=4, max_size=4), st.binary(min_size=7, max_size=7))
def test_time_bytes_round_trip(b32: bytes, b56: bytes) -> None:
    assert encode_cp32(decode_cp32(b32)) == b32
    assert encode_cp56(decode_cp56(b56)) == b56


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.builds(FixedFrame, st.builds(Control.from_byte, u8), u8),
        st.builds(VariableFrame, st.builds(Control.from_byte, u8), u8, st.binary(max_size=253)),
        st.just(SingleCharFrame()),
    ),
    st.binary(max_size=20),
    st.integers(1, 7),
)
def test_frame_round_trip_through_chunked_extractor(
    frame: object, noise: bytes, chunk: int
) -> None:
    raw = encode_frame(frame)  # type: ignore[arg-type]
    assert decode_frame(raw) == frame
    # Noise without start octets, then the frame in small pieces: the frame comes out.
    clean = bytes(b for b in noise if b not in (0x10, 0x68, 0xE5))
    stream = clean + raw
    ex = FrameExtractor()
    out = []
    for i in range(0, len(stream), chunk):
        out += ex.feed(stream[i : i + chunk])
    assert out == [frame]
    assert ex.garbage_bytes == len(clean)
