"""IEC 104 links take turns to connect: at most `TURNS` connect and interrogate at once.

Why: when a gateway's relays drop together (a switch restarts, or the gateway stalls past
the relays' t1), every link's supervisor restarts it within about a second. With 200
relays that is 200 c104 clients started (three threads each), 200 connections opened and
200 general interrogations answered at once. In a soak with 200 relays on two busy cores
that storm aborted the agent inside c104 (`Potential Deadlock: mutex
Callback::callback_mutex waiting for lock > 100ms`: c104 throws when a thread waits over
100 ms for a callback, here behind the GIL). Taking turns spreads the storm over seconds;
a link holds its turn only until its first interrogation was answered (or it failed), so
a reconnect is delayed, never refused, and a link that is up holds nothing.

Per event loop (the agent has one; tests make one per test).
"""

from __future__ import annotations

import asyncio
import weakref

TURNS = 8  # links connecting at once: 200 relays reconnect in a few seconds

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class Turn:
    """One link's turn: `await take()`, then `give_back()` (idempotent) when connected,
    interrogated, or failed."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        semaphore = _turns.get(loop)
        if semaphore is None:
            semaphore = _turns[loop] = asyncio.Semaphore(TURNS)
        self._semaphore = semaphore
        self._held = False

    async def take(self) -> None:
        await self._semaphore.acquire()
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


def taken() -> int:
    """Turns of this loop's links now taken."""
    semaphore = _turns.get(asyncio.get_running_loop())
    return 0 if semaphore is None else TURNS - semaphore._value  # noqa: SLF001
