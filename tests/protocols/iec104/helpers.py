"""Test doubles for the IEC 104 tests: a recording sink, plans, free ports, waiting, TZ."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from protocols.driver import ObservationSink
from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.driver import Iec104Driver
from protocols.observations import LinkStateObservation, Observation, PointObservation
from protocols.registry import LinkPlan, PlannedDevice
from tests.support.driver_run import running_driver

# One writer thread for every sink, as the agent has one outbox writer for every link (and
# a thread count that tests of c104's threads can rely on).
_WRITER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sink-writer")


class RecordingSink:
    """Keeps every delivered observation. Like the agent's outbox it commits `submit`ted
    observations on one writer thread, in order, and completes each future after its
    commit. `delay_s` makes each commit slow, and each call's (start, end, thread) is kept
    to prove commits run one at a time in order."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.observations: list[Observation] = []
        self.delay_s = delay_s
        self.calls: list[tuple[float, float, int]] = []
        self._lock = threading.Lock()

    def submit(self, observations: Sequence[Observation]) -> concurrent.futures.Future[None]:
        return _WRITER.submit(self.deliver_blocking, observations)

    async def deliver(self, observations: Sequence[Observation]) -> None:
        with self._lock:
            self.observations.extend(observations)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        started = time.monotonic()
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.observations.extend(observations)
            self.calls.append((started, time.monotonic(), threading.get_ident()))

    def points(
        self, device_id: str | None = None, cause: str | None = None
    ) -> list[PointObservation]:
        with self._lock:
            items = list(self.observations)
        return [
            o
            for o in items
            if isinstance(o, PointObservation)
            and (device_id is None or o.device_id == device_id)
            and (cause is None or o.cause == cause)
        ]

    def link_states(self, device_id: str) -> list[bool]:
        with self._lock:
            return [
                o.up
                for o in self.observations
                if isinstance(o, LinkStateObservation) and o.device_id == device_id
            ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose connects time out, as a relay host that is switched off (no refusal):
    it listens with a backlog of 0, already taken by one connection nobody accepts."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        with socket.create_connection(listener.getsockname(), 5):
            yield int(listener.getsockname()[1])


def device(device_id: str, port: int, common_address: int, **extra: Any) -> Iec104Device:
    return Iec104Device(
        id=device_id,
        protocol="iec104",
        profile="line-protection",
        host="127.0.0.1",
        port=port,
        common_address=common_address,
        tick_rate_ms=50,
        **extra,
    )


def driver_for(config: Iec104Device, addresses: Sequence[str] = ()) -> Iec104Driver:
    plan = LinkPlan(
        key=f"iec104:{config.id}",
        protocol="iec104",
        devices=(PlannedDevice(config, None, tuple(addresses)),),
    )
    return Iec104Driver(plan)


async def wait_until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
    """Poll a condition with a generous deadline (never assert timings on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


def native_threads() -> int:
    """Threads of this process, including c104's native ones that `threading` never sees."""
    return len(os.listdir("/proc/self/task"))


@contextlib.contextmanager
def local_timezone(name: str) -> Iterator[None]:
    """Run with another local TZ for Python *and* the C library (c104 uses localtime)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def running(
    driver: Iec104Driver, sink: ObservationSink
) -> AbstractAsyncContextManager[asyncio.Task[None]]:
    return running_driver(driver, sink, ended_by=(LinkError,))
