"""One typed answer for every protocol: the real IEC 104, Modbus and IEC 103 drivers
polled through the daemon against the simulated relays.

Each kind's part has the same fields whatever the protocol (`gateway/rpc.py`), events carry
the profile's point names and come oldest first, and every setting the relay has is
counted (not the parts of a protocol-specific dict)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.cli.client import DaemonClient, connect
from agent.config import load_config
from gateway.rpc import PollAnswer, PollKind
from simulator.harness.agent_config import agent_config, to_toml
from simulator.runner import ScenarioRunner, combine, on_free_ports
from simulator.scenario import (
    SCENARIOS_DIR,
    SEED_SCENARIO,
    Scenario,
    ScenarioFile,
    load_scenario,
)
from tests.agent.test_control_support import running, short_dir_fixture  # noqa: F401
from tests.support.mosquitto import free_port

RELAYS = {"busbar": "iec104", "feeder7": "modbus", "line3-103": "iec103"}
# A point each relay reports as an event (the Modbus relay: from its event log).
CHANGES = {
    "busbar": "bf_init_phase_a",
    "feeder7": "trip_phase_a",
    "line3-103": "self_check_fail",
}


def three_protocols() -> Scenario:
    """One relay per protocol from the demo's substation; each raises and clears a point."""
    both = combine(load_scenario(SEED_SCENARIO), load_scenario(SCENARIOS_DIR / "demo-extras.toml"))
    steps = [
        {"at_ms": at, "relay": relay, "point": point, "value": value}
        for relay, point in CHANGES.items()
        for at, value in ((200, True), (700, False))
    ]
    data = {
        "scenario": {"name": "three-protocols"},
        "relays": [r.model_dump() for r in both.relays if r.id in RELAYS],
        "steps": steps,
    }
    return on_free_ports(Scenario(ScenarioFile.model_validate(data), both.source))


async def until_both_changes(client: DaemonClient, relay: str) -> None:
    """The relay's raise and clear have reached the agent (events poll, bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = await client.poll(relay, "events", None)
        part = reply.answer.result.events if reply.answer is not None else None
        if part is not None and sum(e.name == CHANGES[relay] for e in part.events) >= 2:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{relay}: the two changes did not arrive")


@pytest.fixture(name="substation")
async def substation_fixture(short_dir: Path) -> AsyncIterator[tuple[Scenario, ScenarioRunner]]:
    scenario = three_protocols()
    runner = ScenarioRunner(scenario, progress=lambda line: None)
    await runner.start()
    try:
        yield scenario, runner
    finally:
        await runner.stop()


async def test_every_protocol_answers_the_same_typed_shape(
    substation: tuple[Scenario, ScenarioRunner], short_dir: Path
) -> None:
    scenario, runner = substation
    config = agent_config(
        scenario, runner.relays, site="north", gateway_id="gw1", state_dir=short_dir / "state",
        broker=("127.0.0.1", free_port()),
        extra={"control": {"socket": str(short_dir / "c.sock"), "poll_timeout_s": 30}},
    )  # fmt: skip
    path = short_dir / "agent.toml"
    path.write_text(to_toml(config))
    loaded = load_config(path)
    answers: dict[str, PollAnswer] = {}
    async with running(loaded):
        await runner.play()
        async with connect(loaded.config.control_socket) as client:
            for relay in RELAYS:
                await until_both_changes(client, relay)
                reply = await client.poll(relay, "all", None)
                assert reply.answer is not None, (relay, reply.error)
                answers[relay] = reply.answer

    for relay, answer in answers.items():
        spec = scenario.relay(relay)
        assert answer.ok, (relay, answer.errors)
        assert answer.errors == {}, relay
        result = answer.result
        assert result.identity is not None
        assert result.settings is not None
        assert result.events is not None
        assert result.status is not None
        assert result.identity.firmware_version == spec.identity.firmware_version, relay
        # Every setting the relay has, by name.
        assert {s.name for s in result.settings.settings} == set(spec.settings), relay
        # The two changes, by profile name, oldest first.
        point = CHANGES[relay]
        changes = [e for e in result.events.events if e.name == point]
        assert [bool(e.value) for e in changes][-2:] == [True, False], (relay, changes)
        times = [e.device_time for e in result.events.events if e.device_time is not None]
        assert times == sorted(times), relay
        assert result.status.counters, relay
    # The same fields for every protocol, kind by kind.
    for kind in PollKind:
        shapes = {relay: set(getattr(a.result, kind).model_dump()) for relay, a in answers.items()}
        assert len({frozenset(s) for s in shapes.values()}) == 1, (kind, shapes)
