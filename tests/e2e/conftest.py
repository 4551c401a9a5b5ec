"""A simulated substation (in this process), the agent (a real process) and a real
Mosquitto, wired by one scenario."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.agent_config import agent_config
from simulator.runner import ScenarioRunner, on_free_ports
from simulator.scenario import SEED_SCENARIO, Scenario, ScenarioFile, load_scenario
from tests.center.conftest import db_url  # noqa: F401 - center storage on both backends
from tests.support.agent_process import AgentProcess
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto


def with_steps(scenario: Scenario, steps: list[dict[str, Any]]) -> Scenario:
    data = {
        "scenario": scenario.header.model_dump(),
        "relays": [r.model_dump() for r in scenario.relays],
        "steps": [s.model_dump() for s in scenario.steps] + steps,
    }
    return Scenario(ScenarioFile.model_validate(data), scenario.source)


@dataclass
class Substation:
    runner: ScenarioRunner
    agent: AgentProcess
    collector: Collector
    broker: Mosquitto

    async def wait_for(self, predicate: Callable[[Collector], bool], what: str,
                       timeout: float = 60) -> None:  # fmt: skip
        try:
            await self.collector.wait_for(predicate, timeout=timeout, what=what)
        except AssertionError:
            print(self.agent.log()[-6000:])
            raise

    async def wait_connected(self, relays: int) -> None:
        await self.runner.wait_for_clients(relays, timeout_s=60)


@pytest.fixture
def seed() -> Scenario:
    return on_free_ports(load_scenario(SEED_SCENARIO))


@pytest.fixture
async def substation_factory(
    tmp_path: Path, mosquitto: Mosquitto
) -> AsyncIterator[Callable[[Scenario], Any]]:
    made: list[Substation] = []

    async def make(scenario: Scenario, name: str = "agent") -> Substation:
        """`name` keeps a second agent's state apart (a fresh agent)."""
        runner = ScenarioRunner(scenario, progress=lambda line: None)
        await runner.start()
        config = agent_config(
            scenario, runner.relays, site="north", gateway_id="gw-north-1",
            state_dir=tmp_path / f"{name}-state", broker=(mosquitto.host, mosquitto.port),
        )  # fmt: skip
        agent = AgentProcess(tmp_path / name, config)
        collector = Collector(mosquitto.host, mosquitto.port)
        await collector.__aenter__()
        agent.start()
        sub = Substation(runner, agent, collector, mosquitto)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.agent.stop()
        await sub.collector.__aexit__(None, None, None)
        await sub.runner.stop()
    await asyncio.sleep(0)
