"""Acknowledgement tracking for the simulated IEC 104 relay: the outstation's event buffer.

A real outstation keeps an event until the master acknowledges the I-frame that carried it
(the master's S- or I-frame N(R) confirms every I-frame with N(S) < N(R)); if the connection
dies first, the next master gets the event again. c104 2.2.1's server throws sent but
unconfirmed events away when a client drops, so the simulator tracks them itself:

- `queued(item, ...)` before `Point.transmit`: the event is handed to c104, not yet on the wire;
- `on_send_raw` sees the I-frame go out: matched to the oldest queued event of the same
  type id, IOA and CP56 time (spontaneous ASDUs only; answers to an interrogation are not
  events), it becomes in flight with that frame's N(S);
- `on_receive_raw` reads N(R) from every S- and I-frame the master sends and drops the events
  it confirms;
- a new connection (c104's `on_connect`, which runs in time, before the connection is
  accepted) or the relay seeing no open connection (`connection_lost()`) turns every queued
  and in-flight event into an orphan; the relay puts orphans back at the front of its
  backlog, in order. A master that stored an event but had not yet acknowledged it gets it
  again (duplicates are allowed; losses are not);
- an event c104 skipped (a later queued event went out first: it was lost with a dying
  connection's queue) is an orphan too.

Measured in c104 2.2.1: raw callbacks are not called in time but queued and run later, in
order, on one callback thread (a STARTDT con can reach the master before the callback for
its STARTDT act runs). So the raw stream is only ever compared with itself: N(S) from a sent
frame, N(R) from a later received one; after a new connection, the stream's frames are
ignored until that connection's STARTDT act comes through (sequence numbers restart with
each connection).

The callbacks run on c104's threads, the relay on asyncio's: one lock guards everything.

c104 reports raw frames without saying which connection they belong to, so this assumes one
master at a time (a relay's usual single-master port). With several masters transferring data
at once, one master's N(R) could confirm an event another master has not acknowledged, and
each new connection makes the relay send everything outstanding again.

This module must not use `from __future__ import annotations`: c104 checks callbacks by
their annotations, and string annotations fail that check.
"""

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import c104

log = logging.getLogger(__name__)

T = TypeVar("T")

MOD = 32768  # N(S)/N(R) are 15-bit
COT_SPONTANEOUS = 3
STARTDT_ACT = 0x07
# Type ids up to 29 carry no time tag; from 30 on (the *_TA/TB/TD/TF types we send) the
# information element ends with a 7-byte CP56Time2a.
FIRST_CP56_TYPE = 30

# (type id, IOA, CP56 fields without flags: ms of minute, minute, hour, day, month, year%100)
Key = tuple[int, int, tuple[int, int, int, int, int, int] | None]


def cp56_fields(at: datetime) -> tuple[int, int, int, int, int, int]:
    """The CP56Time2a fields c104 puts on the wire for an aware time (it sends UTC)."""
    utc = at.astimezone(UTC)
    ms = utc.second * 1000 + utc.microsecond // 1000
    return (ms, utc.minute, utc.hour, utc.day, utc.month, utc.year % 100)


def event_key(type_id: int, ioa: int, at: datetime) -> Key:
    return (type_id, ioa, cp56_fields(at) if type_id >= FIRST_CP56_TYPE else None)


def _decode_cp56(raw: bytes) -> tuple[int, int, int, int, int, int]:
    return (raw[0] | raw[1] << 8, raw[2] & 0x3F, raw[3] & 0x1F, raw[4] & 0x1F,
            raw[5] & 0x0F, raw[6] & 0x7F)  # fmt: skip


def split_apdus(data: bytes) -> list[bytes]:
    """The APDUs (start byte 0x68, length, 4 control octets, ASDU) in a raw buffer."""
    out = []
    i = 0
    while i + 6 <= len(data) and data[i] == 0x68:
        end = i + 2 + data[i + 1]
        out.append(data[i:end])
        i = end
    return out


def spontaneous_key(apdu: bytes) -> Key | None:
    """The match key of an I-frame carrying one spontaneous information object, else None.

    Assumes c104's server defaults: 2-octet cause, 2-octet common address, 3-octet IOA.
    """
    if len(apdu) < 6 + 9 or apdu[2] & 0x01:
        return None
    asdu = apdu[6:]
    type_id, vsq, cot = asdu[0], asdu[1], asdu[2] & 0x3F
    if cot != COT_SPONTANEOUS or vsq & 0x7F != 1:
        return None
    if type_id >= FIRST_CP56_TYPE and len(asdu) < 9 + 7:
        return None
    ioa = asdu[6] | asdu[7] << 8 | asdu[8] << 16
    when = _decode_cp56(asdu[-7:]) if type_id >= FIRST_CP56_TYPE else None
    return (type_id, ioa, when)


@dataclass
class _Queued(Generic[T]):
    item: T
    key: Key


