"""Running a daemon's concurrent loops so that the first failure surfaces as itself, and
so that a stop is never mistaken for a failure to retry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def first_failure(jobs: list[Coroutine[Any, Any, None]]) -> None:
    """Run jobs together until one fails; cancel the others and raise its error as is
    (a TaskGroup would wrap it in an ExceptionGroup, hiding MqttError from the retry)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def finish_despite_cancel(job: Coroutine[Any, Any, None], grace_s: float) -> None:
    """Run job to its end even when the caller is cancelled meanwhile (a clean stop), for
    at most grace_s more; then cancel it too, and let the caller's cancellation go on."""
    task = asyncio.ensure_future(job)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task}, timeout=grace_s)
        await _cancel_and_drop(task)
        raise


async def cancel_safe(job: Awaitable[T]) -> T:
    """Await `job` so that a cancel of the caller always ends the caller.

    Python 3.11's `asyncio.wait_for` (pymodbus' connect uses it) drops a cancel that
    arrives in the turn its operation completes, returning that result or raising that
    error instead. Awaited directly, the caller's cancel is handed down into that
    wait_for and lost with it: a link being stopped takes the lost cancel for a failed
    connect and retries, for ever (a daemon deaf to SIGTERM). Here the job runs as its own
    task and the caller waits on a future of its own (`asyncio.wait`), which a cancel
    always ends; the job is then cancelled and waited for, and its outcome dropped.
    (`Task.cancelling()` cannot tell either: a 3.11 TaskGroup leaves its parent's count
    raised when a child fails after the group's body ended.)"""
    task = asyncio.ensure_future(job)
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        await _cancel_and_drop(task)
        raise
    return task.result()


async def _cancel_and_drop(task: asyncio.Future[Any]) -> None:
    """Cancel `task`, wait for its end, and drop its outcome: the stop goes on whatever
    the job's fate (retrieved, so no "exception was never retrieved" either)."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()
