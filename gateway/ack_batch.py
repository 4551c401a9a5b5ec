"""The center's acknowledgements, gathered for a moment and removed from the outbox in one
write.

The center acknowledges each message it stored, and each acknowledgement's removal was a
write of its own: a counting and a deleting statement in the next commit, and a wake-up of
the event loop when it was done. On one IEC 104 link that is one per commit of about 11
events. Gathered for `ACK_BATCH_S`, consecutive ranges merge into one (the center
acknowledges messages in the order it stored them), so a tenth of a second of
acknowledgements is one range removed by one write.

Nothing waits on the removal but bookkeeping: a removed row was already stored by the
center, and a row not yet removed when the agent stops is sent again and stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence

from gateway.wire import AckRange

ACK_BATCH_S = 0.05  # acknowledgements gathered this long before their removal is queued

Remove = Callable[[Sequence[AckRange]], Awaitable[int]]  # returns the rows removed


def merged(ranges: Iterable[AckRange]) -> list[AckRange]:
    """The same records as fewer ranges: per session, overlapping or adjacent ranges
    become one."""
    out: list[AckRange] = []
    for r in sorted(ranges, key=lambda r: (r.session, r.first)):
        last = out[-1] if out else None
        if last is not None and last.session == r.session and r.first <= last.last + 1:
            if r.last > last.last:
                out[-1] = AckRange(session=r.session, first=last.first, last=r.last)
            continue
        out.append(r)
    return out


class AckBatch:
    """Ranges added within `within_s` of the first are removed together by `remove`;
    every adder awaits that removal and gets the rows the batch removed."""

    def __init__(self, remove: Remove, within_s: float = ACK_BATCH_S) -> None:
        self._remove = remove
        self.within_s = within_s
        self._ranges: list[AckRange] = []
        self._done: asyncio.Future[int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(self, ranges: Sequence[AckRange]) -> int:
        """Once the batch holding `ranges` is removed: the rows it removed."""
        self._ranges.extend(ranges)
        if self._done is None:
            loop = asyncio.get_running_loop()
            self._done = loop.create_future()
            loop.call_later(self.within_s, self._flush)
        return await asyncio.shield(self._done)  # an adder cancelled leaves the batch be

    def _flush(self) -> None:
        ranges, done = merged(self._ranges), self._done
        self._ranges, self._done = [], None
        assert done is not None
        task = asyncio.ensure_future(self._apply(ranges, done))
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, ranges: list[AckRange], done: asyncio.Future[int]) -> None:
        try:
            done.set_result(await self._remove(ranges))
        except Exception as exc:  # noqa: BLE001 - handed to every adder, as its own error
            done.set_exception(exc)
            done.exception()  # the adders get it; none left (cancelled) is no warning
        finally:
            if not done.done():  # the loop is stopping
                done.cancel()