class AckTracker(Generic[T]):
    """Events between `Point.transmit` and the master's acknowledgement. Thread-safe."""

    def __init__(self, relay_id: str = "") -> None:
        self.relay_id = relay_id
        self._lock = threading.Lock()
        self._queued: deque[_Queued[T]] = deque()  # handed to c104, not yet seen on the wire
        self._in_flight: deque[tuple[int, T]] = deque()  # (N(S), item), on the wire, unconfirmed
        self._orphans: list[T] = []  # to be sent again, oldest first
        # Between a new connection and its STARTDT act in the (late) raw stream, frames are
        # the old connection's: their N(S)/N(R) mean nothing any more.
        self._awaiting_startdt = False
        self.confirmed = 0
        self.requeued = 0

    # --- the relay's side (asyncio thread) ------------------------------------------------

    def queued(self, item: T, key: Key) -> None:
        """Call just before `transmit`: the I-frame may go out before `transmit` returns."""
        with self._lock:
            self._queued.append(_Queued(item, key))

    def cancel(self, item: T) -> None:
        """`transmit` refused `item`: forget it (the caller keeps it in its backlog)."""
        with self._lock:
            for entry in reversed(self._queued):
                if entry.item is item:
                    self._queued.remove(entry)
                    return
            # Already orphaned by a concurrent connection change: don't send it twice.
            self._orphans = [o for o in self._orphans if o is not item]

    def connection_lost(self) -> None:
        """No connection can acknowledge what is outstanding any more: re-send it."""
        with self._lock:
            self._orphan_all()

    def take_orphans(self) -> list[T]:
        """Events to put back at the front of the backlog, oldest first."""
        with self._lock:
            orphans, self._orphans = self._orphans, []
            return orphans

    @property
    def unconfirmed(self) -> int:
        with self._lock:
            return len(self._queued) + len(self._in_flight) + len(self._orphans)

    # --- c104's threads -------------------------------------------------------------------

    def new_connection(self) -> None:
        """A master connects (c104's `on_connect`, called before it is accepted, in time).

        Whatever is outstanding was handed to an older connection: with one master at a
        time, that one is gone, and its queue with it. Re-send it all; stale raw frames of
        the old connection still in c104's callback queue are ignored until the new
        connection's STARTDT act comes through.
        """
        with self._lock:
            self._orphan_all()
            self._awaiting_startdt = True

    def sent_frame(self, data: bytes) -> None:
        for apdu in split_apdus(data):
            key = spontaneous_key(apdu)
            if key is None:
                continue
            ns = (apdu[2] | apdu[3] << 8) >> 1
            with self._lock:
                if self._awaiting_startdt:
                    continue
                index = next((i for i, e in enumerate(self._queued) if e.key == key), None)
                if index is None:
                    log.debug("relay %s: untracked spontaneous frame %s", self.relay_id, key)
                    continue
                # c104 sends a connection's queue in order: older entries it skipped were
                # lost with a connection (or overwritten in a full queue). Send them again.
                skipped = [self._queued.popleft().item for _ in range(index)]
                if skipped:
                    self._requeue(skipped, "skipped by c104")
                self._in_flight.append((ns, self._queued.popleft().item))

    def received_frame(self, data: bytes) -> None:
        for apdu in split_apdus(data):
            if len(apdu) < 6:
                continue
            control = apdu[2]
            if control & 0x03 == 0x03:  # U-frame
                if control == STARTDT_ACT:
                    with self._lock:
                        self._awaiting_startdt = False
                continue
            # I-frame (bit 0 clear) or S-frame (0x01): both carry N(R).
            nr = (apdu[4] | apdu[5] << 8) >> 1
            with self._lock:
                if self._awaiting_startdt:
                    continue
                while self._in_flight and 0 < (nr - self._in_flight[0][0]) % MOD <= MOD // 2:
                    self._in_flight.popleft()
                    self.confirmed += 1

    def _orphan_all(self) -> None:
        outstanding = [item for _, item in self._in_flight] + [e.item for e in self._queued]
        self._in_flight.clear()
        self._queued.clear()
        if outstanding:
            self._requeue(outstanding, "unacknowledged")

    def _requeue(self, items: list[T], why: str) -> None:
        self.requeued += len(items)
        self._orphans.extend(items)
        log.info("relay %s: %d %s event(s) will be sent again", self.relay_id, len(items), why)


def register(server: c104.Server, tracker: AckTracker[T]) -> None:
    """Feed `server`'s raw frames to `tracker`.

    c104 leaks ~365 bytes per frame once raw callbacks are registered (upstream #77, see
    docs/domain.md): never do this in production code. A simulator's run is short, and ack
    tracking is the point of it; `SimLink.track_acks = false` turns it off for long soaks.
    """

    def on_send_raw(server: c104.Server, data: bytes) -> None:
        try:
            tracker.sent_frame(data)
        except Exception:
            log.exception("relay %s: bad outgoing frame %s", tracker.relay_id, data.hex())

    def on_receive_raw(server: c104.Server, data: bytes) -> None:
        try:
            tracker.received_frame(data)
        except Exception:
            log.exception("relay %s: bad incoming frame %s", tracker.relay_id, data.hex())

    def on_connect(server: c104.Server, ip: str) -> bool:
        tracker.new_connection()
        return True

    server.on_send_raw(callable=on_send_raw)
    server.on_receive_raw(callable=on_receive_raw)
    server.on_connect(callable=on_connect)
