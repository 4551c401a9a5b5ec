"""Pure parts: golden record bytes, numbers and strings, ring arithmetic, config models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config import load_config
from protocols.modbus import codec, eventlog
from protocols.modbus.config import ModbusDevice
from protocols.modbus.profile import EventLog, ModbusProfile

from .helpers import profile

RING = {
    "pointer_register": 0, "first_register": 10, "capacity": 8, "record_registers": 4,
    "fields": [{"name": "code", "type": "u16"}, {"name": "state", "type": "u8"},
               {"name": "phase", "type": "u8"}, {"name": "ts", "type": "u32"}],
    "state_field": "state", "timestamp": {"kind": "epoch", "epoch": "ts"},
}  # fmt: skip


def test_a_record_decodes_from_golden_bytes() -> None:
    ring = EventLog.model_validate(RING)
    data = bytes.fromhex("000b 01 02 65a1f2c0".replace(" ", ""))
    record = codec.RecordDecoder(ring).decode(3, data)
    assert (record.code, record.raised, record.fields["phase"], record.slot) == (11, True, 2, 3)
    assert record.device_time == datetime(
        2024, 1, 13, 2, 17, 36, tzinfo=UTC
    )  # date -u -d @$((0x65a1f2c0))
    assert codec.registers_to_bytes(codec.encode_record(ring, record.fields)) == data


def test_the_feeder_profile_record_round_trips_with_a_local_time_zone() -> None:
    section = profile().section
    assert isinstance(section, ModbusProfile)
    assert section.event_log is not None
    ring = section.event_log.model_copy(
        update={"timestamp": section.event_log.timestamp.model_copy(  # type: ignore[union-attr]
            update={"timezone": "Asia/Shanghai"})}
    )  # fmt: skip
    values = {"code": 12, "state": 0, "phase": 2, "value": -5, "year": 25, "month": 6,
              "day": 1, "hour": 8, "minute": 0, "second": 1, "millisecond": 250}  # fmt: skip
    record = codec.RecordDecoder(ring).decode(
        0, codec.registers_to_bytes(codec.encode_record(ring, values))
    )
    assert record.device_time == datetime(2025, 6, 1, 0, 0, 1, 250000, tzinfo=UTC)
    assert record.raised is False
    assert record.fields["value"] == -5


def test_a_nonsense_time_keeps_the_event_and_flags_the_time() -> None:
    section = profile().section
    assert isinstance(section, ModbusProfile)
    assert section.event_log is not None
    ring = section.event_log
    record = codec.RecordDecoder(ring).decode(0, codec.registers_to_bytes(
        codec.encode_record(ring, {"code": 1, "state": 1, "month": 13, "day": 40})))  # fmt: skip
    assert record.device_time is None
    assert record.time_flags == ("invalid",)


def test_numbers_strings_and_coalescing() -> None:
    assert codec.decode_number([0x4248, 0x0000], "f32") == 50.0
    assert codec.decode_number([0x0000, 0x4248], "f32", "little") == 50.0
    assert codec.decode_number([0xFFFF], "i16") == -1
    assert codec.decode_number([0x0001, 0x0000], "u32") == 65536
    assert codec.decode_ascii([0x4650, 0x2D33, 0x3030, 0x0000]) == "FP-300"
    assert codec.decode_ascii(codec.encode_ascii("AB", 2, True), True) == "AB"
    spans = [codec.Span("input", 0, 2), codec.Span("input", 4, 2), codec.Span("input", 200, 1),
             codec.Span("holding", 0, 1)]  # fmt: skip
    assert codec.coalesce(spans) == [
        codec.Span("holding", 0, 1), codec.Span("input", 0, 6), codec.Span("input", 200, 1),
    ]  # fmt: skip


def test_ring_arithmetic() -> None:
    ring = EventLog.model_validate(RING | {"capacity": 8})
    assert eventlog.pending(ring, 10, 13) == eventlog.Pending(10, 3, 0, False, 3)
    # 12 new on an 8-slot ring: 4 lost, the newest 8 remain.
    assert eventlog.pending(ring, 10, 22) == eventlog.Pending(14, 8, 4, False, 12)
    # The u16 counter wraps past 65535.
    assert eventlog.pending(ring, 65534, 2) == eventlog.Pending(65534, 4, 0, False, 4)
    # The counter went backwards: a cleared log.
    assert eventlog.pending(ring, 500, 3).reset
    # Two more records written while we read 8 of them: the oldest 2 may be overwritten.
    batch = eventlog.pending(ring, 10, 18)
    assert eventlog.overwritten_meanwhile(ring, batch, 20, 18) == 2
    assert eventlog.initial_position(ring, 5, "all") == 0
    assert eventlog.initial_position(ring, 100, "all") == 92
    assert eventlog.initial_position(ring, 100, "new") == 100


def test_the_position_store_survives_and_checks_the_ring_shape(tmp_path: Path) -> None:
    ring = EventLog.model_validate(RING)
    store = eventlog.PositionStore("f1", tmp_path / "f1.json")
    assert store.load(ring) is None
    store.save(ring, 42)
    assert eventlog.PositionStore("f1", tmp_path / "f1.json").load(ring) == 42
    other = ring.model_copy(update={"capacity": 16})
    assert eventlog.PositionStore("f1", tmp_path / "f1.json").load(other) is None


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        (RING | {"capacity": 7}, "capacity dividing"),
        (RING | {"record_registers": 2}, "more than record_registers"),
        (RING | {"code_field": "nope"}, "not in fields"),
        (RING | {"colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_rings_are_refused(ring: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EventLog.model_validate(ring)


def test_device_models() -> None:
    base = {"id": "d", "profile": "p", "protocol": "modbus"}
    assert ModbusDevice.model_validate(base | {"host": "h"}).link_key == "modbus:tcp:h:502"
    rtu = ModbusDevice.model_validate(base | {"transport": "rtu", "bus": "b", "unit_id": 3})
    assert rtu.link_key == "modbus:bus:b"
    bads: list[dict[str, object]] = [
        {},
        {"transport": "rtu"},
        {"host": "h", "bus": "b"},
        {"transport": "rtu", "bus": "b", "unit_id": 0},
        {"host": "h", "slave": 1},
    ]
    for bad in bads:
        with pytest.raises(ValidationError):
            ModbusDevice.model_validate(base | bad)


def test_the_sample_config_validates() -> None:
    sample = Path(__file__).resolve().parents[3] / "protocols" / "modbus" / "sample.toml"
    loaded = load_config(sample)
    assert {d.id for d in loaded.config.devices} == {"feeder7", "feeder8", "feeder9", "feeder12"}
