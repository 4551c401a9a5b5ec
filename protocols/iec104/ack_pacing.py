"""When the APDU guard tells the relay what is durable: every `w` frames, or soon after.

Why: confirming every group commit as soon as it returned kept a busy link in small steps.
With 20 relays each commit covered one or two frames of a relay, so the relay's window
moved by one or two, it sent its next frame alone, and each frame paid for its own
wake-ups of the guard, c104 and the writer: the agent settled at about 3,100 events/s and
355 µs of CPU per event. Confirming once `every` frames are durable (IEC 60870-5-104's w,
8 by default, as lib60870 does), or `delay_s` after the first durable frame the relay has
not heard of, lets a relay with a backlog send frames back to back, which the guard, c104
and the outbox then take in together (3,550/s and 310 µs on the same machine).

The rule is unchanged: nothing is confirmed that is not durable. Only when: a durable frame
is confirmed at most `delay_s` late, far inside the relay's t1 (15 s), and a relay whose
window k is below `every` waits `delay_s` for each confirmation instead of stalling.

`ReadGather` paces the other direction, the guard's reads of a bursting relay: interrupt
moderation, as a network card does. A relay sending 2,000 frames/s one by one woke the
guard's thread per frame (0.55 voluntary switches per event), and each frame paid alone
for the wake-up and its hand-on to the outbox; gathered, 0.23 (docs/performance.md).
While the relay is bursting the guard leaves its socket alone for `gather_s` after each
read, so the next read takes the frames that arrived meanwhile, and they are decoded and
submitted together. A frame that arrives alone is read at once; a burst's frames are
read at most `gather_s` late (4 ms, against the relay's t1 of 15 s and the 6 ms that
k = 12 frames last at 2,000/s), and confirmations are not delayed by it. 4 ms rather than
2: a relay at 2,000/s is then read once per w = 8 frames, each read one commit, instead of
twice (one link about 5 % less CPU per event in rounds interleaved with the order rotating,
and a quarter fewer voluntary switches of the guard's thread: docs/performance.md). Not while
as much has come again as a read took (`more`): a relay with a backlog sends its k frames
back to back and then waits, and holding the rest of its window for 4 ms halved its
drain rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

ACK_EVERY = 8  # frames: IEC 60870-5-104's w (lib60870's default), below k = 12
ACK_DELAY_S = 0.005  # at most this late for a durable frame the relay waits on
GATHER_S = 0.004  # a bursting relay's frames are read at most this late
SEQ_MOD = 32768  # sequence numbers N(S), N(R)


class AckPacer:
    """On the guard loop's thread only (the session's lock held)."""

    def __init__(
        self,
        every: int = ACK_EVERY,
        delay_s: float = ACK_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.delay_s = delay_s
        self._clock = clock
        self.due: float | None = None  # when the durable, unconfirmed frames must be confirmed
        self.asked_vr = 0  # the relay's next N(S) when a read last asked for a commit at once

    def now(self, confirmable: int) -> bool:
        """`confirmable` durable frames the relay has not heard of: confirm them now? If
        not, a deadline is set (once) for `expired`."""
        if confirmable >= self.every:
            return True
        if confirmable > 0 and self.due is None:
            self.due = self._clock() + self.delay_s
        return False

    def timeout(self) -> float | None:
        """For the guard's `select`: seconds until the deadline, None without one."""
        due = self.due
        return None if due is None else max(0.0, due - self._clock())

    def expired(self) -> bool:
        due = self.due
        return due is not None and self._clock() >= due

    def sent(self) -> None:
        """A confirmation went out: no deadline until the next durable frame."""
        self.due = None

    def commit_now(self, relay_vr: int, sent_nr: int) -> bool:
        """Should the frames of this read commit at once? Yes once `every` of the relay's
        frames wait for a confirmation (it stops at k) that no commit asked for at once is
        already bringing: counted from the last confirmation or the last read that asked,
        whichever is later. Otherwise they may wait to share a commit with others."""
        waiting = min((relay_vr - sent_nr) % SEQ_MOD, (relay_vr - self.asked_vr) % SEQ_MOD)
        if waiting < self.every:
            return False
        self.asked_vr = relay_vr
        return True


class ReadGather:
    """On the guard loop's thread only: after a read of a relay that is bursting, i.e. whose
    frames came within `gather_s` of when the guard was last ready to read it, leave the
    relay's socket alone for `gather_s` (`remaining`), so that the next read takes several
    frames. Not once `every` of its frames wait for a confirmation: the relay is about to
    stop at k, and holding the read back would only stall it (a relay sending back to
    back reads in groups anyway), nor when as much has come again while the read was
    handled (it sends back to back). The guard still serves c104 and the durable mark
    meanwhile: confirmations are not held back."""

    def __init__(
        self,
        every: int = ACK_EVERY,
        gather_s: float = GATHER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.gather_s = gather_s
        self._clock = clock
        self._ready = float("-inf")  # when the guard last was, or will be, ready to read

    def read(self, waiting: int, more: Callable[[], bool] = lambda: False) -> None:
        """A read of the relay brought frames for the link; `waiting` of the relay's frames
        now wait for a confirmation; `more()`: as much again has come meanwhile (the relay
        sends back to back, as one with a backlog does, and will stop at k: holding its
        frames back would only hold the relay). Asked last, only when the read would
        otherwise start a gather (a system call)."""
        now = self._clock()
        bursting = waiting < self.every and now - self._ready < self.gather_s and not more()
        self._ready = now + self.gather_s if bursting else now

    def remaining(self) -> float:
        """Seconds to leave the relay's socket alone; 0.0 to read it."""
        return max(0.0, self._ready - self._clock())


class DurableMark:
    """The durable watermark: every token up to `token` is durable. Raised from any thread
    (the outbox's writer), read on the guard loop's thread; the raiser then wakes that
    thread (`GuardLoop.notify`)."""

    def __init__(self) -> None:
        self.token = 0
        self._lock = threading.Lock()

    def raise_to(self, token: int) -> bool:
        """Whether the mark rose (a token at or below it changes nothing)."""
        with self._lock:
            if token <= self.token:
                return False
            self.token = token
            return True
