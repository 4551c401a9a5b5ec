"""Isolation: one bad link never stalls or kills another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from agent.supervisor import LinkSupervisor
from gateway.outbox import Outbox
from gateway.rpc import PollKind
from protocols.config import DeviceBase
from protocols.driver import ObservationSink, PollResult
from protocols.errors import LinkError
from protocols.observations import LinkStateObservation, PointObservation
from protocols.profile_loader import load_named
from protocols.registry import LinkPlan, PlannedDevice


class FlakyDriver:
    """Fails at once, with a link error or a plain bug, every time it runs."""

    runs = 0

    def __init__(self, plan: LinkPlan, error: Exception) -> None:
        self.plan, self.error = plan, error

    @property
    def device_ids(self) -> Sequence[str]:
        return [d.config.id for d in self.plan.devices]

    async def run(self, sink: ObservationSink) -> None:
        FlakyDriver.runs += 1
        raise self.error

    async def poll(self, device_id: str, kind: PollKind) -> PollResult:
        raise LinkError("down")


class SteadyDriver(FlakyDriver):
    async def run(self, sink: ObservationSink) -> None:
        await sink.deliver([LinkStateObservation("good", True)])
        n = 0
        while True:
            n += 1
            await sink.deliver([PointObservation("good", "1001", n % 2 == 0)])
            await asyncio.sleep(0.01)


def plan(device_id: str) -> LinkPlan:
    config = DeviceBase(id=device_id, profile="line-protection")
    return LinkPlan(device_id, "fake", (PlannedDevice(config, None),))


async def test_a_failing_link_is_restarted_and_never_stalls_the_others(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    profile = load_named("line-protection")
    contexts = {d: DeviceContext("s", "g", d, "fake", profile) for d in ("good", "bad1", "bad2")}
    pipeline = Pipeline(box, contexts)
    sups = [
        LinkSupervisor(plan("good"), lambda p: SteadyDriver(p, RuntimeError()), pipeline),
        LinkSupervisor(
            plan("bad1"), lambda p: FlakyDriver(p, LinkError("refused")), pipeline, 0.01, 0.05
        ),
        LinkSupervisor(
            plan("bad2"), lambda p: FlakyDriver(p, ZeroDivisionError("bug")), pipeline, 0.01, 0.05
        ),
    ]
    tasks = [asyncio.create_task(s.run()) for s in sups]
    try:
        for _ in range(400):
            if pipeline.status["good"].events >= 20 and sups[2].status.restarts >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        box.close()
    assert pipeline.status["good"].events >= 20
    assert sups[1].status.restarts >= 3
    assert "refused" in sups[1].status.last_error
    assert sups[2].status.restarts >= 3
    assert "ZeroDivisionError" in sups[2].status.last_error
    assert pipeline.status["bad1"].link_up is False
    assert pipeline.counters["comms_lost"] == 2  # once per bad device, not per retry
