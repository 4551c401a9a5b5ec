"""Running a daemon's concurrent loops so that the first failure surfaces as itself."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


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
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: the stop goes on whatever the job's fate
        raise
