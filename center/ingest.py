"""From MQTT messages to stored records and ticket decisions, one transaction per batch.

`check_message` (center/ingest_validation.py) takes a message apart record by record; it
never raises anything but `Rejected`. `Ingestor.ingest` stores the good records of a batch,
runs the ticket engine on the new records only, writes refused messages to
`rejected_messages` and records set apart to `quarantine`, and commits once. Only after
that commit may the caller PUBACK.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine

from center import gateway_silence, quarantine
from center.analytics.clock_tracker import ClockQualityTracker
from center.baselines.drift import DriftDetector
from center.clock import Clock
from center.device_time import DeviceClockCheck
from center.disturbance.intake import DisturbanceIntake
from center.ingest_validation import BadRecord, CheckedMessage, Ignored, Rejected, check_message
from center.store.db import lock_sites
from center.store.record_insert import InsertRace
from center.store.records import StoreResult, store_records
from center.store.ticket_repo import TicketUnitOfWork
from center.tickets.engine import TicketEngine
from center.tickets.model import Signal
from center.tickets.signals import lifecycle_signal, signal_for
from gateway import wire

log = logging.getLogger(__name__)

REJECT_REASONS = ("oversized", "malformed", "unknown_kind", "bad_topic", "topic_mismatch")


class Counters:
    """Process counters (thread-safe), exposed by the API and logged periodically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}
        self._latency: deque[tuple[str, float]] = deque(maxlen=2000)

    def add(self, name: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._values[name] = self._values.get(name, 0) + n

    def merge(self, values: dict[str, int]) -> None:
        for name, n in values.items():
            self.add(name, n)

    def latency(self, site: str, seconds: float) -> None:
        """Event time to the commit that opened its ticket."""
        with self._lock:
            self._latency.append((site, seconds))

    def latency_samples(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self._latency)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._values.items()))

    def latency_ms(self) -> dict[str, float]:
        with self._lock:
            samples = sorted(x for _, x in self._latency)
        if not samples:
            return {}

        def pct(p: float) -> float:
            return round(1000 * samples[min(len(samples) - 1, int(p * len(samples)))], 2)

        return {"count": len(samples), "p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)}


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    quarantined: int = 0
    tickets_changed: list[int] = field(default_factory=list)


class Ingestor:
    def __init__(
        self,
        engine: Engine,
        tickets: TicketEngine,
        clock: Clock,
        endpoints: list[str],
        counters: Counters | None = None,
    ) -> None:
        self.engine = engine
        self.tickets = tickets
        self.clock = clock
        self.endpoints = endpoints
        self.counters = counters or Counters()
        rules = tickets.rules
        self._discrete = frozenset(rules.discrete_alarm_codes)
        self._ignored = frozenset(rules.ignored_alarm_codes)
        self.drift = DriftDetector(tickets.config.lifecycle, tickets)
        self.clock_quality = ClockQualityTracker(tickets.config.analytics.clock, tickets)
        self.disturbances = DisturbanceIntake(tickets.config.disturbance, rules.grouping_window_s)
        self.device_clock = DeviceClockCheck(tickets.config.ingest)

    def check(
        self, batch: Sequence[Message]
    ) -> tuple[list[tuple[Message, CheckedMessage]], list[tuple[Message, Rejected]]]:
        accepted, rejected = [], []
        for m in batch:
            try:
                checked = check_message(m.topic, m.payload)
            except Ignored:
                continue
            except Rejected as exc:
                rejected.append((m, exc))
                continue
            if checked.records:
                judged = [self.device_clock.judge(r) for r in checked.records]
                checked.records = [r for r, _ in judged]
                checked.implausible_times = sum(flagged for _, flagged in judged)
            accepted.append((m, checked))
        return accepted, rejected

    def ingest(self, batch: Sequence[Message]) -> BatchResult:
        """Store a batch in one transaction. Raises on a database error (nothing stored)."""
        accepted, rejected = self.check(batch)
        for attempt in range(5):
            try:
                return self._ingest(accepted, rejected)
            except InsertRace:
                if attempt == 4:
                    raise
                self.counters.add("insert_races")
        raise AssertionError("unreachable")

    def _ingest(
        self,
        accepted: list[tuple[Message, CheckedMessage]],
        rejected: list[tuple[Message, Rejected]],
    ) -> BatchResult:
        now = self.clock.now()
        out = BatchResult(rejected=len(rejected))
        self.disturbances.take_counts()  # a rolled-back attempt's counts are void
        set_apart: list[BadRecord] = []
        with self.engine.begin() as conn:
            if rejected:
                self._reject(conn, rejected, now)
            lock_sites(conn, {c.records[0].site for _, c in accepted if c.records})
            uow = TicketUnitOfWork(conn, now, self.endpoints)
            results = []
            for m, checked in accepted:
                records = checked.records
                # Chunks carry their manifest's id: staged by the intake, not stored as records.
                chunks = [r for r in records if isinstance(r, wire.DisturbanceChunk)]
                plain = [r for r in records if not isinstance(r, wire.DisturbanceChunk)]
                result = store_records(conn, plain, now, defer_writes=True)
                results.append(result)
                heard = gateway_silence.after_lifecycle(
                    conn, result.new_lifecycle, now, self.tickets.rules.silent_after_intervals
                )
                signals = self._signals(result) + heard
                uow.prefetch(signals, result.writes)  # the writes first, in one round trip
                for sig in signals:
                    self.tickets.on_signal(uow, sig)
                self.drift.on_records(conn, uow, result.new)
                self.disturbances.on_records(conn, uow, result.new, chunks, now)
                conflicts = [stored_conflict(checked, r) for r in result.conflicts]
                bad = checked.bad + conflicts
                quarantine.put(conn, quarantine.record_rows(m.topic, bad, now))
                set_apart.extend(bad)
            self.clock_quality.on_records(conn, uow, [r for x in results for r in x.new])
            changed = uow.flush()
        disturbance_counts = self.disturbances.take_counts()  # only once committed
        # Counted only once committed.
        for result in results:
            out.stored += len(result.new) + len(result.new_lifecycle)
            out.duplicates += result.duplicates
            self._log_gaps(result)
        out.duplicates += sum(x.duplicates for _, x in accepted)  # repeated within a message
        out.quarantined = len(set_apart)
        out.tickets_changed = [t.id for t in changed if t.id is not None]
        c = self.counters
        c.add("messages_accepted", len(accepted))
        c.add("records_stored", out.stored)
        c.add("records_duplicate", out.duplicates)
        c.add("device_time_implausible", sum(x.implausible_times for _, x in accepted))
        for item in set_apart:
            c.add(f"quarantined_{item.reason}")
        for _, exc in rejected:
            c.add(f"rejected_{exc.reason}")
        c.merge(uow.counters)
        c.merge(disturbance_counts)
        done = time.time()
        for t in changed:
            if t.revision == 1:  # opened in this transaction
                c.latency(t.site, max(0.0, done - t.first_event_at.timestamp()))
        return out

    def _signals(self, result: StoreResult) -> list[Signal]:
        sigs = []
        for r in result.new:
            sig = signal_for(r, self._discrete, self._ignored)
            if sig is not None:
                sigs.append(sig)
        for lc, current in result.new_lifecycle:
            if isinstance(lc, wire.Birth | wire.Death):
                sig = lifecycle_signal(lc, current)
                if sig is not None:
                    sigs.append(sig)
        return sigs

    def _log_gaps(self, result: StoreResult) -> None:
        for gateway_id, session, first, last in result.gaps_opened:
            log.warning(
                "gateway %s session %d: seq gap %d..%d (%d records missing so far)",
                gateway_id,
                session,
                first,
                last,
                last - first + 1,
            )
        self.counters.add("seq_gaps_opened", len(result.gaps_opened))
        self.counters.add("seq_gap_records_filled", result.seqs_filled)

    def _reject(
        self, conn: Connection, rejected: list[tuple[Message, Rejected]], now: datetime
    ) -> None:
        for m, exc in rejected:
            log.warning("rejected message on %r: %s", quarantine.safe_text(m.topic, 200), exc)
        rows = [
            quarantine.rejected_row(m.topic, m.payload, exc.reason, exc.detail, now)
            for m, exc in rejected
        ]
        quarantine.put_rejected(conn, rows)

    def quarantine_message(self, m: Message, error: str, reason: str = "store_error") -> None:
        """A message whose storage keeps failing (a bug, not the database): keep it whole
        for an operator, count it, and let the caller acknowledge it so that it cannot
        wedge ingest. The row holds bytes and escaped text: its content cannot fail it."""
        with self.engine.begin() as conn:
            row = quarantine.message_row(m.topic, m.payload, reason, error, self.clock.now())
            quarantine.put(conn, [row])
        self.counters.add(f"quarantined_{reason}")


def stored_conflict(checked: CheckedMessage, r: wire.Record) -> BadRecord:
    """A record whose id the store holds with other content, as a quarantine entry."""
    n = next(n for n, x in enumerate(checked.records) if x is r)
    return BadRecord(
        checked.positions[n],
        "conflict",
        f"record id {r.gateway_id}/{r.session}/{r.seq} is stored with different content",
        r.model_dump_json().encode(),
        r.gateway_id,
        r.session,
        r.seq,
    )
