"""A whole site for end-to-end tests: simulated relays, the agent (a real process) and the
center (its real service, SQLite), on one Mosquitto; and what the tests read of the
center's database, waited on by condition."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from center.config import parse_config
from center.server import CenterService
from simulator.harness.agent_config import agent_config
from simulator.runner import ScenarioRunner
from simulator.scenario import Scenario
from tests.center.mqtt_support import eventually
from tests.support.agent_process import AgentProcess
from tests.support.mosquitto import Mosquitto


@contextlib.asynccontextmanager
async def running_site(
    tmp_path: Path,
    mosquitto: Mosquitto,
    scenario: Scenario,
    *,
    tickets: dict[str, Any] | None = None,
    agent_extra: dict[str, Any] | None = None,
    analytics: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[CenterService, ScenarioRunner, AgentProcess]]:
    """The center subscribed first, then the scenario's relays, then the agent reading them
    (site "north", gateway "gw-north-1"); all stopped on the way out."""
    config = parse_config({
        "center": {"instance": "e2e", "state_dir": str(tmp_path / "center")},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "client_id": "center-e2e"},
        "api": {"enabled": False},
        "tickets": {"tick_interval_s": 0.2, **(tickets or {})},
        "analytics": analytics or {},
    })  # fmt: skip
    center = await asyncio.to_thread(CenterService, config)
    stop = asyncio.Event()
    serving = asyncio.create_task(center.run(stop))
    # the center's persistent session exists before anything is published
    await eventually(lambda: center.mqtt_status["subscribed"], 30, "center subscribed")
    runner = ScenarioRunner(scenario, progress=lambda line: None)
    await runner.start()
    agent_cfg = agent_config(
        scenario, runner.relays, site="north", gateway_id="gw-north-1",
        state_dir=tmp_path / "agent-state", broker=(mosquitto.host, mosquitto.port),
        extra=agent_extra,
    )  # fmt: skip
    agent = AgentProcess(tmp_path / "agent", agent_cfg)
    agent.start()
    try:
        yield center, runner, agent
    finally:
        agent.stop()
        await runner.stop()
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 15)


@dataclass
class CenterView:
    center: CenterService
    agent: AgentProcess

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.center.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def value(self, sql: str, **params: Any) -> Any:
        with self.center.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    async def until(self, sql: str, what: str, **params: Any) -> Any:
        """Wait until `sql` gives something truthy; on timeout, show the agent's log."""
        try:
            return await eventually(lambda: self.value(sql, **params), 60, what)
        except AssertionError:
            print(self.agent.log()[-6000:])
            raise
