"""The standing chaos suite, short: while three IEC 104 relays send, one fault at a time
(the agent, the broker or the center SIGKILLed, the agent's disk filled), then every event
the relays sent must be in the center's store exactly once. The relays resend what the
agent had not acknowledged, so "sent" means every event they produced. The long run with
all the faults in turn is `bench/chaos.py`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from simulator.harness.chaos import ChaosRig, DiskFiller, Tally, event_scenario
from tests.support.ci import in_ci

RATE_PER_RELAY = 20.0  # events a second per relay
PLAY_S = 8.0
FAULT_AT_S = 3.0  # into the play
DOWN_S = 2.0


async def run_case(tmp_path: Path, fault: Callable[[ChaosRig], Awaitable[None]],
                   disk: bool = False) -> Tally:  # fmt: skip
    """Play, strike once, drain; every event sent is stored (none lost); the tally."""
    scenario = event_scenario(RATE_PER_RELAY, PLAY_S)
    rig = ChaosRig(tmp_path, scenario, disk=disk, progress=print)
    try:
        await rig.start()
        play = asyncio.create_task(rig.runner.play())
        await asyncio.sleep(FAULT_AT_S)  # when the fault strikes; not a pass/fail timing
        await fault(rig)
        await play
        tally = await rig.drain(timeout_s=180, quiet_s=20)
        print(tally, dict(rig.faults))
        assert tally.sent == len(scenario.steps)
        assert rig.agent is not None
        assert rig.agent.proc is not None
        alive = rig.agent.proc.poll() is None  # the daemon lives on, whatever it met
        assert (tally.lost, alive) == (0, True), f"{tally}, agent alive {alive}\n{rig.logs()}"
        return tally
    finally:
        await rig.stop()


async def test_agent_sigkilled_while_relays_send(tmp_path: Path) -> None:
    tally = await run_case(tmp_path, lambda rig: rig.kill_agent(DOWN_S))
    assert tally.duplicated == 0  # the replays of what the agent had not acknowledged


async def test_broker_sigkilled_while_relays_send(tmp_path: Path) -> None:
    # Nothing was saved by the broker: the agent keeps each record until the center says
    # it stored it (relay-ack/v1), and sends again what was not confirmed.
    tally = await run_case(tmp_path, lambda rig: rig.kill_broker(DOWN_S))
    assert tally.duplicated == 0


async def test_center_sigkilled_while_relays_send(tmp_path: Path) -> None:
    tally = await run_case(tmp_path, lambda rig: rig.kill_center(DOWN_S))
    assert tally.duplicated == 0


async def test_agent_disk_filled_while_relays_send(tmp_path: Path) -> None:
    if not DiskFiller.available():
        if in_ci():
            pytest.fail("the disk-full case mounts a tmpfs: run the suite as root")
        pytest.skip("the disk-full case mounts a tmpfs: needs root")
    tally = await run_case(tmp_path, lambda rig: rig.fill_disk(DOWN_S), disk=True)
    assert tally.duplicated == 0
