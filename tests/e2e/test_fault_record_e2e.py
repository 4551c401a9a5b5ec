"""A disturbance record end to end: the simulated IEC 103 relay trips on the seed's
phase-A fault and records it; the agent process fetches it over the real codec (serial
over TCP), writes COMTRADE and sends it through its outbox and a real Mosquitto; the
center reassembles it, analyses it and attaches it, with its analysis, to the P1 ticket.
The answers are those of the synthesised waveform (`simulator.waveforms.FaultSpec`'s
defaults): 400 A load, 6,000 A on phase A from inception to clearing 65 ms later, trip
at 21 ms, phase-A voltage down to 40 %."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from center.store.queries import get_ticket
from simulator.scenario import Scenario
from tests.center.mqtt_support import eventually, running_center
from tests.e2e.conftest import RECORDER
from tests.support.mosquitto import Mosquitto

CRITICAL = [{"site": "north", "device_id": "busbar", "criticality": "high"}]


def attached_record(db: str) -> dict[str, Any] | None:
    """The P1 ticket, once a complete disturbance record is on it."""
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            ticket = conn.execute(
                sa.text("SELECT id FROM tickets WHERE fault_class = 'protection_operation'")
            ).scalar()
            doc = get_ticket(conn, ticket) if ticket is not None else None
    finally:
        engine.dispose()
    return doc if doc and doc["disturbance_records"] else None


async def test_a_relay_record_reaches_the_p1_ticket_with_its_analysis(
    substation_factory: Any, seed_with_103: Scenario, mosquitto: Mosquitto, db_url: str
) -> None:
    async with running_center(mosquitto.host, mosquitto.port, db_url, "center", devices=CRITICAL):
        sub = await substation_factory(seed_with_103)
        await sub.wait_ready()
        await sub.runner.play()
        ticket = await eventually(
            lambda: attached_record(db_url), what="the record on the P1 ticket", timeout=60
        )
    assert ticket["priority"] == "P1"
    assert sorted(ticket["devices"]) == ["busbar", "line1", "line2", RECORDER]
    [record] = ticket["disturbance_records"]
    assert (record["device_id"], record["fault_number"]) == (RECORDER, 1)
    start = next(p for p in sub.runner.played if (p.relay, p.step.point) == (RECORDER, "start"))
    a = record["analysis"]
    assert a["fault_type"] == "AG"
    assert a["faulted_phases"] == ["A", "N"]
    # inception at the relay's start (its trigger), within one sample (1 ms)
    inception = datetime.fromisoformat(a["inception"])
    assert abs((inception - start.device_time).total_seconds()) <= 0.001
    assert a["inception_offset_ms"] == pytest.approx(0, abs=1)
    assert a["clearing_ms"] == pytest.approx(65, abs=1)
    assert (a["trip_ms"], a["breaker_ms"]) == (pytest.approx(21, abs=1), pytest.approx(65, abs=1))
    ia = a["currents"]["A"]
    assert ia["prefault_rms"] == pytest.approx(400, rel=0.02)
    assert ia["fault_rms"] == pytest.approx(6000, rel=0.02)
    assert a["currents"]["B"]["fault_rms"] == pytest.approx(400, rel=0.02)
    assert a["voltages"]["A"]["dip_pct"] == pytest.approx(60, abs=1)
    assert a["voltages"]["B"]["dip_pct"] == pytest.approx(0, abs=1)
    assert any(
        e["entry"] == "disturbance" and a["summary"] in e["summary"] for e in ticket["timeline"]
    ), ticket["timeline"]
