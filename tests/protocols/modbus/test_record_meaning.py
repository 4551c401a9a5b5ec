"""What a record's fields mean: device time with milliseconds (epoch or date fields), the
event's phase and value, and a profile schema that refuses every key it would not use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.errors import ConfigError
from profiles.model import PointSpec
from protocols.modbus import codec
from protocols.modbus.profile import EventLog, IdentityBlock, Measurement, SettingItem
from protocols.profile_loader import load_profile

FIELDS = [
    {"name": "code", "type": "u16"}, {"name": "state", "type": "u8"},
    {"name": "phase", "type": "u8"}, {"name": "ts", "type": "u32"},
    {"name": "ms", "type": "u16"}, {"name": "current", "type": "i16"},
]  # fmt: skip
RING: dict[str, Any] = {
    "pointer_register": 0, "first_register": 10, "capacity": 8, "record_registers": 6,
    "fields": FIELDS, "state_field": "state",
    "timestamp": {"kind": "epoch", "epoch": "ts", "millisecond": "ms"},
}  # fmt: skip


def _decode(ring: dict[str, Any], hex_bytes: str) -> codec.EventRecord:
    return codec.RecordDecoder(EventLog.model_validate(ring)).decode(0, bytes.fromhex(hex_bytes))


# code 11, raised, phase code 2, epoch 0x65a1f2c0 (2024-01-13 02:17:36 UTC), 250 ms, 1234
GOLDEN = "000b010265a1f2c000fa04d2"


def test_epoch_seconds_with_a_millisecond_field() -> None:
    record = _decode(RING, GOLDEN)
    assert record.device_time == datetime(2024, 1, 13, 2, 17, 36, 250000, tzinfo=UTC)


def test_an_epoch_in_local_wall_clock_time() -> None:
    ts = RING["timestamp"] | {"timezone": "Asia/Shanghai"}
    record = _decode(RING | {"timestamp": ts}, GOLDEN)
    assert record.device_time == datetime(2024, 1, 12, 18, 17, 36, 250000, tzinfo=UTC)


def test_an_epoch_in_ms_and_date_fields_with_ms() -> None:
    ms_ring = RING | {"timestamp": {"kind": "epoch", "epoch": "ts", "epoch_unit": "ms"}}
    record = _decode(ms_ring, "000b01020001e24000000000")  # 123456 ms
    assert record.device_time == datetime(1970, 1, 1, 0, 2, 3, 456000, tzinfo=UTC)
    date_fields = [
        {"name": "code", "type": "u16"}, {"name": "y", "type": "u8"}, {"name": "mo", "type": "u8"},
        {"name": "d", "type": "u8"}, {"name": "h", "type": "u8"}, {"name": "mi", "type": "u8"},
        {"name": "s", "type": "u8"}, {"name": "ms", "type": "u16"},
    ]  # fmt: skip
    ts = {"year": "y", "month": "mo", "day": "d", "hour": "h", "minute": "mi", "second": "s",
          "millisecond": "ms", "year_base": 2000, "timezone": "Europe/Berlin"}  # fmt: skip
    ring = RING | {
        "fields": date_fields,
        "state_field": None,
        "timestamp": ts,
        "record_registers": 5,
    }
    record = _decode(ring, "00011907010c000503e7")  # 2025-07-01 12:00:05.999
    assert record.device_time == datetime(2025, 7, 1, 10, 0, 5, 999000, tzinfo=UTC)


def test_a_millisecond_field_out_of_range_flags_the_time() -> None:
    record = _decode(RING, "000b010265a1f2c003e80000")  # 1000 ms
    assert record.device_time is None
    assert record.time_flags == ("invalid",)


def test_time_fields_are_the_inverse_of_record_time() -> None:
    when = datetime(2026, 3, 29, 1, 30, 0, 125000, tzinfo=UTC)  # a DST change in Berlin
    for ts in (
        {"kind": "epoch", "epoch": "ts", "millisecond": "ms"},
        {"kind": "epoch", "epoch": "ts", "millisecond": "ms", "timezone": "Europe/Berlin"},
        {"kind": "epoch", "epoch": "ts", "epoch_unit": "ms"},
    ):
        ring = EventLog.model_validate(RING | {"timestamp": ts})
        assert ring.timestamp is not None
        values = codec.time_fields(ring.timestamp, when)
        assert codec.record_time(values, ring.timestamp, codec.zone_of(ring.timestamp))[0] == when


@pytest.mark.parametrize(
    ("phase", "raw", "expected"),
    [
        ({"codes": {1: "A", 2: "B", 7: "CA"}}, 2, "B"),
        ({"codes": {1: "A", 2: "B", 7: "CA"}}, 7, "CA"),
        ({"codes": {1: "A"}}, 9, None),  # a code the profile does not list: no phase
        ({"bits": {0: "A", 1: "B", 2: "C", 3: "N"}}, 0b1001, "A"),  # A to earth
        ({"bits": {0: "A", 1: "B", 2: "C", 3: "N"}}, 0b0101, "CA"),
        ({"bits": {0: "A", 1: "B", 2: "C", 3: "N"}}, 0b1000, "N"),
        ({"bits": {0: "A", 1: "B", 2: "C", 3: "N"}}, 0, None),
    ],
)
def test_a_phase_field_names_the_event_phase(
    phase: dict[str, Any], raw: int, expected: str
) -> None:
    ring = RING | {"phase": {"field": "phase", **phase}}
    assert _decode(ring, f"000b01{raw:02x}65a1f2c000fa04d2").phase == expected


def test_a_value_field_is_the_event_value_scaled() -> None:
    ring = RING | {"value": {"field": "current", "scale": 0.1, "unit": "A"}}
    record = _decode(ring, GOLDEN)
    assert record.value == pytest.approx(123.4)
    assert record.raised


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timestamp": {"kind": "epoch", "epoch": "ts", "year": "ts"}}, "year not used"),
        ({"timestamp": {"kind": "epoch", "epoch": "ts", "year_base": 2000}}, "year_base not"),
        ({"timestamp": {"kind": "epoch", "epoch": "ts", "epoch_unit": "ms", "millisecond": "ms"}},
         "already has its milliseconds"),
        ({"timestamp": {"kind": "epoch", "epoch": "ts", "timezone": "Mars/Olympus"}},
         "unknown IANA zone"),
        ({"timestamp": {"year": "ts", "month": "ts", "day": "ts", "hour": "ts", "minute": "ts",
                        "second": "ts", "epoch": "ts"}}, "epoch not used"),
        ({"timestamp": {"kind": "epoch", "epoch": "ts", "millisecond": "nope"}}, "not in fields"),
        ({"fields": [*FIELDS, {"name": "spare", "type": "pad16"}]}, "takes no name"),
        ({"fields": [*FIELDS, {"type": "u16"}]}, "needs a name"),
        ({"phase": {"field": "phase"}}, "exactly one of codes"),
        ({"phase": {"field": "phase", "codes": {1: "A"}, "bits": {0: "A"}}}, "exactly one"),
        ({"phase": {"field": "phase", "codes": {1: "X"}}}, "Input should be"),
        ({"value": {"field": "current", "colour": "red"}}, "Extra inputs"),
    ],
)  # fmt: skip
def test_ring_keys_that_would_be_ignored_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EventLog.model_validate(RING | change)


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (Measurement, {"name": "i", "address": 0, "type": "u16", "word_order": "little"},
         "word_order not used"),
        (SettingItem, {"name": "s", "offset": 0, "type": "u16", "words": 2}, "words not used"),
        (SettingItem, {"name": "s", "offset": 0, "type": "ascii", "words": 2, "scale": 0.1},
         "scale not used"),
        (SettingItem, {"name": "s", "offset": 0, "type": "i16", "word_order": "big"},
         "word_order not used"),
        (IdentityBlock, {"table": "input", "manufacturer": "ACME"}, "table not used"),
        (PointSpec, {"address": "1", "name": "i", "kind": "measurement", "severity": "major"},
         "severity: not used by a measurement"),
        (PointSpec, {"address": "1", "name": "i", "kind": "measurement", "phase": "A"},
         "phase: not used by a measurement"),
        (PointSpec, {"address": "1", "name": "t", "kind": "trip", "unit": "A"},
         "unit: used by measurements only"),
    ],
)  # fmt: skip
def test_other_profile_keys_that_would_be_ignored_are_refused(
    model: type[Any], data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate(data)


def test_check_config_reports_an_ignored_key_with_file_and_path(tmp_path: Path) -> None:
    """The bug as a user met it: `millisecond` beside an epoch in ms was accepted."""
    path = tmp_path / "relay.toml"
    path.write_text(
        '[profile]\nname = "r"\nprotocol = "modbus"\n\n[modbus.event_log]\n'
        "pointer_register = 0\nfirst_register = 10\ncapacity = 8\nrecord_registers = 4\n"
        'fields = [{ name = "code", type = "u16" }, { name = "ts", type = "u32" },'
        ' { name = "ms", type = "u16" }]\n'
        'timestamp = { kind = "epoch", epoch = "ts", epoch_unit = "ms", millisecond = "ms" }\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    assert f"{path}: modbus.event_log.timestamp: millisecond: an epoch counted in ms" in str(
        caught.value
    )
