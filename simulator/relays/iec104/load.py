"""Load generator for benchmarks: N simulated IEC 104 relays sending paced events.

Relay i listens on `base_port + i` with common address `i + 1` and single points
(M_SP_TB_1) at IOA 1..points. Every event toggles one point and carries the send time as
its CP56 device time, so a receiver can measure latency. Sends are paced per relay in
`c104.Batch`es (one ASDU carries up to `batch` points): c104's server overwrites silently
beyond 100 queued messages, so an unpaced generator would measure its own losses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import c104

from simulator.relays.iec104.values import local_naive

log = logging.getLogger(__name__)


@dataclass
class LoadRelay:
    index: int
    port: int
    common_address: int
    server: c104.Server
    points: list[c104.Point]
    sent: int = 0
    skipped: int = 0  # batches not sent because no master was connected
    states: list[bool] = field(default_factory=list)


@dataclass
class LoadResult:
    relays: int
    sent: int
    skipped_batches: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class LoadGenerator:
    def __init__(
        self,
        relays: int,
        base_port: int,
        *,
        points: int = 20,
        batch: int = 20,
        host: str = "127.0.0.1",
        tick_rate_ms: int = 50,  # c104 refuses less
    ) -> None:
        if not 1 <= batch <= points:
            raise ValueError("batch must be between 1 and points")
        self.batch = batch
        self.relays: list[LoadRelay] = []
        for i in range(relays):
            server = c104.Server(ip=host, port=base_port + i, tick_rate_ms=tick_rate_ms)
            station = server.add_station(common_address=i + 1)
            assert station is not None
            pts = []
            for ioa in range(1, points + 1):
                p = station.add_point(io_address=ioa, type=c104.Type.M_SP_TB_1)
                assert p is not None
                pts.append(p)
            self.relays.append(
                LoadRelay(i, base_port + i, i + 1, server, pts, states=[False] * points)
            )

    def start(self) -> None:
        for r in self.relays:
            r.server.start()

    def stop(self) -> None:
        for r in self.relays:
            r.server.stop()

    def connected(self) -> int:
        return sum(1 for r in self.relays if r.server.has_active_connections)

    async def wait_for_clients(self, timeout_s: float = 60.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.connected() < len(self.relays):  # noqa: ASYNC110 - c104 state, no event
                await asyncio.sleep(0.05)

    async def run(
        self, rate: float, duration_s: float, progress: Callable[[str], None] | None = None
    ) -> LoadResult:
        """Send `rate` events/s in total, spread over the relays, for `duration_s`."""
        per_relay = rate / len(self.relays)
        batches_per_s = per_relay / self.batch
        started = time.monotonic()
        await asyncio.gather(
            *(self._drive(r, batches_per_s, started, duration_s) for r in self.relays)
        )
        seconds = time.monotonic() - started
        result = LoadResult(
            len(self.relays),
            sum(r.sent for r in self.relays),
            sum(r.skipped for r in self.relays),
            seconds,
        )
        if progress:
            progress(f"sent {result.sent} events in {seconds:.2f}s ({result.rate:.0f}/s), "
                     f"{result.skipped_batches} batches skipped (no master)")  # fmt: skip
        return result

    async def _drive(
        self, relay: LoadRelay, batches_per_s: float, started: float, duration_s: float
    ) -> None:
        interval = 1.0 / batches_per_s
        n = 0
        cursor = 0
        while True:
            due = started + n * interval
            if due - started >= duration_s:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            n += 1
            if not relay.server.has_active_connections:
                relay.skipped += 1
                continue
            now = local_naive(datetime.now(UTC))
            batch = c104.Batch(cause=c104.Cot.SPONTANEOUS)
            for _ in range(self.batch):
                i = cursor % len(relay.points)
                cursor += 1
                relay.states[i] = not relay.states[i]
                point = relay.points[i]
                point.info = c104.SingleInfo(on=relay.states[i], recorded_at=now)
                batch.add_point(point)
            if relay.server.transmit_batch(batch):
                relay.sent += self.batch
            else:
                relay.skipped += 1
