"""Which disturbance records of one relay are still to be fetched, and which were.

A record enters the queue when a directory (ASDU 23) lists it and it was not fetched
before; it leaves only when it has been stored and positively acknowledged. A failed
attempt keeps it queued and sets when to try again; after `MAX_ATTEMPTS` it is given up
(logged and counted). Records are fetched oldest first, one at a time.

Fetched records (fault number and fault time) are remembered in
`<state_dir>/iec103/<device>.json` when the agent has a state directory, so an agent
restart does not fetch again what it already stored. Without one they are remembered
for the life of the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from protocols.iec103.codec.asdu_disturbance import DisturbanceRecord
from protocols.iec103.codec.time import encode_cp56

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REMEMBERED = 256  # fetched records kept in the state file (relays keep far fewer)


def record_key(entry: DisturbanceRecord) -> str:
    """Fault number and fault time: a relay that wraps its fault numbers still differs."""
    return f"{entry.fault_number}@{encode_cp56(entry.time).hex()}"


@dataclass
class RecordQueue:
    device_id: str
    state_file: Path | None = None
    pending: dict[str, DisturbanceRecord] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    next_try: float = 0.0
    fetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fetched = self._load()

    def offer(self, entries: tuple[DisturbanceRecord, ...]) -> list[DisturbanceRecord]:
        """Queue the listed records not fetched yet; returns the ones new to the queue."""
        new: list[DisturbanceRecord] = []
        for entry in entries:
            key = record_key(entry)
            if key in self.fetched or key in self.pending:
                continue
            self.pending[key] = entry
            new.append(entry)
        return new

    def was_fetched(self, entry: DisturbanceRecord) -> bool:
        return record_key(entry) in self.fetched

    def due(self, now: float) -> DisturbanceRecord | None:
        if not self.pending or now < self.next_try:
            return None
        return next(iter(self.pending.values()))

    def done(self, entry: DisturbanceRecord) -> None:
        key = record_key(entry)
        self.pending.pop(key, None)
        self.attempts.pop(key, None)
        self.fetched = [*self.fetched, key][-REMEMBERED:]
        self._save()

    def failed(self, entry: DisturbanceRecord, now: float, retry_s: float) -> bool:
        """Count a failed attempt; False once the record is given up."""
        key = record_key(entry)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.next_try = now + retry_s
        if self.attempts[key] < MAX_ATTEMPTS:
            return True
        self.pending.pop(key, None)
        self.attempts.pop(key, None)
        return False

    def _load(self) -> list[str]:
        if self.state_file is None:
            return []
        try:
            data = json.loads(self.state_file.read_text())
            return [str(k) for k in data["fetched"]][-REMEMBERED:]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "device %s: %s unreadable (%s): records it lists may be fetched again",
                self.device_id,
                self.state_file,
                exc,
            )
            return []

    def _save(self) -> None:
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"fetched": self.fetched}))
            os.replace(tmp, self.state_file)
        except OSError as exc:
            log.warning("device %s: cannot write %s: %s", self.device_id, self.state_file, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
