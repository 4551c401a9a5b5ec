"""Hostile records, one per message among good ones, on SQLite and PostgreSQL: the good
records are stored, the bad one is quarantined in full with its reason, and ingest goes
on. Refused messages are kept whole, whatever bytes they hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from center import quarantine
from center.ingest import Message
from center.store import schema
from gateway import wire
from tests.center.records import T0, Gateway

TOPIC = wire.topic("north", "gw1", "batch")


def good_records(gw: Gateway, n: int = 5) -> list[str]:
    return [
        gw.event(f"line{i}", "breaker_closed", True, T0, signal="status").model_dump_json()
        for i in range(n)
    ]


def poison(fields: dict[str, str]) -> str:
    """An event as JSON text with fields spliced in verbatim (JSON the builders refuse)."""
    doc = {
        "kind": "event",
        "site": "north",
        "gateway_id": "gw1",
        "device_id": "line9",
        "session": 1,
        "seq": 6,
        "gateway_time": T0.isoformat(),
        "address": "1011",
        "signal": "trip",
        "severity": "critical",
        "value": True,
    }
    parts = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in doc.items() if k not in fields]
    parts += [f"{json.dumps(k)}:{v}" for k, v in fields.items()]
    return "{" + ",".join(parts) + "}"


# (name, record fields as raw JSON, reason, a fragment of the detail)
CORPUS = [
    ("nul", {"address": '"10\\u000011"'}, "unstorable", "NUL"),
    ("nul_in_key", {"details": '{"a\\u0000": 1}'}, "unstorable", "NUL"),
    ("lone_surrogate", {"label": '"trip \\ud800"'}, "unstorable", "surrogate"),
    ("lone_surrogate_as_bytes", {"label": '"trip \ud800"'}, "unstorable", "surrogate"),
    ("seq_beyond_64_bits", {"seq": str(2**64)}, "unstorable", "out of range"),
    ("value_beyond_64_bits", {"value": str(2**70)}, "unstorable", "out of range"),
    ("nan", {"value": "NaN"}, "unstorable", "finite"),
    ("infinity", {"value": "-Infinity"}, "unstorable", "finite"),
    ("year_1_ahead_of_utc", {"gateway_time": '"0001-01-01T00:00:00+05:00"'}, "invalid", "UTC"),
    ("year_9999_behind_utc", {"device_time": '"9999-12-31T23:59:59-05:00"'}, "invalid", "UTC"),
    ("naive_time", {"device_time": '"2025-03-01T08:00:00"'}, "invalid", "timezone"),
    ("long_point", {"point": json.dumps("p" * 129)}, "unstorable", "129 characters"),
    ("long_label", {"label": json.dumps("x" * 100_000)}, "unstorable", "characters"),
    ("unknown_kind", {"kind": '"rumour"'}, "unknown_kind", "kind"),
    ("not_an_object", {}, "invalid", ""),
]


@pytest.mark.parametrize(("name", "fields", "reason", "detail"), CORPUS, ids=[c[0] for c in CORPUS])
def test_a_poison_record_is_quarantined_and_its_neighbours_stored(
    make_harness, name, fields, reason, detail
):
    h = make_harness()
    gw = Gateway()
    good = good_records(gw)
    bad = "[1, 2]" if name == "not_an_object" else poison(fields)
    text = '{"v":1,"records":[' + ",".join([*good[:3], bad, *good[3:]]) + "]}"
    payload = text.encode("utf-8", "surrogatepass")  # a lone surrogate as UTF-8 would have it

    result = h.ingestor.ingest([Message(TOPIC, payload)])

    assert (result.stored, result.quarantined, result.rejected) == (5, 1, 0)
    assert h.scalar("SELECT count(*) FROM records") == 5
    with h.engine.connect() as conn:
        (item,) = quarantine.list_quarantine(conn)
        full = quarantine.get_quarantined(conn, item["id"])
    assert full is not None
    assert (item["scope"], item["reason"], item["record_index"]) == ("record", reason, 3)
    assert detail in item["detail"]
    assert json.loads(full["content"]) == json.loads(bad)  # kept in full, as received
    assert h.counters.snapshot()[f"quarantined_{reason}"] == 1
    # Ingest goes on: the next message is stored.
    assert h.ingestor.ingest([Message(TOPIC, wire.encode_records([gw.event("l", "t")]))]).stored


UNREADABLE = [
    ("raw_nul_byte", b'{"v":1,"records":[{"address":"a\x00b"}]}'),
    ("not_utf8", b"\xff\xfe\x00\x00garbage"),
    ("deep_nesting", b"[" * 100_000),
]


@pytest.mark.parametrize(("name", "payload"), UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_an_unreadable_message_is_kept_whole_whatever_its_bytes(make_harness, name, payload):
    h = make_harness()
    result = h.ingestor.ingest([Message(TOPIC + "\x00", payload), Message(TOPIC, payload)])
    assert result.rejected == 2
    with h.engine.connect() as conn:
        rows = conn.execute(
            schema.rejected_messages.select().order_by(schema.rejected_messages.c.id)
        ).all()
    assert [bytes(r.payload) for r in rows] == [payload, payload]
    assert "\x00" not in rows[0].excerpt
    assert "\x00" not in rows[0].topic


def test_what_is_delivered_again_is_set_apart_once(make_harness):
    """MQTT delivers at least once: a center stopped or killed between its commit and its
    PUBACK meets the same messages again, and a gateway resends a record it has not seen
    acknowledged. A poison record, a refused message and a quarantined message each stay
    one entry; other content is still set apart as its own."""
    h = make_harness()
    gw = Gateway()
    good = good_records(gw, 2)
    bad = poison({"value": "NaN"})
    with_poison = Message(TOPIC, ('{"v":1,"records":[' + ",".join([*good, bad]) + "]}").encode())
    resent = Message(TOPIC, ('{"v":1,"records":[' + bad + "]}").encode())
    refused = Message(TOPIC, b'{"v":1,"records":[\x00]}')
    for _ in range(2):
        h.ingestor.ingest([with_poison, refused])
        h.ingestor.quarantine_message(refused, "a bug")
    h.ingestor.ingest([resent])  # the same record in another message
    assert h.scalar("SELECT count(*) FROM records") == 2
    assert h.scalar("SELECT count(*) FROM quarantine WHERE scope = 'record'") == 1
    assert h.scalar("SELECT count(*) FROM quarantine WHERE scope = 'message'") == 1
    assert h.scalar("SELECT count(*) FROM rejected_messages") == 1

    other = poison({"value": "Infinity"})
    h.ingestor.ingest([Message(TOPIC, ('{"v":1,"records":[' + other + "]}").encode())])
    h.ingestor.ingest([Message(TOPIC + "/x", refused.payload)])
    assert h.scalar("SELECT count(*) FROM quarantine WHERE scope = 'record'") == 2
    assert h.scalar("SELECT count(*) FROM rejected_messages") == 2


def test_a_repeated_id_in_one_message_is_stored_once_on_both_backends(make_harness):
    h = make_harness()
    gw = Gateway()
    trip = gw.event("line1", "trip_phase_a", True, T0)
    again = trip.model_dump_json()
    changed = trip.model_copy(update={"value": False, "raised": False}).model_dump_json()
    other = gw.event("line2", "trip_phase_a", True, T0).model_dump_json()
    payload = f'{{"v":1,"records":[{again},{again},{other},{changed}]}}'.encode()

    result = h.ingestor.ingest([Message(TOPIC, payload)])

    assert (result.stored, result.duplicates, result.quarantined) == (2, 1, 1)
    assert h.scalar("SELECT count(*) FROM records") == 2
    (ticket,) = h.tickets()
    assert ticket["occurrences"] == 1  # the repeat was not handed to the ticket engine twice
    with h.engine.connect() as conn:
        (item,) = quarantine.list_quarantine(conn)
    assert (item["reason"], item["record_index"], item["seq"]) == ("conflict", 3, trip.seq)
    counters = h.counters.snapshot()
    assert counters["records_duplicate"] == 1
    assert counters["quarantined_conflict"] == 1


def test_an_id_stored_earlier_with_other_content_is_a_conflict_not_a_duplicate(make_harness):
    h = make_harness()
    gw = Gateway()
    trip = gw.event("line1", "trip_phase_a", True, T0)
    h.send(trip)
    assert h.send(trip).duplicates == 1
    forged = trip.model_copy(update={"point": "trip_phase_b", "label": "trip_phase_b"})
    result = h.send(forged)
    assert (result.stored, result.duplicates, result.quarantined) == (0, 0, 1)
    with h.engine.connect() as conn:
        (item,) = quarantine.list_quarantine(conn, reason="conflict")
        full = quarantine.get_quarantined(conn, item["id"])
    assert full is not None
    assert json.loads(full["content"])["point"] == "trip_phase_b"
    stored = h.scalar("SELECT body FROM records")
    assert json.loads(stored)["point"] == "trip_phase_a"  # the first copy stands
    assert h.counters.snapshot()["records_duplicate"] == 1


def test_text_longer_than_its_column_is_quarantined_for_any_kind(make_harness):
    """PostgreSQL refuses a varchar over its length where SQLite would take it: both
    quarantine it alike."""
    h = make_harness()
    base: dict[str, Any] = {
        "site": "north",
        "gateway_id": "gw1",
        "device_id": "line1",
        "gateway_time": T0,
    }
    snapshot = wire.SettingsSnapshot(
        **base, session=1, seq=1, settings={}, hash="s1", reason="r" * 33
    )
    firmware = wire.FirmwareReport(**base, session=1, seq=2, model="m" * 129, hash="f1")
    alarm = wire.Alarm(**base, session=1, seq=3, code="c" * 65, state="raised", message="m")
    fine = wire.FirmwareReport(**base, session=1, seq=4, model="LP-900", hash="f2")
    # Keys of free-form details are data: the field limits do not apply to them.
    details: dict[str, Any] = {
        "reason": "link lost: " + "x" * 100,
        "index": 2**40,
        "code": "c" * 100,
    }
    alarm_ok = wire.Alarm(
        **base, session=1, seq=5, code="comms_lost", state="raised", message="m", details=details
    )
    payload = wire.encode_records([snapshot, firmware, alarm, fine, alarm_ok])
    result = h.ingestor.ingest([Message(TOPIC, payload)])
    assert (result.stored, result.quarantined) == (2, 3)
    with h.engine.connect() as conn:
        problems = sorted(item["detail"] for item in quarantine.list_quarantine(conn))
    assert problems == [
        "code: 65 characters > 64",
        "model: 129 characters > 128",
        "reason: 33 characters > 32",
    ]


# Values in places with limits of their own, and nested ones, for the quick check below.
NESTED = [
    {"quality": '["ok", "\\u0000"]'},
    {"details": '{"hash": "' + "h" * 100 + '"}'},  # a key, not the field: no limit of 64
    {"details": '{"k": ' + str(2**63) + "}"},
    {"details": '{"connection": ' + str(2**31) + "}"},  # a key: 64 bits allowed
    {"details": '{"k": 1e400}'},
    {"details": '{"\\ud800": 1}'},
    {"device_time_flags": '["' + "f" * 9000 + '"]'},
    {"address": json.dumps("a" * 128)},
    {"address": json.dumps("a" * 129)},
    {"label": json.dumps("é" * 8192)},
    {"label": json.dumps("é" * 8193)},
    {"seq": str(2**63 - 1)},
    {"session": str(2**63)},
]


@pytest.mark.parametrize(
    "fields", [c[1] for c in CORPUS if c[2] == "unstorable"] + NESTED, ids=lambda f: str(f)[:40]
)
def test_the_quick_storability_check_agrees_with_the_full_one(fields):
    """`storable` (no paths, exact types first) says yes exactly when `_problem` finds
    nothing: ingest's fast path is as strict as the record-by-record one."""
    from center.ingest_validation import _problem, _record, storable

    record = _record.validate_python(json.loads(poison(fields)))
    assert storable(record) == (_problem(record, "") is None)
