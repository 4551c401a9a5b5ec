"""A simulated substation (in this process), the agent (a real process) and a real
Mosquitto, wired by one scenario."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.harness.agent_config import agent_config
from simulator.relays.iec103.relay import Iec103Relay
from simulator.runner import ScenarioRunner, on_free_ports
from simulator.scenario import SCENARIOS_DIR, SEED_SCENARIO, Scenario, ScenarioFile, load_scenario
from tests.center.conftest import db_url  # noqa: F401 - center storage on both backends
from tests.support.agent_process import AgentProcess
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto

DEMO_EXTRAS = SCENARIOS_DIR / "demo-extras.toml"


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

    async def wait_ready(self) -> None:
        """Every relay of the scenario, whatever its protocol, has its master."""
        await masters_ready(self.runner)


@pytest.fixture
def seed() -> Scenario:
    return on_free_ports(load_scenario(SEED_SCENARIO))


RECORDER = "line3-103"


@pytest.fixture
def seed_with_103() -> Scenario:
    """The seed plus the demo's IEC 103 line protection (serial over TCP), which starts,
    trips phase A and so records the seed's fault, as in the demo."""
    seed_scenario, extras = load_scenario(SEED_SCENARIO), load_scenario(DEMO_EXTRAS)
    data = {
        "scenario": seed_scenario.header.model_dump(),
        "relays": [r.model_dump() for r in (*seed_scenario.relays, extras.relay(RECORDER))],
        "steps": [s.model_dump() for s in seed_scenario.steps]
        + [
            s.model_dump()
            for s in extras.steps
            if s.relay == RECORDER and s.point != "self_check_fail"
        ],
    }
    return on_free_ports(Scenario(ScenarioFile.model_validate(data), SEED_SCENARIO))


async def masters_ready(runner: ScenarioRunner) -> None:
    """Every relay has its master: IEC 104 relays count their clients; an IEC 103 relay is
    ready once the master has taken its identification after the reset."""
    iec104 = sum(1 for r in runner.scenario.relays if r.protocol == "iec104")
    await runner.wait_for_clients(iec104, timeout_s=60)
    relays = [r for r in runner.relays.values() if isinstance(r, Iec103Relay)]
    async with asyncio.timeout(60):
        while not all(("identity",) in r.delivered for r in relays):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the simulated bus offers no event for it


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
