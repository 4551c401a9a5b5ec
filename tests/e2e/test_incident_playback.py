"""Incident playback: the seed scenario with the demo's IEC 103 line protection, which trips
and records the fault, through simulator, agent, Mosquitto and center opens a P1 ticket
with the relay's disturbance record; `relay-center incident export` writes it as a
scenario with the record as COMTRADE; replayed into a fresh agent and a fresh center (the
simulated 103 relay serving the recorded files), it opens a ticket with the same devices,
the same signals, the same relative times within 50 ms, and the same fault analysis."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from center.cli import main as center_cli
from simulator.relays.iec103.relay import Iec103Relay
from simulator.runner import on_free_ports
from simulator.scenario import Scenario, load_scenario
from simulator.waveforms import FaultSpec
from tests.center.mqtt_support import eventually, running_center
from tests.e2e.conftest import RECORDER
from tests.support.mosquitto import Mosquitto

# As in the demo: the busbar protection is critical, so its incident is a P1.
# What the field relay records, unlike the simulator's default record of a trip: so the
# lab's analysis can only match if the lab relay serves the field's COMTRADE.
FIELD_FAULT = FaultSpec(fault_current_a=4200, fault_duration_ms=58, dip=0.55, load_current_a=350)
CRITICAL = [{"site": "north", "device_id": "busbar", "criticality": "high"}]
# the seed's 15 events but the breaker's state before the fault, and the 103 relay's
# start, trip, their resets and its record's announcement (ASDU 23)
EVENTS_IN_TICKET = 19
# The incident's ticket; stopping the agent opens the gateway's site comms ticket too.
PROTECTION = "WHERE fault_class = 'protection_operation'"


def incident(db: str) -> list[tuple[str, str, str, datetime]] | None:
    """The protection ticket's events as (device, point, value, device time), in order."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            ticket = conn.execute(sa.text(f"SELECT id, priority FROM tickets {PROTECTION}")).first()
            if ticket is None:
                return None
            rows = conn.execute(
                sa.text(
                    "SELECT r.device_id, r.point, r.value, r.body FROM ticket_timeline t "
                    "JOIN records r ON r.gateway_id = t.gateway_id AND r.session = t.session "
                    "AND r.seq = t.seq WHERE t.ticket_id = :id AND r.kind = 'event'"
                ),
                {"id": ticket[0]},
            ).all()
    finally:
        engine.dispose()
    out = [
        (d, p, v, datetime.fromisoformat(json.loads(body)["device_time"])) for d, p, v, body in rows
    ]
    return sorted(out, key=lambda e: (e[3], e[:3])) if len(out) >= EVENTS_IN_TICKET else None


def analysis(db: str) -> dict[str, Any] | None:
    """The analysis of the disturbance record on the protection ticket, once it is there."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT d.device_id, d.fault_number, d.analysis FROM disturbance_records d "
                    "JOIN tickets t ON t.id = d.ticket_id "
                    "WHERE t.fault_class = 'protection_operation' AND d.status = 'complete'"
                )
            ).all()
    finally:
        engine.dispose()
    if not rows:
        return None
    [(device, fault_number, body)] = rows
    return {"device_id": device, "fault_number": fault_number, **json.loads(body)}


def relative(events: list[tuple[str, str, str, datetime]]) -> list[float]:
    t0 = events[0][3]
    return [(e[3] - t0).total_seconds() * 1000 for e in events]


async def run(
    factory: Any, scenario: Scenario, broker: Mosquitto, db: str, name: str,
    fault: FaultSpec | None = None,
) -> tuple[list[tuple[str, str, str, datetime]], dict[str, Any]]:  # fmt: skip
    """`fault`: what the 103 relay's trip records in the field (the lab replays it)."""
    async with running_center(broker.host, broker.port, db, f"center-{name}", devices=CRITICAL):
        sub = await factory(scenario, name)
        if fault is not None:
            relay = sub.runner.relays[RECORDER]
            assert isinstance(relay, Iec103Relay)
            relay.record_spec = fault
        await sub.wait_ready()
        await sub.runner.play()
        events: list[tuple[str, str, str, datetime]] = await eventually(
            lambda: incident(db), what=f"the {name} ticket with every event"
        )
        record: dict[str, Any] = await eventually(
            lambda: analysis(db), what=f"the {name} ticket's disturbance record"
        )
        sub.agent.stop()
        await sub.runner.stop()
    return events, record


