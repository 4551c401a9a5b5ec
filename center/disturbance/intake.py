"""Disturbance records in: manifests, chunks, reassembly, verification, analysis, tickets.

Runs inside the ingest transaction (so a chunk is committed before its PUBACK, and the
agent sends the next chunk only after that PUBACK: chunks arrive in order). A manifest
opens a `receiving` row; each chunk is staged; the last one is reassembled, checked
against the declared size and SHA-256, parsed as COMTRADE, analysed, and the files and
analysis are written in the same commit that removes the staged chunks. Anything wrong
refuses the record: its staged chunks go, its row keeps only metadata and the reason,
and a counter `disturbance_refused_<reason>` goes up. Nothing is ever half-written.

Fault reports (relays' own, e.g. Modbus register blocks) are stored as they come. Both
attach to the site's protection ticket whose events lie within the grouping window of
the record's time, now or when such a ticket's trip arrives later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from center.config import DisturbanceConfig
from center.device_time import event_time, record_time
from center.disturbance import orphans
from center.disturbance.analysis import analyse
from center.store import schema as s
from center.store.ticket_repo import TicketUnitOfWork
from center.tickets.model import PROTECTION, Ticket, TimelineEntry
from gateway import comtrade, wire

log = logging.getLogger(__name__)

REFUSAL_REASONS = (
    "oversized",
    "missing_chunk",
    "bad_hash",
    "unknown_record",
    "malformed",
    "incomplete",
)


class Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Analyser = Callable[[comtrade.Record], dict[str, Any]]


class DisturbanceIntake:
    def __init__(
        self, config: DisturbanceConfig, grouping_window_s: float, analyser: Analyser = analyse
    ) -> None:
        self.config = config
        self.analyser = analyser
        self.window = timedelta(seconds=grouping_window_s)
        self.counts: Counter[str] = Counter()  # merged into the center's counters on commit

    # --- per batch ---------------------------------------------------------------------

    def on_records(
        self,
        conn: Connection,
        uow: TicketUnitOfWork,
        new: Sequence[wire.Record],
        chunks: Sequence[wire.DisturbanceChunk],
        now: datetime,
    ) -> None:
        none_to_adopt = orphans.none_to_adopt(conn, new, self.window)
        for r in new:
            if isinstance(r, wire.DisturbanceRecord):
                self._manifest(conn, r, now)
            elif isinstance(r, wire.FaultReport):
                self._fault_report(conn, uow, r, now)
            elif orphans.adopting(r) and not none_to_adopt:
                self._adopt_orphans(conn, uow, r.site, event_time(r))
        for c in chunks:
            self._chunk(conn, uow, c, now)

    def take_counts(self) -> dict[str, int]:
        counts, self.counts = dict(self.counts), Counter()
        return counts

    # --- manifests and chunks ------------------------------------------------------------

    def _manifest(self, conn: Connection, m: wire.DisturbanceRecord, now: datetime) -> None:
        row: dict[str, Any] = {
            "gateway_id": m.gateway_id,
            "session": m.session,
            "seq": m.seq,
            "site": m.site,
            "device_id": m.device_id or "",
            "fault_number": m.fault_number,
            "trigger_time": m.trigger_time,
            "first_sample_time": m.first_sample_time,
            "sample_rate_hz": m.sample_rate_hz,
            "samples": m.samples,
            "duration_s": m.samples / m.sample_rate_hz,
            "channels": json.dumps({"analog": m.analog_channels, "digital": m.digital_channels}),
            "size": m.size,
            "cfg_bytes": m.cfg_bytes,
            "sha256": m.sha256,
            "chunks": m.chunks,
            "received_chunks": 0,
            "status": "receiving",
            "received_at": now,
            "updated_at": now,
        }
        if m.size > self.config.max_record_bytes:
            row.update(status="refused", failure=f"oversized: {m.size} bytes declared")
            self._count_refusal(
                "oversized", m.device_id, f"{m.size} > {self.config.max_record_bytes}"
            )
        conn.execute(insert(s.disturbance_records).values(row))
        self.counts["disturbance_manifests"] += 1

    def _chunk(
        self, conn: Connection, uow: TicketUnitOfWork, c: wire.DisturbanceChunk, now: datetime
    ) -> None:
        d = s.disturbance_records.c
        row = (
            conn.execute(
                select(
                    s.disturbance_records.c.id, d.status, d.chunks, d.received_chunks, d.size
                ).where(d.gateway_id == c.gateway_id, d.session == c.session, d.seq == c.seq)
            )
            .mappings()
            .first()
        )
        if row is None:
            self._count_refusal(
                "unknown_record", c.device_id, f"chunk {c.index} of {c.record_id}: no manifest"
            )
            return
        if row["status"] != "receiving" or c.index < row["received_chunks"]:
            self.counts["disturbance_chunks_duplicate"] += 1  # redelivery, or after a refusal
            return
        try:
            self._stage(conn, row, c)
        except Refused as exc:
            self._refuse(conn, row["id"], exc, c.device_id, now)
            return
        received = row["received_chunks"] + 1
        conn.execute(
            update(s.disturbance_records)
            .where(d.id == row["id"])
            .values(received_chunks=received, updated_at=now)
        )
        self.counts["disturbance_chunks"] += 1
        if received == row["chunks"]:
            try:
                self._complete(conn, uow, row["id"], now)
            except Refused as exc:
                self._refuse(conn, row["id"], exc, c.device_id, now)

    def _stage(self, conn: Connection, row: Any, c: wire.DisturbanceChunk) -> None:
        if c.index > row["received_chunks"]:
            raise Refused("missing_chunk", f"chunk {row['received_chunks']} never arrived")
        if c.index >= row["chunks"]:
            raise Refused("malformed", f"chunk {c.index} of {row['chunks']} declared")
        try:
            data = base64.b64decode(c.data, validate=True)
        except binascii.Error as exc:
            raise Refused("malformed", f"chunk {c.index}: not base64 ({exc})") from None
        staged = conn.execute(
            select(func.coalesce(func.sum(func.length(s.disturbance_chunks.c.data)), 0)).where(
                s.disturbance_chunks.c.record_id == row["id"]
            )
        ).scalar_one()
        if staged + len(data) > row["size"]:
            raise Refused("oversized", f"chunks exceed the declared {row['size']} bytes")
        conn.execute(
            insert(s.disturbance_chunks).values(record_id=row["id"], part=c.index, data=data)
        )

    def _complete(
        self, conn: Connection, uow: TicketUnitOfWork, record_id: int, now: datetime
    ) -> None:
        d, k = s.disturbance_records.c, s.disturbance_chunks.c
        meta = conn.execute(select(s.disturbance_records).where(d.id == record_id)).mappings().one()
        content = b"".join(
            r[0]
            for r in conn.execute(select(k.data).where(k.record_id == record_id).order_by(k.part))
        )
        if len(content) != meta["size"]:
            raise Refused("missing_chunk", f"{len(content)} of {meta['size']} bytes arrived")
        if hashlib.sha256(content).hexdigest() != meta["sha256"]:
            raise Refused("bad_hash", "SHA-256 of the content differs from the manifest's")
        cfg, dat = content[: meta["cfg_bytes"]], content[meta["cfg_bytes"] :]
        try:
            record = comtrade.read(cfg, dat)
        except comtrade.ComtradeError as exc:
            raise Refused("malformed", str(exc)) from None
        try:
            analysis = self.analyser(record)
        except Exception as exc:  # a fault in the analysis must not cost the record
            log.exception("disturbance record %d: analysis failed", record_id)
            self.counts["disturbance_analysis_failed"] += 1
            analysis = {"faulted_phases": [], "summary": f"analysis failed: {exc!r}"[:200]}
        conn.execute(delete(s.disturbance_chunks).where(k.record_id == record_id))
        conn.execute(
            update(s.disturbance_records)
            .where(d.id == record_id)
            .values(
                status="complete", cfg=cfg, dat=dat, analysis=json.dumps(analysis), updated_at=now
            )
        )
        self.counts["disturbance_records_complete"] += 1
        log.info(
            "disturbance record %s/%s fault %d complete: %s",
            meta["site"],
            meta["device_id"],
            meta["fault_number"],
            analysis["summary"],
        )
        ticket = self._ticket_for(uow, meta["site"], meta["trigger_time"])
        if ticket is not None:
            self._attach_record(conn, uow, ticket, record_id)

    def _refuse(
        self, conn: Connection, record_id: int, exc: Refused, device: str | None, now: datetime
    ) -> None:
        conn.execute(
            delete(s.disturbance_chunks).where(s.disturbance_chunks.c.record_id == record_id)
        )
        conn.execute(
            update(s.disturbance_records)
            .where(s.disturbance_records.c.id == record_id)
            .values(status="refused", failure=f"{exc.reason}: {exc.detail}", updated_at=now)
        )
        self._count_refusal(exc.reason, device, exc.detail)

    def _count_refusal(self, reason: str, device: str | None, detail: str) -> None:
        log.warning("disturbance record from %s refused (%s): %s", device, reason, detail)
        self.counts[f"disturbance_refused_{reason}"] += 1

    # --- fault reports -------------------------------------------------------------------

    def _fault_report(
        self, conn: Connection, uow: TicketUnitOfWork, r: wire.FaultReport, now: datetime
    ) -> None:
        report = r.model_dump(
            mode="json",
            include={
                "fault_type",
                "phases",
                "distance_km",
                "trip_time_ms",
                "currents_a",
                "details",
            },
        )
        pk = conn.execute(
            insert(s.fault_reports).values(
                gateway_id=r.gateway_id,
                session=r.session,
                seq=r.seq,
                site=r.site,
                device_id=r.device_id,
                fault_time=record_time(r),  # gateway time when fault_time is not believed
                received_at=now,
                report=json.dumps(report),
            )
        ).inserted_primary_key
        assert pk is not None
        self.counts["fault_reports"] += 1
        ticket = self._ticket_for(uow, r.site, record_time(r))
        if ticket is not None:
            self._attach_report(conn, uow, ticket, int(pk[0]))

    # --- tickets -------------------------------------------------------------------------

    def _ticket_for(self, uow: TicketUnitOfWork, site: str, at: datetime) -> Ticket | None:
        """The site's protection ticket whose events span `at`, give or take the window."""
        t = s.tickets.c
        found = uow.find(
            and_(
                t.site == site,
                t.fault_class == PROTECTION,
                t.first_event_at <= at + self.window,
                t.last_event_at >= at - self.window,
            )
        )
        return max(found, key=lambda x: x.first_event_at, default=None)

    def _attach_record(
        self, conn: Connection, uow: TicketUnitOfWork, ticket: Ticket, record_id: int
    ) -> None:
        d = s.disturbance_records.c
        conn.execute(
            update(s.disturbance_records).where(d.id == record_id).values(ticket_id=ticket.id)
        )
        row = conn.execute(select(s.disturbance_records).where(d.id == record_id)).mappings().one()
        summary = json.loads(row["analysis"])["summary"]
        what = f"disturbance record {row['fault_number']}: {summary}"
        _note(uow, ticket, row, at=row["trigger_time"], entry="disturbance", what=what)
        self.counts["disturbance_records_attached"] += 1

    def _attach_report(
        self, conn: Connection, uow: TicketUnitOfWork, ticket: Ticket, report_id: int
    ) -> None:
        f = s.fault_reports.c
        conn.execute(update(s.fault_reports).where(f.id == report_id).values(ticket_id=ticket.id))
        row = conn.execute(select(s.fault_reports).where(f.id == report_id)).mappings().one()
        what = f"fault report: {report_summary(json.loads(row['report']))}"
        _note(uow, ticket, row, at=row["fault_time"], entry="fault_report", what=what)
        self.counts["fault_reports_attached"] += 1

    def _adopt_orphans(
        self, conn: Connection, uow: TicketUnitOfWork, site: str, at: datetime
    ) -> None:
        """Records and reports that completed before their incident's trip arrived."""
        d, f = s.disturbance_records.c, s.fault_reports.c
        records = conn.execute(
            select(d.id, d.trigger_time).where(
                d.site == site,
                d.status == "complete",
                d.ticket_id.is_(None),
                d.trigger_time.between(at - self.window, at + self.window),
            )
        ).all()
        reports = conn.execute(
            select(f.id, f.fault_time).where(
                f.site == site,
                f.ticket_id.is_(None),
                f.fault_time.between(at - self.window, at + self.window),
            )
        ).all()
        if not records and not reports:
            return
        for record_id, when in records:
            ticket = self._ticket_for(uow, site, when)
            if ticket is not None:
                self._attach_record(conn, uow, ticket, record_id)
        for report_id, when in reports:
            ticket = self._ticket_for(uow, site, when)
            if ticket is not None:
                self._attach_report(conn, uow, ticket, report_id)


def report_summary(report: dict[str, Any]) -> str:
    parts = [report.get("fault_type") or "".join(report.get("phases") or []) or "fault"]
    if report.get("distance_km") is not None:
        parts.append(f"{report['distance_km']:.1f} km")
    if report.get("trip_time_ms") is not None:
        parts.append(f"trip {report['trip_time_ms']:.0f} ms")
    currents = report.get("currents_a") or {}
    if currents:
        parts.append(", ".join(f"I{p} {v:.0f} A" for p, v in sorted(currents.items())))
    return "; ".join(parts)


def _note(
    uow: TicketUnitOfWork, ticket: Ticket, row: Any, *, at: datetime, entry: str, what: str
) -> None:
    """A device's record or report attached to a ticket, on the ticket's timeline."""
    uow.note(
        ticket,
        TimelineEntry(
            at=at,
            entry=entry,
            summary=f"{row['device_id']}: {what}",
            subject=row["device_id"],
            ref=(row["gateway_id"], row["session"], row["seq"]),
        ),
    )
