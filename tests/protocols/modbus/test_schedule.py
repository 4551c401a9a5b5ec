"""Poll periods on one grid per interval, and one loop timer per moment for every poller
waiting for it (protocols/modbus/schedule.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from protocols.modbus.schedule import Job, Ticker, ticker


def test_jobs_started_apart_fall_due_together() -> None:
    """Units whose pollers started 35 ms apart are polled at the same moments from their
    second poll on, each still about one interval after its first."""
    first, second = Job("measurements", 0.1), Job("measurements", 0.1)
    first.next_due, second.next_due = 1000.013, 1000.048
    first.reschedule(1000.02)
    second.reschedule(1000.058)
    assert first.next_due == second.next_due == pytest.approx(1000.1)
    for _ in range(50):
        now = first.next_due + 0.004
        first.reschedule(now)
        second.reschedule(now)
        assert first.next_due == second.next_due
    assert first.next_due == pytest.approx(1005.1)
    assert (first.overruns, second.overruns) == (0, 0)


def test_an_overrun_is_counted_and_stays_on_the_grid() -> None:
    job = Job("measurements", 0.1, next_due=500.0)
    assert job.reschedule(500.35) == 3  # 500.1, 500.2, 500.3 missed
    assert job.overruns == 3
    assert job.next_due == pytest.approx(500.4)
    assert job.reschedule(500.41) == 0
    assert job.next_due == pytest.approx(500.5)


def test_a_job_made_due_early_returns_to_the_grid() -> None:
    """The settings job made due by a counter change, or every job after a unit came
    back: the run comes at once, the next on the grid again."""
    job = Job("settings", 600.0, next_due=6000.0)
    job.next_due = 6123.4  # due now
    job.reschedule(6123.5)
    assert job.next_due == pytest.approx(6600.0)


async def test_pollers_due_at_one_moment_share_one_timer(monkeypatch: Any) -> None:
    loop = asyncio.get_running_loop()
    timers = []
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        timers.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)
    wake = Ticker(loop)
    when = time.monotonic() + 0.05
    woken: list[int] = []

    async def poller(i: int) -> None:
        await wake.at(when)
        woken.append(i)

    tasks = [asyncio.create_task(poller(i)) for i in range(100)]
    await asyncio.sleep(0)
    tasks[7].cancel()  # one poller stopped meanwhile: the others are still woken
    await asyncio.gather(*tasks, return_exceptions=True)
    assert timers == [when]
    assert sorted(woken) == [i for i in range(100) if i != 7]
    assert time.monotonic() >= when


async def test_one_ticker_per_loop() -> None:
    assert ticker() is ticker()
