"""Incident playback: the seed scenario through simulator, agent, Mosquitto and center opens
a P1 ticket; `relay-center incident export` writes it as a scenario; replayed into a fresh
agent and a fresh center, it opens a ticket with the same devices, the same signals, and
the same relative times within 50 ms."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from center.cli import main as center_cli
from simulator.runner import on_free_ports
from simulator.scenario import Scenario, load_scenario
from tests.center.mqtt_support import eventually, running_center
from tests.support.mosquitto import Mosquitto

# As in the demo: the busbar protection is critical, so its incident is a P1.
CRITICAL = [{"site": "north", "device_id": "busbar", "criticality": "high"}]
SEED_EVENTS_IN_TICKET = 14  # the seed's 15 events but the breaker's state before the fault
# The incident's ticket; stopping the agent opens the gateway's site comms ticket too.
PROTECTION = "WHERE fault_class = 'protection_operation'"


def incident(db: str) -> list[tuple[str, str, str, datetime]] | None:
    """The protection ticket's events as (device, point, value, device time), in order."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            ticket = conn.execute(
                sa.text(
                    "SELECT id, priority FROM tickets WHERE fault_class = 'protection_operation'"
                )
            ).first()
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
    return sorted(out, key=lambda e: e[3]) if len(out) >= SEED_EVENTS_IN_TICKET else None


def relative(events: list[tuple[str, str, str, datetime]]) -> list[float]:
    t0 = events[0][3]
    return [(e[3] - t0).total_seconds() * 1000 for e in events]


async def run(
    factory: Any, scenario: Scenario, broker: Mosquitto, db: str, name: str
) -> list[tuple[str, str, str, datetime]]:
    async with running_center(broker.host, broker.port, db, f"center-{name}", devices=CRITICAL):
        sub = await factory(scenario, name)
        await sub.wait_connected(len(scenario.relays))
        await sub.runner.play()
        events: list[tuple[str, str, str, datetime]] = await eventually(
            lambda: incident(db), what=f"the {name} ticket with every event"
        )
        sub.agent.stop()
        await sub.runner.stop()
    return events


async def test_an_exported_incident_replays_into_a_fresh_agent_and_center(
    substation_factory: Any, seed: Scenario, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    field_db = f"sqlite:///{tmp_path / 'field.sqlite'}"
    field = await run(substation_factory, seed, mosquitto, field_db, "field")
    engine = sa.create_engine(field_db)
    with engine.connect() as conn:
        ticket_id, priority = conn.execute(
            sa.text(f"SELECT id, priority FROM tickets {PROTECTION}")
        ).one()
    engine.dispose()
    assert priority == "P1"

    config = tmp_path / "center.toml"
    config.write_text(f'[database]\nurl = "{field_db}"\n')
    out = tmp_path / "incident.toml"
    assert (
        center_cli(["incident", "export", str(ticket_id), "-o", str(out), "--config", str(config)])
        == 0
    )
    exported = load_scenario(out)
    assert len(field) == len(exported.steps) == SEED_EVENTS_IN_TICKET
    assert sorted(r.id for r in exported.relays) == ["busbar", "line1", "line2"]
    assert {r.identity.model for r in exported.relays} == {"LP-900", "BP-200"}

    lab_db = f"sqlite:///{tmp_path / 'lab.sqlite'}"
    lab = await run(substation_factory, on_free_ports(exported), mosquitto, lab_db, "lab")

    assert len(lab) == len(field)
    assert [e[:3] for e in lab] == [e[:3] for e in field]
    for field_ms, lab_ms in zip(relative(field), relative(lab), strict=True):
        assert abs(field_ms - lab_ms) <= 50
    engine = sa.create_engine(lab_db)
    with engine.connect() as conn:
        members = sorted(
            conn.execute(sa.text(f"SELECT subject FROM ticket_members {PROTECTION}")).scalars()
        )
        lab_priority = conn.execute(sa.text(f"SELECT priority FROM tickets {PROTECTION}")).scalar()
    engine.dispose()
    assert members == ["busbar", "line1", "line2"]
    assert lab_priority == "P1"
