"""The daily ageing job: score every device, store the scores, and open `ageing` tickets
through the ticket engine (so routing, dedup, grouping and priority are the engine's).

A device gets onto an ageing ticket at most once per `period_days` (the last time it was
put on one is read from the tickets' timelines) and never while it is on an active one.
The engine groups the devices of one site into the site's active ageing ticket.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select

from center.analytics import runs
from center.analytics.ageing import AgeingScore, DeviceInput, FleetRate, WearFinding, score
from center.analytics.history import YEAR_S, DeviceFacts, load_devices
from center.store import schema as s
from center.store.db import as_utc, insert, lock_site
from center.store.ticket_repo import TicketUnitOfWork
from center.tickets.engine import TicketEngine
from center.tickets.model import ACTIVE, AGEING, Signal

log = logging.getLogger(__name__)
JOB = "ageing"


@dataclass
class AgeingRun:
    scored: int = 0
    above_threshold: int = 0
    put_on_tickets: list[str] = field(default_factory=list)  # site/device
    held_back: int = 0  # above the threshold, but on a ticket within the period
    tickets: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.scored} devices scored, {self.above_threshold} above the threshold, "
            f"{len(self.put_on_tickets)} put on {len(self.tickets)} ticket(s), "
            f"{self.held_back} already on one within the period"
        )


def recent_counts(
    conn: Connection, since: datetime, until: datetime
) -> dict[tuple[str, str], dict[str, int]]:
    """Raised self-checks, device alarms and device comms losses per device."""
    r = s.records.c
    kind = func.coalesce(r.signal, r.code)
    q = (
        select(r.site, r.device_id, kind, func.count())
        .where(
            r.event_time >= since,
            r.event_time < until,
            r.device_id.is_not(None),
            or_(
                and_(r.kind == "event", r.signal.in_(("self_check", "alarm")), r.value == "on"),
                and_(r.kind == "alarm", r.code == "comms_lost", r.value == "raised"),
            ),
        )
        .group_by(r.site, r.device_id, kind)
    )
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for site, device, what, n in conn.execute(q):
        out[(site, device)][what] = int(n)
    return out


def newest_wear(conn: Connection, points: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """The newest numeric value of each mapped wear counter per device: from its newest
    `measurement` record of that point, or from its newest `measurements` record (a whole
    poll, which carries every measurand of the device) when that is newer."""
    if not points:
        return {}
    r = s.records.c
    found: dict[tuple[str, str], dict[str, tuple[int, Any]]] = defaultdict(dict)
    newest = (
        select(func.max(r.id))
        .where(r.kind == "measurement", r.point.in_(points), r.device_id.is_not(None))
        .group_by(r.site, r.device_id, r.point)
    )
    for row_id, site, device, point, value in conn.execute(
        select(r.id, r.site, r.device_id, r.point, r.value).where(r.id.in_(newest))
    ):
        found[(site, device)][point] = (row_id, value)
    wanted = set(points)
    newest_sets = (
        select(func.max(r.id))
        .where(r.kind == "measurements", r.device_id.is_not(None))
        .group_by(r.site, r.device_id)
    )
    for row_id, site, device, body in conn.execute(
        select(r.id, r.site, r.device_id, r.body).where(r.id.in_(newest_sets))
    ):
        record = json.loads(body)
        names = record.get("points") or {}
        for address, value in (record.get("values") or {}).items():
            point = names.get(address, address)
            known = found[(site, device)].get(point)
            if point in wanted and (known is None or known[0] < row_id):
                found[(site, device)][point] = (row_id, value)
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for key, values in found.items():
        for point, (_, value) in values.items():
            try:
                out[key][point] = float(value)
            except (TypeError, ValueError):
                continue  # not a number: nothing to compare with its limit
    return out


def last_put_on_ticket(conn: Connection) -> tuple[dict[tuple[str, str], datetime], set[Any]]:
    """Per device, the last time it joined an ageing ticket; and those on an active one."""
    tl, t = s.timeline.c, s.tickets.c
    joined = conn.execute(
        select(t.site, tl.subject, func.max(tl.at))
        .join(s.tickets, t.id == tl.ticket_id)
        .where(t.fault_class == AGEING, tl.subject.is_not(None))
        .group_by(t.site, tl.subject)
    )
    last = {(site, subject): as_utc(at) or at for site, subject, at in joined}
    m = s.ticket_members.c
    active = {
        (site, subject)
        for site, subject in conn.execute(
            select(m.site, m.subject)
            .join(s.tickets, t.id == m.ticket_id)
            .where(m.fault_class == AGEING, t.state.in_(ACTIVE))
        )
    }
    return last, active


def device_inputs(
    devices: list[DeviceFacts],
    counts: dict[tuple[str, str], dict[str, int]],
    wear: dict[tuple[str, str], dict[str, float]],
    now: datetime,
    *,
    window_days: int,
    wear_limits: dict[str, tuple[float, str]],
) -> list[DeviceInput]:
    since = now - timedelta(days=window_days)
    out = []
    for dev in devices:
        found = wear.get(dev.key, {})
        out.append(
            DeviceInput(
                site=dev.site,
                device_id=dev.device_id,
                model=dev.model,
                age_years=max(0.0, (now - dev.commissioned).total_seconds() / YEAR_S),
                days_in_window=max(0.0, (now - max(since, dev.commissioned)).total_seconds())
                / 86_400,
                counts=counts.get(dev.key, {}),
                wear=[
                    WearFinding(point, wear_limits[point][1], value, wear_limits[point][0])
                    for point, value in sorted(found.items())
                ],
            )
        )
    return out


def fleet_rates(inputs: list[DeviceInput]) -> dict[tuple[str, str], FleetRate]:
    events: dict[tuple[str, str], int] = defaultdict(int)
    days: dict[str, float] = defaultdict(float)
    for d in inputs:
        days[d.model] += d.days_in_window
        for kind, n in d.counts.items():
            events[(d.model, kind)] += n
    kinds = ("self_check", "alarm", "comms_lost")
    return {(m, k): FleetRate(events[(m, k)], days[m]) for m in days for k in kinds}


def score_row(sc: AgeingScore, dev: DeviceFacts, now: datetime) -> dict[str, Any]:
    details = {
        "rates": [asdict(r) for r in sc.rates],
        "wear": [{**asdict(w), "share": round(w.share, 3)} for w in sc.wear],
        "opens_ticket": sc.opens_ticket,
        "priority": sc.priority,
    }
    return {
        "site": sc.site,
        "device_id": sc.device_id,
        "model": sc.model,
        "scored_at": now,
        "risk": sc.risk,
        "age_years": sc.age_years,
        "design_life_years": sc.design_life_years,
        "commissioned_at": dev.commissioned,
        "commissioned_from": dev.commissioned_from,
        "details": json.dumps(details),
        "explanation": sc.explanation,
    }


class AgeingJob:
    def __init__(self, engine: Engine, tickets: TicketEngine, endpoints: list[str]) -> None:
        self.engine = engine
        self.tickets = tickets
        self.config = tickets.config
        self.cfg = tickets.config.analytics.ageing
        self.endpoints = endpoints

    def score_all(self, conn: Connection, now: datetime) -> list[tuple[AgeingScore, DeviceFacts]]:
        cfg = self.cfg
        devices = load_devices(conn, self.config)
        counts = recent_counts(conn, now - timedelta(days=cfg.window_days), now)
        limits = {w.point: (w.limit, w.label or w.point.replace("_", " ")) for w in cfg.wear}
        wear = newest_wear(conn, sorted(limits))
        inputs = device_inputs(
            devices, counts, wear, now, window_days=cfg.window_days, wear_limits=limits
        )
        fleet = fleet_rates(inputs)
        return [(score(d, fleet, cfg), dev) for d, dev in zip(inputs, devices, strict=True)]

    def run(self, now: datetime | None = None) -> AgeingRun:
        """Score, store, and open or extend tickets, in one transaction."""
        now = now or self.tickets.clock.now()
        out = AgeingRun()
        with self.engine.begin() as conn:
            scored = self.score_all(conn, now)
            out.scored = len(scored)
            if scored:
                stmt = insert(s.ageing_scores, conn)
                cols = [c.name for c in s.ageing_scores.c if c.name not in ("site", "device_id")]
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["site", "device_id"],
                        set_={c: getattr(stmt.excluded, c) for c in cols},
                    ),
                    [score_row(sc, dev, now) for sc, dev in scored],
                )
            self._tickets(conn, [sc for sc, _ in scored if sc.opens_ticket], now, out)
            runs.finish(conn, JOB, now, out.summary())
        log.info("ageing job: %s", out.summary())
        return out

    def _tickets(
        self, conn: Connection, above: list[AgeingScore], now: datetime, out: AgeingRun
    ) -> None:
        out.above_threshold = len(above)
        last, active = last_put_on_ticket(conn)
        period = timedelta(days=self.cfg.period_days)
        due = []
        for sc in above:
            key = (sc.site, sc.device_id)
            if key in active or (key in last and now - last[key] < period):
                out.held_back += 1
            else:
                due.append(sc)
        uow = TicketUnitOfWork(conn, now, self.endpoints)
        d = s.devices.c
        gateways = {
            (site, device): gw
            for site, device, gw in conn.execute(select(d.site, d.device_id, d.gateway_id))
        }
        for site in sorted({sc.site for sc in due}):
            lock_site(conn, site)
            for sc in sorted((x for x in due if x.site == site), key=lambda x: -x.risk):
                self.tickets.on_signal(
                    uow, self.signal(sc, gateways.get((sc.site, sc.device_id), ""), now)
                )
                out.put_on_tickets.append(f"{sc.site}/{sc.device_id}")
        changed = uow.flush()
        out.tickets = sorted({t.id for t in changed if t.id is not None})

    def signal(self, sc: AgeingScore, gateway_id: str, now: datetime) -> Signal:
        return Signal(
            site=sc.site,
            subject=sc.device_id,
            device_id=sc.device_id,
            gateway_id=gateway_id,
            fault_class=AGEING,
            mode="discrete",
            raised=True,
            severity=sc.severity,
            at=now,
            summary=sc.explanation,
            grouped=True,
        )
