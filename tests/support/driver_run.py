"""Run a driver as a task for the length of a `with` block, for the protocol tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from protocols.driver import ObservationSink


class _Runnable(Protocol):
    async def run(self, sink: ObservationSink) -> None: ...


@contextlib.asynccontextmanager
async def running_driver(
    driver: _Runnable, sink: ObservationSink, ended_by: tuple[type[BaseException], ...] = ()
) -> AsyncIterator[asyncio.Task[None]]:
    """The driver's `run` as a task, cancelled and awaited on the way out; `ended_by`: the
    errors a test may already have seen it end with."""
    task = asyncio.create_task(driver.run(sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, *ended_by):
            await task
