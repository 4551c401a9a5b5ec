"""The objects of one ASDU handed to the outbox together, without waiting for the commit.

c104 calls a point callback once per information object of an ASDU, on the connection's
receive thread, and lib60870 may acknowledge the I-frame once the last callback returned.
Storing each object on its own (`deliver_blocking` per callback) costs a commit round trip
per object, and a relay's receive thread waits for each: a 20-object ASDU took 20 commits.

The batcher holds the objects of the ASDU being received and hands them on in one call
when the last one arrives (its count, `number_of_objects`, is in every callback), with the
ASDU's key. The call does not wait for the commit: the link submits the objects to the
outbox and tells the APDU guard when the commit returned, and only then may the relay be
told the ASDU was received (guard.py). Two safety nets, for an object that never reaches a
callback: a different ASDU (another token from the APDU guard) flushes what is held first,
and the link's loop flushes anything held longer than `stale_after_s`. One lock serialises
the flushes, so the outbox gets objects in the order received.

An object the link consumes itself (the profile's identity and settings points) is added
as `None`: it counts towards the ASDU's completion but is not delivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from protocols.observations import PointObservation


class AsduBatcher:
    def __init__(
        self,
        deliver: Callable[[list[PointObservation], object], None],
        stale_after_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # (objects, the ASDU's key): called for every completed ASDU, also one whose objects
        # were all consumed (an empty list), so its key still reaches the outbox in order
        self._deliver = deliver
        self.stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._held: list[PointObservation] = []
        self._seen = 0  # objects of the current ASDU, delivered or consumed
        self._asdu: object = None
        self._since = 0.0
        self.asdus = 0  # ASDUs delivered, for counters
        self.stale_flushes = 0

    def add(self, obs: PointObservation | None, asdu: object, objects: int) -> None:
        """One information object (`None`: consumed, not delivered), on the receive
        thread; returns once what it completed was handed on. `asdu` identifies the ASDU
        that carried it (any object compared with `!=`: its bytes, the guard's token)."""
        with self._lock:
            if self._seen and asdu != self._asdu:
                self._flush()
            if not self._seen:
                self._since = self._clock()
                self._asdu = asdu
            self._seen += 1
            if obs is not None:
                self._held.append(obs)
            if self._seen >= max(objects, 1):
                self._flush()

    def stale(self) -> bool:
        return bool(self._seen) and self._clock() - self._since >= self.stale_after_s

    def flush_stale(self) -> None:
        """From a worker thread of the link's loop: deliver what waited too long."""
        with self._lock:
            if self._seen and self._clock() - self._since >= self.stale_after_s:
                self.stale_flushes += 1
                self._flush()

    def flush(self) -> None:
        with self._lock:
            if self._seen:
                self._flush()

    def _flush(self) -> None:
        held, asdu = self._held, self._asdu
        self._held, self._asdu, self._seen = [], None, 0
        if held:
            self.asdus += 1
        self._deliver(held, asdu)
