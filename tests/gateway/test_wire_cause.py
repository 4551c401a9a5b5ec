"""`cause` on the wire: one vocabulary for every protocol, the protocol's own name beside
it, and records of agents that sent only the protocol's name still accepted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway import wire

COMMON: dict[str, Any] = {
    "site": "north",
    "gateway_id": "gw1",
    "device_id": "line1",
    "session": 3,
    "seq": 7,
    "gateway_time": "2026-03-01T08:00:00Z",
}


def decode(record: dict[str, Any]) -> Any:
    (decoded,) = wire.decode_envelope(json.dumps({"v": 1, "records": [record]}).encode())
    return decoded


@pytest.mark.parametrize(
    ("sent", "cause"),
    [
        ("SPONTANEOUS", "spontaneous"),  # IEC 104 (c104's names)
        ("RETURN_INFO_LOCAL", "spontaneous"),
        ("INTERROGATED_BY_STATION", "interrogated"),
        ("INTERROGATED_BY_GROUP_3", "interrogated"),
        ("REQUEST", "requested"),
        ("PERIODIC", "periodic"),
        ("ACTIVATION_CON", "other"),
        ("spontaneous", "spontaneous"),  # IEC 103 (and Modbus): already in the vocabulary
        ("general_interrogation", "interrogated"),
        ("cyclic", "periodic"),
        ("generic_read", "requested"),
        ("disturbance_data", "other"),
        ("event_log", "spontaneous"),  # Modbus
    ],
)
def test_an_older_agents_protocol_cause_is_read_and_kept(sent: str, cause: str) -> None:
    raw = None if sent in wire.CAUSES else sent
    event = decode({**COMMON, "kind": "event", "address": "1011", "cause": sent})
    assert (event.cause, event.cause_raw) == (cause, raw)
    assert event.asked == (cause in ("interrogated", "requested"))
    measurement = decode({**COMMON, "kind": "measurement", "address": "2001", "cause": sent})
    assert (measurement.cause, measurement.cause_raw) == (cause, raw)


def test_a_current_record_travels_unchanged() -> None:
    body = {**COMMON, "kind": "event", "address": "1011", "cause": "interrogated",
            "cause_raw": "INTERROGATED_BY_STATION"}  # fmt: skip
    event = decode(body)
    assert (event.cause, event.cause_raw, event.asked) == (
        "interrogated",
        "INTERROGATED_BY_STATION",
        True,
    )
    assert decode(json.loads(event.model_dump_json())) == event
    no_cause = decode({**COMMON, "kind": "event", "address": "1011"})
    assert (no_cause.cause, no_cause.cause_raw, no_cause.asked) == (None, None, False)


def test_a_cause_outside_the_vocabulary_with_its_raw_name_is_refused() -> None:
    with pytest.raises(wire.WireError, match="cause"):
        decode({**COMMON, "kind": "event", "address": "1", "cause": "whim", "cause_raw": "x"})


def test_the_schema_names_the_vocabulary() -> None:
    event = wire.json_schema()["$defs"]["Event"]["properties"]
    (choices,) = [c for c in event["cause"]["anyOf"] if "enum" in c]
    assert set(choices["enum"]) == {
        "spontaneous", "interrogated", "requested", "periodic", "other",
    }  # fmt: skip
    assert "cause_raw" in event
