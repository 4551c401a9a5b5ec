"""`finish_despite_cancel`: a clean stop lets the job in hand finish, but never waits on it
past the grace (a database that stays down must not hold the stop)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from common.tasks import cancel_safe, finish_despite_cancel


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


async def _connect_like_pymodbus(outcome: asyncio.Future[bool]) -> bool:
    """As pymodbus' connect: the operation inside 3.11's wait_for, its error a False."""
    try:
        return await asyncio.wait_for(outcome, 60)
    except OSError:
        return False


@pytest.mark.parametrize("guarded", [True, False])
async def test_a_cancel_racing_the_outcome_still_ends_the_caller(guarded: bool) -> None:
    """The cancel lands in the turn the connect fails: awaited directly (the control
    case), wait_for loses it and the caller goes on; through cancel_safe it ends."""
    outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    job = _connect_like_pymodbus(outcome)
    caller = asyncio.ensure_future(cancel_safe(job) if guarded else job)
    await asyncio.sleep(0)  # the caller waits inside wait_for
    outcome.set_exception(ConnectionRefusedError("refused"))
    caller.cancel()
    await asyncio.wait({caller})
    if guarded:
        assert caller.cancelled()
    elif sys.version_info < (3, 12):  # the control: the race is real (3.12 fixed wait_for)
        assert not caller.cancelled()
        assert caller.result() is False


async def test_cancel_safe_returns_the_result_and_raises_the_error() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def refused() -> int:
        raise ConnectionRefusedError("refused")

    assert await cancel_safe(answer()) == 42
    with pytest.raises(ConnectionRefusedError):
        await cancel_safe(refused())
