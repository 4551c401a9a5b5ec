"""Recognise an event a relay sends again because the agent stored it but had not yet
acknowledged it when the agent died or the link dropped.

Every protocol can replay: an IEC 104 outstation resends the I-frames not confirmed
(lib60870 confirms every 8 frames or after t2), an IEC 103 relay its unconfirmed class-1
answer after a reset, a Modbus ring is read again from the last position saved. Storing
the replay again would give it a new record id, and the center would count the event
twice. So the pipeline keeps, per device, a short window of the spontaneous events it
committed (a hash of address, device time, value, quality and the protocol's extras) and
drops an observation already in it: still acknowledged to the relay, since it is durable
already. Answers to an interrogation are not filtered: each is a fresh report of a state.

Each new event's key is stored with its record, in the same commit (the outbox's recent
keys, gateway/outbox_keys.py, read back when the agent starts), and added to the window
in memory only once that commit succeeded: a commit that failed stored neither and
leaves the event unknown, so its resend is stored (never lost for being "seen"). An
event without a device time cannot be told from a new one with the same value, so it
always passes. The price: two events equal in all of the key within the window are one
event here (a contact changing three times within the relay's time resolution, 1 ms in
IEC 104); a bench that stamped a whole loop turn's events alike met it
(docs/performance.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Mapping, Sequence

from gateway import outbox_keys
from protocols.observations import PointObservation

# Enough for the frames a relay may send unacknowledged (IEC 104's k = 12 ASDUs) with
# several objects each: as many as the outbox keeps per device.
WINDOW = outbox_keys.KEPT

NewKeys = dict[str, list[str]]  # device id -> keys of this delivery, in order


def replay_key(obs: PointObservation) -> str | None:
    """The identity of a spontaneous event as the relay sent it; None for anything else:
    a state reported because someone asked (an interrogation) is a new report each time,
    even with the same time tag, and a measurement is no event."""
    text = replay_text(obs)
    return None if text is None else key_of(text)


def replay_text(obs: PointObservation) -> str | None:
    """What `replay_key` hashes (`agent/point_shapes.py` cuts it around the time)."""
    if obs.measurement or obs.device_time is None or obs.cause != "spontaneous":
        return None
    # The protocol's extras belong to the identity: two ring records of one Modbus relay
    # can share address, time (seconds) and value and differ only in their fields and slot.
    return "|".join((obs.address, obs.device_time.isoformat(), repr(obs.value),
                     ",".join(obs.quality), _details_text(obs.details)))  # fmt: skip


def key_of(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


_DETAILS_TEXT: dict[tuple[object, ...], str] = {}
_EXACT = frozenset({str, int, bool, type(None)})  # equal values, equal repr (given the type)


def _details_text(details: Mapping[str, object]) -> str:
    """`repr(sorted(details.items()))`, kept for the few detail sets a relay's points repeat
    (an IEC 104 point's type, address and time source) rather than made per event. Keyed
    with the values' types (1 == True) and only for types whose equal values print alike
    (not floats: 0.0 == -0.0)."""
    types = tuple(map(type, details.values()))
    if not _EXACT.issuperset(types):
        return repr(sorted(details.items()))
    key = (tuple(details.items()), types)
    text = _DETAILS_TEXT.get(key)
    if text is None:
        text = repr(sorted(details.items()))
        if len(_DETAILS_TEXT) >= 4096:
            _DETAILS_TEXT.clear()
        _DETAILS_TEXT[key] = text
    return text


class ReplayFilter:
    """Per device, the keys of the last `WINDOW` spontaneous events committed. On the hot
    path (one event per IEC 104 ASDU): the set of known keys is kept in step with the
    window (a count per key) rather than rebuilt per commit."""

    def __init__(self, saved: Mapping[str, Sequence[str]]) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, deque[str]] = {}
        self._known: dict[str, dict[str, int]] = {}  # key -> times in the window
        for device_id, keys in saved.items():
            # Only what `replay_key` makes can ever match: anything else read back (a row
            # not written by this code) is left out of the window.
            self._add(device_id, [k for k in keys if _plain(k)])

    def is_replay(self, device_id: str, key: str, new: NewKeys) -> bool:
        """Already committed, or already in this delivery; else noted in `new`."""
        pending = new.setdefault(device_id, [])
        with self._lock:
            seen = key in self._known.get(device_id, ())
        if seen or key in pending:
            return True
        pending.append(key)
        return False

    def committed(self, new: NewKeys) -> None:
        """The delivery's commit, which stored its keys with its records, succeeded. (One
        that failed stored neither: its events stay unknown, and a resend is stored.)"""
        with self._lock:
            for device_id, keys in new.items():
                self._add(device_id, keys)

    def _add(self, device_id: str, keys: Sequence[str]) -> None:
        recent = self._recent.get(device_id)
        if recent is None:
            recent = self._recent[device_id] = deque(maxlen=WINDOW)
            self._known[device_id] = {}
        known = self._known[device_id]
        for key in keys:
            if len(recent) == WINDOW:
                old = recent.popleft()
                if known[old] == 1:
                    del known[old]
                else:
                    known[old] -= 1
            recent.append(key)
            known[key] = known.get(key, 0) + 1


def _plain(key: str) -> bool:
    return key.isascii() and key.isalnum()
