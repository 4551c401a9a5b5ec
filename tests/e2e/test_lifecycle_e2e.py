"""Firmware and settings baselines end to end: a simulated Modbus (or IEC 104) relay -> the
agent (a real process) -> Mosquitto -> the center (its real service, SQLite). Settings and
firmware change on the relay; the center keeps the inventory, opens drift tickets and resolves
them on approval; an agent restart resends nothing unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from center.baselines.approvals import BaselineService
from simulator.relays.base import SimulatedRelay
from simulator.runner import on_free_ports
from simulator.scenario import SCENARIOS_DIR, Scenario, ScenarioFile
from tests.e2e.center_view import CenterView, running_site
from tests.support.mosquitto import Mosquitto

FEEDER = {
    "id": "feeder7",
    "protocol": "modbus",
    "profile": "feeder-protection-modbus",
    "link": {"transport": "tcp", "port": 15502, "unit_id": 1},
    "identity": {"model": "FP-300", "serial": "FP3-0007", "firmware_version": "2.4.1"},
    "settings": {"i_pickup": 1.2, "t_delay": 0.3, "ar_enabled": 1, "bay_name": "Feeder 7"},
}


@dataclass
class Plant(CenterView):
    relay: SimulatedRelay
    approvals: BaselineService

    def tickets(self, fault_class: str) -> list[Any]:
        return self.rows(
            "SELECT id, state, severity, resolved_by FROM tickets WHERE fault_class = :fc",
            fc=fault_class,
        )


# The seed's line protection over IEC 104: identity and settings from its profile's
# [iec104] points, a settings-signal point the relay toggles on every change.
LINE104 = {
    "id": "line1",
    "protocol": "iec104",
    "profile": "line-protection",
    "link": {"port": 24041, "common_address": 1},
    "identity": {"model": "LP-900", "serial": "LP9-1001", "firmware_version": "2.4.1"},
    "settings": {"zone1_reach": 4.2, "zone1_time_delay": 0.0, "autoreclose_enabled": True,
                 "station_name": "North 220kV"},
}  # fmt: skip


@pytest.fixture
async def plant(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Plant]:
    async with running_plant(tmp_path, mosquitto, FEEDER) as p:
        yield p


@pytest.fixture
async def plant104(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Plant]:
    async with running_plant(tmp_path, mosquitto, LINE104) as p:
        yield p


@contextlib.asynccontextmanager
async def running_plant(
    tmp_path: Path, mosquitto: Mosquitto, relay_spec: dict[str, Any]
) -> AsyncIterator[Plant]:
    data = {"scenario": {"name": "lifecycle"}, "relays": [relay_spec]}
    scenario = on_free_ports(Scenario(ScenarioFile.model_validate(data), SCENARIOS_DIR / "x"))
    # the agent-wide default: identity (firmware) is re-read every second
    extra = {"snapshots": {"identity_interval_s": 1.0}}
    async with running_site(tmp_path, mosquitto, scenario, agent_extra=extra) as running:
        center, runner, agent = running
        relay = runner.relays[relay_spec["id"]]
        approvals = BaselineService(center.engine, center.ticket_engine, [])
        yield Plant(center, agent, relay, approvals)


async def test_settings_and_firmware_changes_drift_approve_and_survive_a_restart(
    plant: Plant,
) -> None:
    p = plant
    await p.until("SELECT count(*) FROM settings_snapshots", "the first snapshot")
    await p.until("SELECT count(*) FROM firmware_reports", "the first firmware report")
    # first reports are adopted as baselines: nothing deviates, nothing opens
    assert p.tickets("settings_drift") == []
    assert p.tickets("firmware_drift") == []

    # --- a setting changes on the relay -------------------------------------------------
    await p.relay.set_setting("i_pickup", 1.5)
    await p.until(
        "SELECT count(*) FROM tickets WHERE fault_class = 'settings_drift'", "settings drift"
    )
    changed = p.rows("SELECT diff, reason FROM settings_snapshots WHERE diff != '[]'")
    assert len(changed) == 1  # exactly one snapshot record carries the change
    assert json.loads(changed[0]["diff"]) == [
        {"name": "i_pickup", "before": 1.2, "after": 1.5, "change": "changed",
         "category": "protection"},
    ]  # fmt: skip
    assert changed[0]["reason"] == "device_signalled"  # the relay's change counter said so
    (ticket,) = p.tickets("settings_drift")
    assert (ticket["state"], ticket["severity"]) == ("open", "critical")

    result = await asyncio.to_thread(
        p.approvals.approve_settings, "north", "feeder7", "alice", "study 42: new pickup"
    )
    assert result.tickets_changed == [ticket["id"]]
    (ticket,) = p.tickets("settings_drift")
    assert (ticket["state"], ticket["resolved_by"]) == ("resolved", "alice")

    # --- firmware: an upgrade to an approved version, then an unapproved downgrade -------
    await asyncio.to_thread(p.approvals.approve_firmware, "FP-300", "2.5.0", "bob", "2.5 ok")
    await p.relay.set_firmware("2.5.0")
    await p.until("SELECT count(*) FROM firmware_reports WHERE firmware_version = '2.5.0'", "2.5.0")
    assert p.tickets("firmware_drift") == []
    await p.relay.set_firmware("2.3.0")
    await p.until(
        "SELECT count(*) FROM tickets WHERE fault_class = 'firmware_drift' AND state = 'open'",
        "firmware drift",
    )
    assert p.value("SELECT firmware_version FROM devices WHERE device_id = 'feeder7'") == "2.3.0"

    # --- an agent restart resends nothing unchanged ---------------------------------------
    first_session = p.value("SELECT max(session) FROM records")
    counts = p.value("SELECT count(*) FROM records WHERE kind IN ('firmware', 'settings')")
    p.agent.stop()
    p.agent.start()
    # The poller reads identity and settings before status on first contact, and records
    # leave the outbox in order: once a status event of the new session is stored, any
    # firmware or settings record of that session would be stored too.
    await p.until(
        "SELECT count(*) FROM records WHERE kind = 'event' AND session > :s",
        "a status event from the restarted agent",
        s=first_session,
    )
    assert p.value("SELECT count(*) FROM records WHERE kind IN ('firmware', 'settings')") == (
        counts
    )
    assert p.value("SELECT count(*) FROM settings_snapshots") == 2


async def test_an_iec104_setting_change_arrives_as_one_snapshot_with_its_diff(
    plant104: Plant,
) -> None:
    p = plant104
    await p.until("SELECT count(*) FROM settings_snapshots", "the first snapshot")
    await p.until("SELECT count(*) FROM firmware_reports", "the first firmware report")
    (report,) = p.rows("SELECT model, serial, firmware_version FROM firmware_reports")
    assert dict(report) == {"model": "LP-900", "serial": "LP9-1001", "firmware_version": "2.4.1"}
    assert p.tickets("settings_drift") == []
    assert p.tickets("firmware_drift") == []

    await p.relay.set_setting("zone1_reach", 4.5)
    await p.until(
        "SELECT count(*) FROM tickets WHERE fault_class = 'settings_drift'", "settings drift"
    )
    changed = p.rows("SELECT diff, reason FROM settings_snapshots WHERE diff != '[]'")
    assert len(changed) == 1  # exactly one snapshot record carries the change
    assert json.loads(changed[0]["diff"]) == [
        {"name": "zone1_reach", "before": 4.2, "after": 4.5, "change": "changed",
         "category": "protection"},
    ]  # fmt: skip
    assert changed[0]["reason"] == "device_signalled"  # the relay's settings-signal point
    assert p.value("SELECT count(*) FROM settings_snapshots") == 2
    (ticket,) = p.tickets("settings_drift")
    assert (ticket["state"], ticket["severity"]) == ("open", "critical")