def same_analysis(field: dict[str, Any], lab: dict[str, Any], field_t0: datetime,
                  lab_t0: datetime) -> None:  # fmt: skip
    """Phases and type equal; inception relative to the first event within 50 ms, like
    the events; clearing, trip and breaker times within one sample (1 ms); RMS and peak
    currents and voltages within 0.5 %."""
    assert (lab["device_id"], lab["fault_number"]) == (field["device_id"], field["fault_number"])
    assert (lab["faulted_phases"], lab["fault_type"]) == (field["faulted_phases"], "AG")
    inception = [datetime.fromisoformat(a["inception"]) - t0
                 for a, t0 in ((field, field_t0), (lab, lab_t0))]  # fmt: skip
    assert abs((inception[1] - inception[0]).total_seconds()) <= 0.050
    for key in ("inception_offset_ms", "clearing_ms", "trip_ms", "breaker_ms"):
        assert lab[key] == pytest.approx(field[key], abs=1), key
    for kind in ("currents", "voltages"):
        assert lab[kind].keys() == field[kind].keys()
        for phase, values in field[kind].items():
            for key, value in values.items():
                expected = None if value is None else pytest.approx(value, rel=0.005)
                assert lab[kind][phase][key] == expected, (phase, key)  # None: no pre-fault
    assert lab["summary"] == field["summary"]


async def test_an_exported_incident_replays_into_a_fresh_agent_and_center(
    substation_factory: Any, seed_with_103: Scenario, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    field_db = f"sqlite:///{tmp_path / 'field.sqlite'}"
    field, field_record = await run(
        substation_factory, seed_with_103, mosquitto, field_db, "field", FIELD_FAULT
    )
    engine = sa.create_engine(field_db)
    with engine.connect() as conn:
        ticket_id, priority = conn.execute(
            sa.text(f"SELECT id, priority FROM tickets {PROTECTION}")
        ).one()
    engine.dispose()
    assert priority == "P1"
    assert field_record["device_id"] == RECORDER
    assert field_record["fault_type"] == "AG"
    assert field_record["currents"]["A"]["fault_rms"] == pytest.approx(4200, rel=0.02)
    assert field_record["clearing_ms"] == pytest.approx(58, abs=1)

    config = tmp_path / "center.toml"
    config.write_text(f'[database]\nurl = "{field_db}"\n')
    out = tmp_path / "incident.toml"
    assert (
        center_cli(["incident", "export", str(ticket_id), "-o", str(out), "--config", str(config)])
        == 0
    )
    exported = load_scenario(out)
    assert len(field) == EVENTS_IN_TICKET
    assert len(exported.steps) == EVENTS_IN_TICKET - 1  # the record announces itself
    assert sorted(r.id for r in exported.relays) == ["busbar", "line1", "line2", RECORDER]
    assert {r.identity.model for r in exported.relays} >= {"LP-900", "BP-200"}
    [ref] = exported.disturbances
    assert (ref.relay, ref.fault_number) == (RECORDER, field_record["fault_number"])

    lab_db = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    lab, lab_record = await run(
        substation_factory, on_free_ports(exported), mosquitto, lab_db, "lab"
    )

    assert len(lab) == len(field)
    assert [e[:3] for e in lab] == [e[:3] for e in field]
    for field_ms, lab_ms in zip(relative(field), relative(lab), strict=True):
        assert abs(field_ms - lab_ms) <= 50
    same_analysis(field_record, lab_record, field[0][3], lab[0][3])
    engine = sa.create_engine(lab_db)
    with engine.connect() as conn:
        members = sorted(
            conn.execute(sa.text(f"SELECT subject FROM ticket_members {PROTECTION}")).scalars()
        )
        lab_priority = conn.execute(sa.text(f"SELECT priority FROM tickets {PROTECTION}")).scalar()
        records = conn.execute(sa.text("SELECT count(*) FROM disturbance_records")).scalar()
    engine.dispose()
    assert members == ["busbar", "line1", "line2", RECORDER]
    assert lab_priority == "P1"
    assert records == 1  # the replayed record alone: the relay's trip synthesised none
