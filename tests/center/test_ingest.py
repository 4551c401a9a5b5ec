"""Hostile input is rejected and counted; the schema matches its migrations."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from center.ingest import Message
from center.ingest_validation import Ignored, Rejected, check_message
from center.store.schema import metadata
from gateway import wire
from tests.center.records import T0, Gateway, message

GOOD = Gateway().event("line1", "trip_phase_a")


def topic_of(r, **over):
    parts = {"site": r.site, "gateway_id": r.gateway_id, "kind": r.kind, "device_id": r.device_id}
    parts.update(over)
    return wire.topic(**parts)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (topic_of(GOOD), b"{not json", "malformed"),
        (topic_of(GOOD), b'{"v":1,"records":[]}', "malformed"),
        (topic_of(GOOD), b'{"v":2,"records":[{}]}', "malformed"),
        (topic_of(GOOD), b"x" * (wire.MAX_PAYLOAD_BYTES + 1), "oversized"),
        (topic_of(GOOD, kind="rumour"), wire.encode_records([GOOD]), "unknown_kind"),
        ("relay/v1/only/three", wire.encode_records([GOOD]), "bad_topic"),
        (topic_of(GOOD, gateway_id="gw-evil"), wire.encode_records([GOOD]), "topic_mismatch"),
        (topic_of(GOOD, site="south"), wire.encode_records([GOOD]), "topic_mismatch"),
        (topic_of(GOOD, kind="alarm"), wire.encode_records([GOOD]), "topic_mismatch"),
        (topic_of(GOOD, device_id="line2"), wire.encode_records([GOOD]), "topic_mismatch"),
        # The batch topic takes any kind and device, but never another gateway's records.
        (
            topic_of(GOOD, kind="batch", device_id=None, gateway_id="gw-evil"),
            wire.encode_records([GOOD]),
            "topic_mismatch",
        ),
        (topic_of(GOOD, kind="batch"), wire.encode_records([GOOD]), "unknown_kind"),
    ],
)
def test_hostile_messages_are_rejected_with_a_reason(topic, payload, reason):
    with pytest.raises(Rejected) as err:
        check_message(topic, payload)
    assert err.value.reason == reason


def test_center_state_is_ignored_and_good_records_pass():
    with pytest.raises(Ignored):
        check_message(wire.CENTER_STATE_TOPIC, b'{"state":"online"}')
    assert check_message(topic_of(GOOD), wire.encode_records([GOOD])).records == [GOOD]


def test_the_batch_topic_carries_records_of_several_kinds_and_devices():
    gw = Gateway()
    mixed = [gw.event("line1", "trip_phase_a"), gw.event("line2", "start")]
    batch = wire.topic(GOOD.site, GOOD.gateway_id, "batch")
    assert check_message(batch, wire.encode_records(mixed)).records == mixed


def test_rejections_are_stored_and_counted_next_to_good_records(make_harness):
    h = make_harness()
    gw = Gateway()
    good = message(gw.event("line1", "trip_phase_a", at=T0))
    evil = message(Gateway(gateway_id="gw-evil").event("line1", "trip_phase_a"))
    forged = Message(good.topic.replace("gw1", "gw-evil"), good.payload)
    batch = [Message(good.topic, b"\xff\xfe garbage"), evil, forged, good]
    result = h.ingestor.ingest(batch)
    assert (result.stored, result.rejected) == (2, 2)
    counters = h.counters.snapshot()
    assert counters["rejected_malformed"] == 1
    assert counters["rejected_topic_mismatch"] == 1
    assert h.scalar("SELECT count(*) FROM rejected_messages") == 2
    assert h.scalar("SELECT count(*) FROM records WHERE gateway_id = 'gw-evil'") == 1


def test_migrations_match_the_schema(make_harness):
    h = make_harness()
    with h.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_firmware_and_settings_reach_the_inventory(make_harness):
    h = make_harness()
    base: dict[str, Any] = {
        "site": "north",
        "gateway_id": "gw1",
        "device_id": "line1",
        "gateway_time": T0,
    }
    fw = wire.FirmwareReport(
        **base, session=1, seq=1, model="LP-900", firmware_version="2.4.1", hash="f1"
    )
    st = wire.SettingsSnapshot(
        **base, session=1, seq=2, settings={"zone1_reach": wire.SettingEntry(value=4.2)}, hash="s1"
    )
    h.send(fw)
    h.send(st)
    h.send(fw)  # a duplicate
    from center.store import queries

    with h.engine.connect() as conn:
        (dev,) = queries.inventory(conn)
    assert (dev["firmware_version"], dev["firmware_hash"], dev["settings_hash"]) == (
        "2.4.1",
        "f1",
        "s1",
    )
    assert (dev["firmware_reports"], dev["settings_snapshots"]) == (1, 1)
