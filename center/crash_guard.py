"""Messages that were being stored when the center died, remembered across restarts.

An exception while storing a message is contained in-process (the message is quarantined).
A process that dies instead (killed by the OOM killer or the watchdog, a crash in a driver)
never acknowledged the message, so the broker hands it back on restart, and the center
would die on it again and again: ingest stops for the whole fleet.

So before each batch is stored, the digests of its messages are written to a small file
in the state directory, and removed once the batch is done. A file found at startup
names the messages that were in flight when the process died; each gets a strike. A
message with a strike is stored alone (so a second death names it exactly); one with
`max_strikes` strikes is quarantined without being stored (reason `crash_loop`) and
acknowledged. No fsync: what this protects against is a process dying, not the machine.
A state directory that cannot be written disables the guard (logged once); ingest goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from center.ingest import Message

log = logging.getLogger(__name__)


def digest(m: Message) -> str:
    return hashlib.sha256(m.topic.encode("utf-8", "surrogatepass") + b"\0" + m.payload).hexdigest()


class CrashGuard:
    def __init__(self, state_dir: Path, name: str, max_strikes: int = 2) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.in_flight_file = state_dir / f"ingest-in-flight-{safe}.json"
        self.strikes_file = state_dir / f"ingest-strikes-{safe}.json"
        self.max_strikes = max_strikes
        self.enabled = True
        self.strikes: dict[str, int] = {}
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.strikes = {k: int(v) for k, v in _load(self.strikes_file).items()}
            died_with = list(_load(self.in_flight_file).get("digests", []))
            for d in died_with:
                self.strikes[str(d)] = self.strikes.get(str(d), 0) + 1
            if died_with:
                log.warning("the last run died while storing %d message(s)", len(died_with))
            self._save_strikes()
            self.in_flight_file.unlink(missing_ok=True)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            self._disable(exc)

    def suspect(self, m: Message) -> int:
        """How many runs died while this message was in flight."""
        return self.strikes.get(digest(m), 0) if self.enabled else 0

    def begin(self, batch: Sequence[Message]) -> None:
        if self.enabled:
            self._write(self.in_flight_file, {"digests": [digest(m) for m in batch]})

    def abandon(self) -> None:
        """A batch left unfinished on purpose (a clean stop): not a death."""
        if self.enabled:
            try:
                self.in_flight_file.unlink(missing_ok=True)
            except OSError as exc:
                self._disable(exc)

    def done(self, batch: Sequence[Message]) -> None:
        """The batch is stored or quarantined: forget it, and its strikes."""
        self.abandon()
        if not self.enabled:
            return
        forgotten = [d for d in map(digest, batch) if self.strikes.pop(d, None) is not None]
        if forgotten:
            self._save_strikes()

    def _save_strikes(self) -> None:
        self._write(self.strikes_file, self.strikes)

    def _write(self, path: Path, doc: object) -> None:
        try:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, path)
        except OSError as exc:
            self._disable(exc)

    def _disable(self, exc: BaseException) -> None:
        if self.enabled:
            log.error("crash guard off: cannot keep its files in the state directory: %s", exc)
        self.enabled = False


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        log.warning("%s is unreadable; starting it afresh", path)
        return {}
    return doc if isinstance(doc, dict) else {}
