"""`finish_despite_cancel`: a clean stop lets the job in hand finish, but never waits on it
past the grace (a database that stays down must not hold the stop)."""

from __future__ import annotations

import asyncio

import pytest

from common.tasks import finish_despite_cancel


async def test_a_cancelled_caller_lets_the_job_finish_then_stops() -> None:
    steps: list[str] = []
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.sleep(0.2)
        steps.append("finished")

    caller = asyncio.create_task(finish_despite_cancel(job(), grace_s=10))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert steps == ["finished"]  # done before the caller's cancellation went on


async def test_a_job_that_outlives_the_grace_is_cancelled() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck() -> None:  # a store retrying a database that stays down
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(finish_despite_cancel(stuck(), grace_s=0.2))
    await started.wait()
    caller.cancel()
    async with asyncio.timeout(10):
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert cancelled.is_set()


async def test_without_a_cancel_the_job_s_error_is_the_caller_s() -> None:
    async def failing() -> None:
        raise ValueError("poison")

    with pytest.raises(ValueError, match="poison"):
        await finish_despite_cancel(failing(), grace_s=1)
