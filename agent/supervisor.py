"""One owner per link: run its driver, restart it with backoff, keep it from hurting others.

A driver that raises `LinkError` lost its link; anything else is a bug in it. Either way
its devices are marked down (comms alarms follow), the supervisor waits with exponential
backoff and jitter, and runs a fresh driver. No driver failure reaches the daemon. While
the outbox cannot store (full, or the disk is), the link stays down instead of flapping,
and restarts once a probe write succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.pipeline import Pipeline
from protocols.driver import RESTARTS, DeviceCounters, Driver
from protocols.errors import LinkError
from protocols.registry import LinkPlan

log = logging.getLogger(__name__)

# A run that lasted this long was healthy: the next failure starts backoff afresh.
HEALTHY_RUN_S = 30.0


@dataclass
class LinkStatus:
    key: str
    running: bool = False
    restarts: int = 0
    last_error: str = ""
    driver: Driver | None = None
    # What the drivers that ended counted, so a device's counters outlive a restart.
    retired: dict[str, Counter[str]] = field(default_factory=dict)


class LinkSupervisor:
    def __init__(
        self,
        plan: LinkPlan,
        make_driver: Callable[[LinkPlan], Driver],
        pipeline: Pipeline,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.plan = plan
        self.make_driver = make_driver
        self.pipeline = pipeline
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.status = LinkStatus(plan.key)

    @property
    def device_ids(self) -> list[str]:
        return [d.config.id for d in self.plan.devices]

    async def run(self) -> None:
        delay = self.backoff_min_s
        while True:
            started = time.monotonic()
            error = await self._run_once()
            self.status.restarts += 1
            self.status.last_error = error
            await self._mark_down(error)
            if time.monotonic() - started > HEALTHY_RUN_S:
                delay = self.backoff_min_s
            wait = delay * (0.5 + random.random() / 2)
            log.info("link %s: restarting in %.1fs", self.plan.key, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.backoff_max_s)
            delay = await self._wait_for_storage(delay)

    async def _wait_for_storage(self, delay: float) -> float:
        """While the outbox cannot store, keep the link down rather than flap it: a relay
        that is not connected keeps its events, and one that is would only be refused."""
        outbox = self.pipeline.outbox
        if await outbox.probe():
            return delay
        log.warning(
            "link %s: held down until the outbox stores again (%s)",
            self.plan.key,
            outbox.unavailable,
        )
        while not await outbox.probe():
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.backoff_max_s)
        log.info("link %s: the outbox stores again; restarting", self.plan.key)
        return delay  # not reset: if the next append is refused again, still no flapping

    async def _run_once(self) -> str:
        try:
            driver = self.make_driver(self.plan)
            self.status.driver = driver
            self.status.running = True
            await driver.run(self.pipeline)
            return "driver stopped"
        except LinkError as exc:
            log.warning("link %s: %s", self.plan.key, exc)
            return str(exc) or type(exc).__name__
        except Exception as exc:  # a driver bug must not take the daemon down
            log.exception("link %s: driver failed", self.plan.key)
            return f"driver error: {type(exc).__name__}: {exc}"
        finally:
            self._retire(self.status.driver)
            self.status.running = False
            self.status.driver = None

    def device_counters(self) -> dict[str, Counter[str]]:
        """Per device: what its drivers counted since the agent started (the ended runs'
        and the running one's), and `restarts`: the device alone started afresh, or its
        whole link restarted."""
        out = {d: Counter(self.status.retired.get(d, {})) for d in self.device_ids}
        for device_id, counters in _counters_of(self.status.driver).items():
            out.setdefault(device_id, Counter()).update(counters)
        for counters in out.values():
            counters[RESTARTS] += self.status.restarts
        return out

    def _retire(self, driver: Driver | None) -> None:
        for device_id, counters in _counters_of(driver).items():
            self.status.retired.setdefault(device_id, Counter()).update(counters)

    async def _mark_down(self, reason: str) -> None:
        try:
            await self.pipeline.deliver(self.pipeline.link_down_all(self.device_ids, reason))
        except Exception:  # the outbox failing is logged there; keep supervising
            log.exception("link %s: could not record link down", self.plan.key)


def _counters_of(driver: Driver | None) -> DeviceCounters:
    """The driver's `device_counters()`, or nothing for a driver without them; a broken
    one costs its metrics, never the supervision."""
    read = getattr(driver, "device_counters", None)
    if read is None:
        return {}
    try:
        counters: DeviceCounters = read()
    except Exception:
        log.exception("could not read the driver's counters")
        return {}
    return counters
