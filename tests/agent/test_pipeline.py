from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from gateway import wire
from gateway.outbox import Outbox
from protocols.observations import (
    IdentityObservation,
    LinkStateObservation,
    PointObservation,
    SettingsObservation,
    SettingValue,
)
from protocols.profile_loader import load_named


def records(box: Outbox) -> list[wire.Record]:
    rows = box.read(1000)
    return wire.decode_envelope(
        wire.encode_envelope([wire.stamp(r.body, r.session, r.seq) for r in rows])
    )


def make_pipeline(box: Outbox) -> Pipeline:
    ctx = DeviceContext("north", "gw1", "line1", "iec104", load_named("line-protection"))
    return Pipeline(box, {"line1": ctx})


def test_a_known_point_gets_its_meaning_and_keeps_time_and_quality(box: Outbox) -> None:
    t = datetime(2026, 3, 1, 8, 15, 30, 123000, tzinfo=UTC)
    make_pipeline(box).deliver_blocking(
        [
            PointObservation(
                "line1",
                "1011",
                True,
                ("NT", "SB"),
                t,
                ("substituted",),
                "spontaneous",
                {"type": "M_SP_TB_1"},
                cause_raw="SPONTANEOUS",
            )
        ]
    )
    (event,) = records(box)
    assert isinstance(event, wire.Event)
    assert (event.point, event.signal, event.severity, event.phase) == (
        "trip_phase_a",
        "trip",
        "critical",
        "A",
    )
    assert event.label == "Trip phase A (TJA)"
    assert event.device_time == t
    assert event.quality == ["NT", "SB"]
    assert event.device_time_flags == ["substituted"]
    assert (event.cause, event.cause_raw) == ("spontaneous", "SPONTANEOUS")
    assert event.details == {"type": "M_SP_TB_1"}
    assert event.device_id == "line1"
    assert event.site == "north"


def test_an_unknown_address_is_forwarded_not_dropped(box: Outbox) -> None:
    pipeline = make_pipeline(box)
    pipeline.deliver_blocking([PointObservation("line1", "9999", 1)])
    (event,) = records(box)
    assert isinstance(event, wire.Event)
    assert (event.point, event.signal, event.address) == (None, "unknown", "9999")
    assert pipeline.counters["unknown_points"] == 1


def test_link_changes_become_comms_alarms(box: Outbox) -> None:
    pipeline = make_pipeline(box)
    for up in (True, True, False, False, True):
        pipeline.deliver_blocking([LinkStateObservation("line1", up, "" if up else "timeout")])
    alarms = records(box)
    assert all(isinstance(a, wire.Alarm) for a in alarms)
    assert [(a.code, a.state) for a in alarms if isinstance(a, wire.Alarm)] == [
        ("comms_lost", "raised"),
        ("comms_lost", "cleared"),
    ]


def test_a_device_never_reached_raises_comms_lost(box: Outbox) -> None:
    make_pipeline(box).deliver_blocking([LinkStateObservation("line1", False, "refused")])
    (alarm,) = records(box)
    assert isinstance(alarm, wire.Alarm)
    assert (alarm.code, alarm.state, alarm.details) == (
        "comms_lost",
        "raised",
        {"reason": "refused"},
    )


def test_firmware_and_settings_are_sent_only_when_changed_even_across_restarts(
    tmp_path: Path,
) -> None:
    ident = IdentityObservation("line1", "Demo", "LP-900", "S1", "2.4.1", "abcd")
    settings_a = SettingsObservation("line1", (SettingValue("zone1_reach", 4.2, "ohm"),))
    settings_b = SettingsObservation(
        "line1", (SettingValue("zone1_reach", 4.5, "ohm"), SettingValue("station_name", "N"))
    )
    path = tmp_path / "o.sqlite"
    first = Outbox(path)
    first.open()
    pipeline = make_pipeline(first)
    pipeline.deliver_blocking([ident, settings_a])
    pipeline.deliver_blocking([ident, settings_a])
    assert [r.kind for r in records(first)] == ["firmware", "settings"]
    first.close()

    second = Outbox(path)
    second.open()
    try:
        pipeline = make_pipeline(second)
        pipeline.deliver_blocking([ident, settings_a])  # unchanged: nothing new
        assert len(second.read(100)) == 2
        pipeline.deliver_blocking([settings_b])
        snapshot = records(second)[-1]
        assert isinstance(snapshot, wire.SettingsSnapshot)
        assert [c.model_dump() for c in snapshot.diff] == [
            {
                "name": "station_name",
                "before": None,
                "after": "N",
                "change": "added",
                "category": "benign",
            },
            {
                "name": "zone1_reach",
                "before": 4.2,
                "after": 4.5,
                "change": "changed",
                "category": "protection",
            },
        ]
        assert snapshot.previous_hash is not None
        assert snapshot.previous_hash != snapshot.hash
        assert json.loads(snapshot.model_dump_json())["settings"]["zone1_reach"]["unit"] == "ohm"
    finally:
        second.close()


