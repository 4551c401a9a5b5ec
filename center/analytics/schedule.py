"""Runs the ageing job inside `relay-center serve` once per `run_every_s` (daily by
default): checked every minute, claimed in `analytics_runs` so that a restart or a second
center does not run it again within the interval."""

from __future__ import annotations

import asyncio
import logging

from center.analytics import runs
from center.analytics.ageing_job import JOB, AgeingJob, AgeingRun

log = logging.getLogger(__name__)


class AgeingSchedule:
    def __init__(self, job: AgeingJob, check_every_s: float = 60.0) -> None:
        self.job = job
        self.check_every_s = check_every_s

    def run_if_due(self) -> AgeingRun | None:
        cfg = self.job.cfg
        if not cfg.enabled:
            return None
        now = self.job.tickets.clock.now()
        if not runs.claim(self.job.engine, JOB, now, cfg.run_every_s):
            return None
        return self.job.run(now)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_if_due)
            except Exception:  # the next check retries; never stop the schedule
                log.exception("ageing job failed")
            await asyncio.sleep(self.check_every_s)
