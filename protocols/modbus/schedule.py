"""When a poller's jobs are due: periods on one grid per interval, and shared wake-ups.

Every job's periods fall on whole multiples of its interval on the monotonic clock, so the
jobs of one interval are due at the same moments in the whole process, whichever unit
and link they poll: their reads go out together, their records share an outbox commit and
an MQTT message. A poller waits for its next due time on a `Ticker`, which keeps one
event-loop timer per moment however many pollers wait for it, where each poller's own
`asyncio.sleep` would set (and the loop sort in) one timer each.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass


@dataclass
class Job:
    name: str
    interval: float
    next_due: float = 0.0
    runs: int = 0
    overruns: int = 0

    def reschedule(self, now: float) -> int:
        """Next period; returns how many periods were missed (counted, never silent).

        A run off the grid (the first, or one made due early) is followed by the grid
        point nearest to one interval later: half an interval to one and a half later."""
        self.runs += 1
        period = self.interval
        self.next_due = round(self.next_due / period + 1) * period
        if self.next_due > now:
            return 0
        missed = int((now - self.next_due) // period) + 1
        self.overruns += missed
        self.next_due = round(self.next_due / period + missed) * period
        return missed


class Ticker:
    """Wake-ups at given moments (monotonic, the event loop's clock), one timer per
    moment: `await ticker.at(when)`. A waiter cancelled meanwhile is skipped."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[float, list[asyncio.Future[None]]] = {}

    def at(self, when: float) -> asyncio.Future[None]:
        woken: asyncio.Future[None] = self._loop.create_future()
        waiters = self._waiting.get(when)
        if waiters is None:
            waiters = self._waiting[when] = []
            self._loop.call_at(when, self._wake, when)
        waiters.append(woken)
        return woken

    def _wake(self, when: float) -> None:
        for woken in self._waiting.pop(when):
            if not woken.done():
                woken.set_result(None)


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def ticker() -> Ticker:
    """The running loop's ticker (one per loop, shared by every poller on it)."""
    loop = asyncio.get_running_loop()
    found = _TICKERS.get(loop)
    if found is None:
        found = _TICKERS[loop] = Ticker(loop)
    return found
