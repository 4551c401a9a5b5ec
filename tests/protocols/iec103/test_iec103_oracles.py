"""Our codec against two independent implementations: Wireshark's iec60870_5_103 dissector
(tshark) and hat-drivers' 103 encoder. Skipped with a reason only when the tool is missing
and CI is not set; on CI they must run."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_disturbance import DisturbanceList, DisturbanceRecord
from protocols.iec103.codec.asdu_generic import GenericData, GenericDataSet
from protocols.iec103.codec.asdu_measurands import Measurand, Measurands2
from protocols.iec103.codec.asdu_messages import (
    GeneralInterrogation,
    Identification,
    RelativeTimeMessage,
    TimeSync,
    TimeTaggedMessage,
)
from protocols.iec103.codec.frames import Control, FixedFrame, VariableFrame, encode_frame
from protocols.iec103.codec.time import cp32_from_datetime, cp56_from_datetime
from tests.support.ci import in_ci

CI = in_ci()
WHEN = datetime(2031, 7, 4, 13, 37, 42, 123000, tzinfo=UTC)


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if CI:
            pytest.fail(f"{tool} is required on CI (apt-get install tshark)")
        pytest.skip(f"{tool} not installed: the tshark oracle cannot run")


def _tshark(frames: list[bytes], tmp_path: Path) -> list[dict[str, Any]]:
    _need("tshark")
    _need("text2pcap")
    text = tmp_path / "in.txt"
    text.write_text("".join(f"0000 {f.hex(' ')}\n\n" for f in frames))
    pcap = tmp_path / "out.pcap"
    subprocess.run(["text2pcap", "-q", "-T", "20000,20001", str(text), str(pcap)], check=True)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", "tcp.port==20000,iec60870_5_103", "-T", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [p["_source"]["layers"] for p in json.loads(out)]


def _flat(tree: Any, out: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    out = {} if out is None else out
    if isinstance(tree, dict):
        for k, v in tree.items():
            if isinstance(v, str):
                out.setdefault(k, []).append(v)
            else:
                _flat(v, out)
    elif isinstance(tree, list):
        for v in tree:
            _flat(v, out)
    return out


def test_tshark_decodes_our_frames_as_we_do(tmp_path: Path) -> None:
    head = {"common_address": 3}
    t32 = cp32_from_datetime(WHEN)
    # (ASDU, control, body fields the dissector decodes for that type)
    cases: list[tuple[Any, Control, dict[str, str]]] = [
        (
            Identification(
                cot=4, fun=160, inf=3, col=2, manufacturer=b"SIEMENS ", software=b"V4.7", **head
            ),
            Control.secondary(8, acd=True),
            {"col": "2", "mfg": "SIEMENS "},
        ),
        (
            TimeTaggedMessage(cot=1, fun=128, inf=69, dpi=2, time=t32, sin=17, **head),
            Control.secondary(8),
            {"dpi": "2", "sin": "17"},
        ),
        # ASDU 2: the dissector decodes the header only.
        (
            RelativeTimeMessage(
                cot=1,
                fun=128,
                inf=84,
                dpi=2,
                relative_time=20,
                fault_number=7,
                time=t32,
                sin=0,
                **head,
            ),
            Control.secondary(8),
            {},
        ),
        (
            GeneralInterrogation(cot=9, fun=255, inf=0, scn=5, **head),
            Control.primary(3, fcb=True, fcv=True),
            {"scn": "5"},
        ),
        (
            TimeSync(cot=8, fun=255, inf=0, time=cp56_from_datetime(WHEN), **head),
            Control.primary(3, fcv=True),
            {},
        ),
        # ASDU 9: the dissector reads the first measurand only.
        (
            Measurands2(cot=2, fun=128, inf=148, values=(Measurand.of(0.25),), **head),
            Control.secondary(8),
            {"normval": "0.25"},
        ),
    ]
    frames = [encode_frame(VariableFrame(c, 9, encode_asdu(a))) for a, c, _ in cases]
    frames.append(encode_frame(FixedFrame(Control.primary(10, fcb=True, fcv=True), 9)))
    layers = _tshark(frames, tmp_path)
    assert len(layers) == len(frames)
    for (asdu, control, body), layer in zip(cases, layers, strict=False):
        f = {k.split(".", 1)[-1]: v for k, v in _flat(layer).items() if k.startswith("iec60870")}
        direction = "ctrl" if control.prm else "mon"
        assert int(f[f"asdu_typeid_{direction}"][0], 16) == asdu.TYPE_ID
        assert int(f[f"cot_{direction}"][0], 16) == asdu.cot
        assert f["asdu_address"] == ["3"]
        assert f["linkaddr"] == ["9"]
        assert f["func_type"] == [str(asdu.fun)]
        assert f["info_num"] == [str(asdu.inf)]
        assert int(f["ctrlfield"][0], 16) == control.to_byte()
        for name, value in body.items():
            assert f[name] == [value], (asdu, name, f)
    f1 = _flat(layers[1])
    assert "13:37:42.123" in f1["iec60870_5_103.cp32time2a"][0]
    f6 = _flat(layers[4])
    assert any("Jul  4, 2031 13:37:42.123" in v for k, vs in f6.items() for v in vs if "time" in k)
    poll = {k.removeprefix("iec60870_5_103."): v for k, v in _flat(layers[-1]).items()}
    assert poll["ctrl_fcb"] == ["1"]
    assert poll["ctrl_fcv"] == ["1"]
    assert poll["ctrl_func_pri_to_sec"] == ["10"]


def _hat() -> Any:
    try:
        from hat.drivers.iec60870.encodings import iec103
    except ImportError:
        if CI:
            pytest.fail("hat-drivers is required on CI (pip install hat-drivers)")
        pytest.skip("hat-drivers not installed: the hat oracle cannot run")
    return iec103


def _hat_time(when: datetime, size: Any, hat: Any) -> Any:
    seven = size == hat.TimeSize.SEVEN
    return hat.Time(
        size=size,
        milliseconds=when.second * 1000 + when.microsecond // 1000,
        invalid=False,
        substituted=False,
        minutes=when.minute,
        summer_time=False,
        hours=when.hour,
        day_of_week=when.isoweekday() if seven else None,
        day_of_month=when.day if seven else None,
        months=when.month if seven else None,
        years=when.year % 100 if seven else None,
    )


def test_hat_encoder_bytes_decode_the_same_with_ours() -> None:
    hat = _hat()
    enc = hat.Encoder()
    t4 = _hat_time(WHEN, hat.TimeSize.FOUR, hat)
    t7 = _hat_time(WHEN, hat.TimeSize.SEVEN, hat)
    io = hat.IoAddress

    def asdu(kind: Any, cause: int, address: Any, elements: list[Any]) -> bytes:
        return bytes(
            enc.encode_asdu(
                hat.ASDU(
                    type=kind,
                    cause=hat.Cause(cause),
                    address=4,
                    ios=[hat.IO(address=address, elements=elements)],
                )
            )
        )

    raw = asdu(
        hat.AsduType.TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME,
        1,
        io(128, 69),
        [
            hat.IoElement_TIME_TAGGED_MESSAGE_WITH_RELATIVE_TIME(
                hat.DoubleWithRelativeTimeValue(
                    value=hat.DoubleValue.ON,
                    relative_time=35,
                    fault_number=12,
                    time=t4,
                    supplementary=7,
                )
            )
        ],
    )
    ours = decode_asdu(raw)
    assert isinstance(ours, RelativeTimeMessage)
    assert (ours.fun, ours.inf, ours.dpi, ours.relative_time, ours.fault_number, ours.sin) == (
        128,
        69,
        2,
        35,
        12,
        7,
    )
    assert ours.time == cp32_from_datetime(WHEN)
    assert encode_asdu(ours) == raw

    raw = asdu(
        hat.AsduType.IDENTIFICATION,
        4,
        io(160, 3),
        [hat.IoElement_IDENTIFICATION(compatibility=2, value=b"SIEMENS ", software=b"V4.7")],
    )
    ours = decode_asdu(raw)
    assert isinstance(ours, Identification)
    assert ours.software_text == "V4.7"
    assert encode_asdu(ours) == raw

    raw = asdu(
        hat.AsduType.TIME_SYNCHRONIZATION, 8, io(255, 0), [hat.IoElement_TIME_SYNCHRONIZATION(t7)]
    )
    ours = decode_asdu(raw)
    assert isinstance(ours, TimeSync)
    assert ours.time == cp56_from_datetime(WHEN)

    values = [0.5, -0.25, 0.999]
    raw = asdu(
        hat.AsduType.MEASURANDS_2,
        2,
        io(128, 148),
        [
            hat.IoElement_MEASURANDS_2(hat.MeasurandValue(overflow=i == 1, invalid=i == 2, value=v))
            for i, v in enumerate(values)
        ],
    )
    ours = decode_asdu(raw)
    assert isinstance(ours, Measurands2)
    assert [round(m.value, 3) for m in ours.values] == [0.5, -0.25, 0.999]
    assert [m.quality for m in ours.values] == [(), ("OV",), ("ER",)]

    raw = asdu(
        hat.AsduType.LIST_OF_RECORDED_DISTURBANCES,
        31,
        io(128, 0),
        [
            hat.IoElement_LIST_OF_RECORDED_DISTURBANCES(
                fault_number=n, trip=True, transmitted=n == 2, test=False, other=False, time=t7
            )
            for n in (1, 2)
        ],
    )
    ours = decode_asdu(raw)
    assert isinstance(ours, DisturbanceList)
    assert [(r.fault_number, r.trip, r.transmitted) for r in ours.records] == [
        (1, True, False),
        (2, True, True),
    ]
    assert encode_asdu(ours) == raw


def test_our_bytes_decode_the_same_with_hat() -> None:
    hat = _hat()
    enc = hat.Encoder()
    ours = RelativeTimeMessage(
        cot=1,
        common_address=4,
        fun=128,
        inf=70,
        dpi=1,
        relative_time=9,
        fault_number=3,
        time=cp32_from_datetime(WHEN),
        sin=0,
    )
    theirs, rest = enc.decode_asdu(encode_asdu(ours))
    assert rest == b""
    v = theirs.ios[0].elements[0].value
    assert (theirs.type.value, theirs.address, theirs.ios[0].address) == (
        2,
        4,
        hat.IoAddress(128, 70),
    )
    assert (v.value, v.relative_time, v.fault_number) == (hat.DoubleValue.OFF, 9, 3)
    assert (v.time.hours, v.time.minutes, v.time.milliseconds) == (13, 37, 42123)

    ours_gd = GenericData(
        cot=42,
        common_address=4,
        fun=254,
        inf=241,
        rii=9,
        sets=(GenericDataSet.of_value(1, 1, 4.2), GenericDataSet.of_value(1, 2, "North")),
    )
    theirs, _ = enc.decode_asdu(encode_asdu(ours_gd))
    element = theirs.ios[0].elements[0]
    assert element.return_identifier == 9
    assert not element.more_follows
    (ident1, data1), (ident2, data2) = element.data
    assert (ident1.group_id, ident1.entry_id, ident2.entry_id) == (1, 1, 2)
    assert round(data1.value.values[0].value, 5) == 4.2
    assert bytes(data2.value.values[0].value) == b"North"

    ours_dl = DisturbanceList(
        cot=31,
        common_address=4,
        fun=128,
        inf=0,
        records=(DisturbanceRecord(fault_number=5, sof=0x03, time=cp56_from_datetime(WHEN)),),
    )
    theirs, _ = enc.decode_asdu(encode_asdu(ours_dl))
    rec = theirs.ios[0].elements[0]
    assert (rec.fault_number, rec.trip, rec.transmitted, rec.time.years) == (5, True, True, 31)
