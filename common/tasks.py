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