def test_an_inverted_point_is_raised_when_its_value_is_off(box: Outbox) -> None:
    # "healthy" (a watchdog bit) is on when all is well: on means the self-check is clear
    ctx = DeviceContext("north", "gw1", "feeder7", "modbus", load_named("feeder-protection-modbus"))
    Pipeline(box, {"feeder7": ctx}).deliver_blocking(
        [
            PointObservation("feeder7", "status:healthy", True),
            PointObservation("feeder7", "status:healthy", False),
            PointObservation("feeder7", "status:ct_supervision", True),
        ]
    )
    healthy, failed, ct = records(box)
    assert isinstance(healthy, wire.Event)
    assert isinstance(failed, wire.Event)
    assert isinstance(ct, wire.Event)
    assert (healthy.signal, healthy.value, healthy.raised) == ("self_check", True, False)
    assert (failed.value, failed.raised) == (False, True)
    assert (ct.value, ct.raised) == (True, True)


def test_a_fault_report_travels_with_the_events_of_its_delivery(box: Outbox) -> None:
    """A Modbus relay's fault report becomes a fault_report record, committed with the
    rest of the delivery."""
    from protocols.observations import FaultReportObservation

    pipeline = make_pipeline(box)
    report = FaultReportObservation("line1", datetime(2026, 3, 1, tzinfo=UTC), "AG", ("A", "N"))
    pipeline.deliver_blocking([report, PointObservation("line1", "1011", True)])
    fault, event = records(box)
    assert isinstance(fault, wire.FaultReport)
    assert fault.fault_type == "AG"
    assert isinstance(event, wire.Event)
    assert event.point == "trip_phase_a"
    assert pipeline.counters["fault_reports"] == 1


def test_a_setting_read_without_a_unit_gets_the_profiles_outside_the_hash(box: Outbox) -> None:
    """IEC 103 generic services give no units: the profile's [[settings]] unit fills in,
    as metadata (like the category), so the hash still covers the device's content only."""
    from agent.normalize import content_hash, settings_content

    obs = SettingsObservation("line1", (SettingValue("zone1_reach", 4.2), SettingValue("x", 1)))
    make_pipeline(box).deliver_blocking([obs])
    (snapshot,) = records(box)
    assert isinstance(snapshot, wire.SettingsSnapshot)
    assert snapshot.settings["zone1_reach"].unit == "ohm"  # from the profile
    assert snapshot.settings["x"].unit is None  # the profile does not list it
    assert snapshot.hash == content_hash(settings_content(obs))


def test_a_record_too_large_for_any_message_is_refused_at_creation_with_an_alarm(
    box: Outbox,
) -> None:
    """A settings snapshot over the one-message limit would be accepted by the broker and
    rejected by the center: it is refused here instead, and said so."""
    from protocols.observations import SettingsObservation, SettingValue

    pipeline = make_pipeline(box)
    huge = tuple(SettingValue(f"s{i}", "x" * 200) for i in range(6000))  # ~1.3 MB of JSON
    pipeline.deliver_blocking(
        [SettingsObservation("line1", huge), PointObservation("line1", "1011", True)]
    )
    alarm, event = records(box)
    assert isinstance(alarm, wire.Alarm)
    assert alarm.code == "record_too_large"
    assert alarm.device_id == "line1"
    assert alarm.state == "raised"
    assert alarm.details["kind"] == "settings"
    assert int(str(alarm.details["bytes"])) > wire.MAX_PAYLOAD_BYTES
    assert isinstance(event, wire.Event)  # the rest of the delivery is stored as usual
    assert pipeline.counters["records_too_large"] == 1
    # Every stored record fits in one message on its own.
    assert all(len(r.body) <= wire.MAX_RECORD_BODY_BYTES for r in box.read(10))
