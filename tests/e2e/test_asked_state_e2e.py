"""States reported because someone asked never rewrite an incident, end to end.

The seed's phase-A fault is played on three simulated IEC 104 relays, read by the agent (a
real process), through Mosquitto, into the center (its real service, SQLite). Engineers
then poll every relay (each poll runs a general interrogation) and the agent restarts
(a general interrogation after every connect): the relays' answers reach the center as
records, and the protection ticket's timeline, first and last event times and occurrence
count stay what the fault made them. A relay's alarm found cleared by the interrogation
after a reconnect still resolves its condition ticket.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from center.store import schema
from simulator.relays.iec104.relay import Iec104Relay
from simulator.relays.iec104.values import make_info
from simulator.runner import ScenarioRunner, on_free_ports
from simulator.scenario import SEED_SCENARIO, load_scenario
from tests.agent.test_control_support import short_dir_fixture  # noqa: F401 - fixture
from tests.e2e.center_view import CenterView, running_site
from tests.e2e.conftest import with_steps
from tests.support.mosquitto import Mosquitto

RELAYS = ("line1", "line2", "busbar")
SELF_CHECK = "1101"  # line-protection's self_check_fail


@dataclass
class Site(CenterView):
    runner: ScenarioRunner

    def ticket(self, fault_class: str) -> dict[str, Any]:
        """The ticket of a class with its timeline, typed (times as aware datetimes)."""
        t, line = schema.tickets.c, schema.timeline.c
        with self.center.engine.connect() as conn:
            (row,) = conn.execute(
                sa.select(t.id, t.state, t.occurrences, t.first_event_at, t.last_event_at,
                          t.severity).where(t.fault_class == fault_class)
            ).mappings()  # fmt: skip
            ticket = {k: _aware(v) for k, v in row.items()}
            ticket["timeline"] = [
                (_aware(r.at), r.entry, r.subject, r.summary)
                for r in conn.execute(
                    sa.select(line.at, line.entry, line.subject, line.summary)
                    .where(line.ticket_id == ticket["id"])
                    .order_by(line.id)
                )
            ]
        return ticket

    def poll(self, device: str) -> None:
        """`relay-agent poll DEVICE --what status`, as an engineer types it."""
        subprocess.run(
            [sys.executable, "-m", "agent.cli", "poll", device, "--what", "status",
             "--config", str(self.agent.config_path), "--json"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip


def _aware(value: Any) -> Any:
    """SQLite gives back naive UTC datetimes, PostgreSQL aware ones."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@pytest.fixture
async def site(tmp_path: Path, short_dir: Path, mosquitto: Mosquitto) -> AsyncIterator[Site]:
    scenario = on_free_ports(load_scenario(SEED_SCENARIO))
    # line2's self-check fails after the fault: a condition ticket besides the incident
    scenario = with_steps(
        scenario, [{"at_ms": 2300, "relay": "line2", "point": "self_check_fail", "value": True}]
    )
    control = {"control": {"socket": str(short_dir / "control.sock")}}
    async with running_site(
        tmp_path, mosquitto, scenario, tickets={"auto_resolve_after_s": 0.5}, agent_extra=control
    ) as (center, runner, agent):
        yield Site(center, agent, runner)


INTERROGATED = 'lower(body) LIKE \'%"cause":"interrogated%\''


async def test_polls_and_reconnects_leave_the_incident_as_the_fault_made_it(site: Site) -> None:
    s = site
    await s.runner.wait_for_clients(3)
    # every relay's interrogation after connect is stored before the fault is played
    for relay in RELAYS:
        await s.until(
            f"SELECT count(*) FROM records WHERE device_id = :d AND {INTERROGATED}",
            f"{relay}'s interrogation after connect",
            d=relay,
        )
    await s.runner.play()
    played = [p for p in s.runner.played if p.step.action == "point"]
    await s.until(
        "SELECT count(*) = :n FROM records WHERE kind = 'event'"
        ' AND lower(body) LIKE \'%"cause":"spontaneous"%\'',
        "every played event",
        n=len(played),
    )
    await s.until(
        "SELECT count(*) FROM tickets WHERE fault_class = 'self_check'", "self-check ticket"
    )
    incident = s.ticket("protection_operation")
    assert incident["occurrences"] == 1
    fault_start = min(p.device_time for p in played if p.step.point in ("start", "trip_phase_a"))
    assert incident["first_event_at"] == fault_start

    # --- engineers poll every relay: one general interrogation each -------------------
    # the interrogations after the first connect (the fault's events came after them)
    asked_before = s.value(f"SELECT count(*) FROM records WHERE {INTERROGATED}")
    for relay in RELAYS:
        await asyncio.to_thread(s.poll, relay)
    # each poll's audit record leaves the outbox after the interrogation's answers
    await s.until("SELECT count(*) = 3 FROM records WHERE kind = 'audit'", "three poll audits")
    asked_after_polls = s.value(f"SELECT count(*) FROM records WHERE {INTERROGATED}")
    assert asked_after_polls > asked_before  # the answers did reach the center
    assert s.ticket("protection_operation") == incident

    # --- the agent restarts: a general interrogation after every connect ----------------
    session = s.value("SELECT max(session) FROM records")
    s.agent.stop()
    s.agent.start()
    await s.until(
        f"SELECT count(*) >= :n FROM records WHERE session > :s AND {INTERROGATED}",
        "the restarted agent's interrogations",
        n=asked_before,  # as many as the first connect brought
        s=session,
    )
    assert s.ticket("protection_operation") == incident

    # --- a reconnect finds line2's self-check alarm cleared ------------------------------
    self_check = s.ticket("self_check")
    assert (self_check["state"], self_check["occurrences"]) == ("open", 1)
    line2 = s.runner.relays["line2"]
    assert isinstance(line2, Iec104Relay)
    await line2.set_online(False)
    await s.until(
        "SELECT count(*) FROM records WHERE kind = 'alarm' AND device_id = 'line2'"
        " AND value = 'raised'",
        "line2 comms lost",
    )
    # The relay's state changes without a spontaneous report (its buffer was lost with it):
    # only the interrogation after the reconnect can tell.
    line2.point(SELF_CHECK).info = make_info("M_SP_TB_1", False, [], datetime.now(UTC))
    await line2.set_online(True)
    await s.until(
        "SELECT count(*) FROM tickets WHERE fault_class = 'self_check' AND state = 'resolved'",
        "self-check resolved by the state found after the reconnect",
    )
    assert s.ticket("protection_operation") == incident
