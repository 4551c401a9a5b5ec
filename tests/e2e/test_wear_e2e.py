"""Wear counters end to end: a simulated Modbus feeder relay whose breaker is near its
mechanical limit -> the agent (a real process) -> Mosquitto -> the center (its real service)
-> the ageing job. The counters come from the shipped profile, the limits from the shipped
center.example.toml, and the breaker operations the relay counts as its breaker opens carry
the device over its limit: its score and its ageing ticket say so in numbers."""

from __future__ import annotations

import asyncio
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from center.analytics.ageing_job import AgeingJob, newest_wear
from center.store import queries
from simulator.relays.base import SimulatedRelay
from simulator.runner import on_free_ports
from simulator.scenario import SCENARIOS_DIR, Scenario, ScenarioFile
from tests.center.mqtt_support import eventually
from tests.e2e.center_view import CenterView, running_site
from tests.e2e.test_lifecycle_e2e import FEEDER  # the same FP-300 feeder relay
from tests.support.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
PRESET = 9_990  # 0.999 of the 10,000 operations the example config maps: below the threshold
OPENINGS = 10


def shipped_wear() -> list[dict[str, object]]:
    with (ROOT / "config" / "center.example.toml").open("rb") as f:
        wear: list[dict[str, object]] = tomllib.load(f)["analytics"]["ageing"]["wear"]
    return wear


async def set_point(runner_relay: SimulatedRelay, scenario: Scenario, point: str,
                    value: bool | int) -> None:  # fmt: skip
    spec = scenario.profiles["feeder7"].by_name[point]
    await runner_relay.emit(spec, value, [], datetime.now(UTC))


def newest(view: CenterView, point: str) -> float | None:
    """The feeder's newest value of a point at the center, as the ageing job reads it (the
    agent sends each Modbus poll as one `measurements` record)."""
    with view.center.engine.connect() as conn:
        return newest_wear(conn, [point]).get(("north", "feeder7"), {}).get(point)


async def reaches(view: CenterView, point: str, value: float, what: str) -> None:
    try:
        await eventually(lambda: newest(view, point) == value, 60, what)
    except AssertionError:
        print(view.agent.log()[-6000:])
        raise


async def test_breaker_operations_carry_a_relay_onto_an_ageing_ticket(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    data = {"scenario": {"name": "wear"}, "relays": [FEEDER]}
    scenario = on_free_ports(Scenario(ScenarioFile.model_validate(data), SCENARIOS_DIR / "x"))
    wear = shipped_wear()
    assert {w["point"] for w in wear} == {"breaker_operations", "trip_count"}
    async with running_site(
        tmp_path, mosquitto, scenario, analytics={"ageing": {"wear": wear}}
    ) as (center, runner, agent):
        view = CenterView(center, agent)
        relay = runner.relays["feeder7"]
        await set_point(relay, scenario, "breaker_operations", PRESET)
        await reaches(view, "breaker_operations", PRESET, "the preset counter at the center")
        await view.until("SELECT count(*) FROM devices WHERE model = 'FP-300'", "the inventory")
        job = AgeingJob(center.engine, center.ticket_engine, [])
        before = await asyncio.to_thread(job.run)
        assert (before.scored, before.above_threshold) == (1, 0)

        # the breaker closes and trips open ten times: the relay counts each opening
        for _ in range(OPENINGS):
            await set_point(relay, scenario, "breaker_closed", True)
            await set_point(relay, scenario, "trip_phase_a", True)
            await set_point(relay, scenario, "breaker_closed", False)
            await set_point(relay, scenario, "trip_phase_a", False)
        await reaches(view, "breaker_operations", PRESET + OPENINGS, "the counter over its limit")
        await reaches(view, "trip_count", OPENINGS, "the trip counter at the center")
        assert newest(view, "breaker_operations") == 10_000

        after = await asyncio.to_thread(job.run)
        assert (after.put_on_tickets, len(after.tickets)) == (["north/feeder7"], 1)
        (row,) = view.rows("SELECT risk, details, explanation FROM ageing_scores")
        assert row["risk"] == 1.0
        found = {w["point"]: w for w in json.loads(row["details"])["wear"]}
        assert (found["breaker_operations"]["value"], found["breaker_operations"]["share"]) == (
            10_000,
            1.0,
        )
        assert (found["trip_count"]["value"], found["trip_count"]["limit"]) == (10, 2_000)
        assert "wear 1.00" in row["explanation"]
        with center.engine.connect() as conn:
            ticket = queries.get_ticket(conn, after.tickets[0])
        assert ticket is not None
        assert ticket["fault_class"] == "ageing"
        explained = " ".join(e["summary"] or "" for e in ticket["timeline"])
        assert "breaker operations 10,000 of 10,000 (1.00)" in explained
        assert "trips 10 of 2,000 (0.01)" in explained
