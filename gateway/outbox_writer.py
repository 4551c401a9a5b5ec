"""The outbox writer thread's two halves around a commit: which queued writes go into it
(`WriteQueue.gather`), and waking the event-loop callers once it is done (`LoopWakeups`).

**Which writes commit together.** A write is urgent (an event a relay waits on: commit at
once) or may wait until its `due` time (a periodic value, say a Modbus poll's
measurements; an acknowledgement's deletion: nobody waits on it but the forwarder's
bookkeeping; an IEC 104 read's events while their relay can still send, up to 10 ms).
Commits closer than `min_commit_interval_s` wait out the rest of it (PostgreSQL's
commit_delay, adaptively: a lone urgent event commits at once), and a group of
writes that may wait commits at the earliest `due` among them, or at once when an urgent
write joins it. So polls that complete within a few milliseconds of each other share one
transaction, one fsync and one wake-up of the event loop, and an urgent event never
waits for them. Every write is still durable before its caller returns. While a group
waits, a write that may wait does not wake the writer thread; only an urgent one does.

**Waking the callers.** An awaiting caller's future belongs to the event loop; setting it
from the writer thread costs one `call_soon_threadsafe` (a write to the loop's self-pipe
and a wake-up) per write. The writer instead collects the outcomes of one commit and hands
them to the loop in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time

from gateway.outbox_rows import WriteOp


def due(commit_within_s: float) -> float:
    """A write's `due` (monotonic) when it may wait this long for others; 0: at once."""
    return time.monotonic() + commit_within_s if commit_within_s > 0 else 0.0


class WriteQueue:
    """The writes waiting for the writer thread. While a group waits for its `due` time
    the writer sleeps; only an urgent write (or closing) wakes it early, so writes that
    may wait cost the writer no wake-up each."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[WriteOp | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._waiting_for_due = False

    def put(self, op: WriteOp | None) -> None:
        self._queue.put(op)
        if self._waiting_for_due and (op is None or op.due == 0.0):
            self._wake.set()

    def gather(
        self, earliest: float, idle_until: float | None = None
    ) -> tuple[list[WriteOp], bool]:
        """The writes of the next commit, and whether the outbox is closing (a `None` was
        queued). Blocks for the first write, or until `idle_until` (monotonic; then none);
        commits no earlier than `earliest` (monotonic), and no later than the earliest
        `due` of the writes in it."""
        if idle_until is None:
            first = self._queue.get()
        else:
            try:
                first = self._queue.get(timeout=max(0.0, idle_until - time.monotonic()))
            except queue.Empty:
                return [], False
        if first is None:
            return [], True
        ops = [first]
        deadline = max(first.due, earliest)
        while True:
            # Announced before taking what is queued: an urgent write queued after that
            # finds the flag set and wakes us.
            self._waiting_for_due = deadline > earliest
            self._wake.clear()
            try:
                deadline, stop = self._take(ops, deadline, earliest)
                wait = deadline - time.monotonic()
                if stop or wait <= 0:
                    return ops, stop
                if self._waiting_for_due:
                    self._wake.wait(wait)
                else:
                    time.sleep(wait)  # commit pacing: nothing can make it sooner
            finally:
                self._waiting_for_due = False

    def _take(self, ops: list[WriteOp], deadline: float, earliest: float) -> tuple[float, bool]:
        """Move what is queued into `ops`; the group's deadline and whether closing."""
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return deadline, False
            if op is None:
                return deadline, True
            ops.append(op)
            deadline = min(deadline, max(op.due, earliest))

    def fail_queued(self, error: BaseException) -> None:
        """The writer is stopping: fail every write still queued."""
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            if op is not None:
                op.settle(error)


Outcome = tuple["asyncio.Future[None]", BaseException | None]


class LoopWakeups:
    """Outcomes of event-loop writes, collected on the writer thread during a commit and
    delivered to each loop in one call (`flush`, after the commit)."""

    def __init__(self) -> None:
        self._outcomes: list[Outcome] = []

    def done_for(self, future: asyncio.Future[None]) -> _Done:
        """The `done` of a write whose caller awaits `future` on its loop (one wake-up of
        the loop per commit, not per write)."""
        return _Done(self._outcomes, future)

    def flush(self) -> None:
        if not self._outcomes:
            return
        outcomes, self._outcomes[:] = list(self._outcomes), []
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, some in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, some)


class _Done:
    """A write's outcome, noted for the next `flush` (on the writer thread)."""

    __slots__ = ("future", "outcomes")

    def __init__(self, outcomes: list[Outcome], future: asyncio.Future[None]) -> None:
        self.outcomes, self.future = outcomes, future

    def __call__(self, error: BaseException | None) -> None:
        self.outcomes.append((self.future, error))


def _resolve(outcomes: list[Outcome]) -> None:
    """On the loop: wake every caller (one cancelled meanwhile is skipped)."""
    for future, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
