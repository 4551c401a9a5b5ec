"""Event-log ring arithmetic and the persisted read position.

The position is the pointer value up to which records are delivered. It is saved only
after `sink.deliver` returned (the records are durable), so a crash between the two re-reads
a batch (a duplicate, harmless with stable ids) and never skips one (a gap).

Arithmetic, with M = `EventLog.modulus` and C = capacity:

- unread = (pointer - position) mod M. In count mode, more than C unread means the relay
  overwrote `unread - C` records we never read: they are lost, and we say so.
- a backwards jump (unread > M/2, count mode) is a cleared log or a reset counter.
- records can be overwritten *while* we read them: the pointer is read again afterwards and
  any slot the relay may have reused meanwhile is dropped and counted lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.modbus.profile import EventLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    """What to read: `count` records starting at pointer value `first` (slot = first % C)."""

    first: int
    count: int
    lost: int
    reset: bool
    unread: int  # records the relay holds that we have not delivered (before reading)


def pending(ring: EventLog, position: int, pointer: int) -> Pending:
    m, c = ring.modulus, ring.capacity
    unread = (pointer - position) % m
    if ring.pointer_kind == "count" and unread > m // 2:
        # The counter went backwards: the relay cleared its log or restarted its counter.
        have = min(pointer, c)
        return Pending((pointer - have) % m, have, 0, True, have)
    lost = max(0, unread - c)
    return Pending((position + lost) % m, unread - lost, lost, False, unread)


def overwritten_meanwhile(ring: EventLog, batch: Pending, pointer_after: int, pointer: int) -> int:
    """How many of the oldest records of `batch` the relay may have reused while we read."""
    moved = (pointer_after - pointer) % ring.modulus
    return max(0, min(batch.count, batch.count + moved - ring.capacity))


def slot_of(ring: EventLog, pointer_value: int) -> int:
    return pointer_value % ring.capacity


def initial_position(ring: EventLog, pointer: int, mode: str) -> int:
    """Where to start on first contact: everything the ring still holds, or from now on."""
    if mode == "new":
        return pointer
    if ring.pointer_kind == "write_index":
        # Unknown fill: read one whole lap starting at the pointer (oldest slot); blank
        # slots of a ring that never wrapped are skipped by the reader.
        return (pointer + 1) % ring.modulus if ring.capacity > 1 else pointer
    return (pointer - min(pointer, ring.capacity)) % ring.modulus


class PositionStore:
    """The read position of one device's event log, in a small JSON file (or memory).

    The file also records the ring's shape; if the profile changes it (capacity, pointer
    kind), the old position means nothing and is discarded with a warning.
    """

    def __init__(self, device_id: str, path: Path | None) -> None:
        self.device_id = device_id
        self.path = path
        self._memory: dict[str, Any] | None = None

    @staticmethod
    def _shape(ring: EventLog) -> str:
        return f"{ring.pointer_kind}/{ring.pointer_type}/{ring.capacity}/{ring.first_register}"

    def load(self, ring: EventLog) -> int | None:
        data = self._memory
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable event position %s: %s", self.device_id, self.path, exc)
                return None
        if not data:
            return None
        if data.get("shape") != self._shape(ring) or data.get("device") != self.device_id:
            log.warning(
                "%s: stored event position is for another ring (%s); starting afresh",
                self.device_id,
                data.get("shape"),
            )
            return None
        return int(data["position"])

    def save(self, ring: EventLog, position: int) -> None:
        data = {"device": self.device_id, "shape": self._shape(ring), "position": position}
        self._memory = data
        if self.path is not None:
            save_json(self.path, data)


def save_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace a small state file (write, fsync, rename, fsync the directory):
    after a crash it holds the old content or the new, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    with contextlib.suppress(OSError):  # some filesystems refuse directory fsync
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
