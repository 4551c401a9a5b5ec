"""The changes to a ticket that signals, time and people all make: open one (or reopen the
last within the reopen window, or start a new episode after it), attach a signal to it
(members, severity, criticality, timeline, priority and title), release the children it
muted, and close it.

The ticket engine's decisions (`engine.py` for signals and time, `people.py` for people's
actions) are built on these, so every path changes a ticket the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from center.clock import Clock
from center.config import CenterConfig
from center.tickets import policy
from center.tickets.model import Signal, Ticket, TimelineEntry
from center.tickets.unit_of_work import UnitOfWork


class TicketTransitions:
    def __init__(self, config: CenterConfig, clock: Clock) -> None:
        self.config = config
        self.rules = config.tickets
        self.clock = clock
        self.static_windows = [
            policy.Window(m.site, m.device_id, m.starts_at, m.ends_at, m.reason)
            for m in config.maintenance
        ]

    def _in_maintenance(self, uow: UnitOfWork, site: str, device: str | None, at: datetime) -> bool:
        windows = [*self.static_windows, *uow.windows(site)]
        return policy.in_maintenance(windows, site, device, at)

    def _refresh(self, t: Ticket) -> None:
        t.priority = policy.priority(
            t.severity,
            t.criticality,
            t.occurrences,
            t.reopen_count,
            t.episode,
            fault_class=t.fault_class,
        )
        detail = "flapping" if t.flapping else ""
        t.title = policy.title(t.fault_class, t.site, t.members, detail)

    def _attach(self, uow: UnitOfWork, t: Ticket, sig: Signal, entry: str = "event") -> None:
        uow.add_member(t, sig.subject)
        if sig.raised and sig.mode != "context":
            t.severity = policy.worse_severity(t.severity, sig.severity)
            crit = self.config.criticality(sig.site, sig.device_id)
            t.criticality = policy.higher_criticality(t.criticality, crit)
        t.first_event_at = min(t.first_event_at, sig.at)
        t.last_event_at = max(t.last_event_at, sig.at)
        uow.note(t, TimelineEntry(sig.at, entry, sig.summary, sig.subject, sig.ref))
        self._refresh(t)

    def _new(self, sig: Signal, now: datetime, previous: Ticket | None) -> Ticket:
        region, point = self.config.routing.route(sig.site)
        t = Ticket(
            key=sig.key,
            site=sig.site,
            subject=sig.subject,
            device_id=sig.device_id,
            fault_class=sig.fault_class,
            kind="condition" if sig.mode == "condition" else "discrete",
            state="open",
            priority="P4",
            severity=sig.severity,
            criticality=self.config.criticality(sig.site, sig.device_id),
            region=region,
            service_point=point,
            title="",
            opened_at=now,
            updated_at=now,
            first_event_at=sig.at,
            last_event_at=sig.at,
            condition_active=sig.mode == "condition",
            members={sig.subject},
        )
        if previous is not None:
            t.episode = previous.episode + 1
            t.previous_ticket_id = previous.id
        self._refresh(t)
        return t

    def _open_or_recur(self, uow: UnitOfWork, sig: Signal, now: datetime) -> Ticket:
        last = uow.latest_ticket_for(sig.site, sig.subject, sig.fault_class)
        window = timedelta(seconds=self.rules.reopen_window_s)
        if (
            last is not None
            and last.state == "resolved"
            and last.resolved_at is not None
            and now - last.resolved_at <= window
        ):
            last.state = "open"
            last.reopen_count += 1
            last.occurrences += 1
            last.condition_active = sig.mode == "condition"
            last.clear_since = None
            last.acknowledged_at = last.acknowledged_by = None
            last.resolved_at = last.resolved_by = last.root_cause = None  # kept in the timeline
            uow.note(last, TimelineEntry(sig.at, "reopened", "recurred within the reopen window"))
            self._attach(uow, last, sig)
            uow.count("tickets_reopened")
            return last
        t = uow.add(self._new(sig, now, last if last is not None and not last.active else None))
        what = f"episode {t.episode} after ticket {t.previous_ticket_id}" if t.episode > 1 else ""
        uow.note(t, TimelineEntry(sig.at, "opened", what or "opened"))
        self._attach(uow, t, sig)
        uow.count("tickets_opened")
        return t

    def _release_children(self, uow: UnitOfWork, parent: Ticket, now: datetime) -> None:
        assert parent.id is not None
        for child in uow.children(parent.id):
            if child.muted and child.condition_active:
                child.muted = False
                uow.note(child, TimelineEntry(now, "unmuted", "site comms back; still lost"))
                uow.changed(child, "unmuted", notify_even_if_muted=True)

    def _close(
        self,
        uow: UnitOfWork,
        t: Ticket,
        by: str,
        now: datetime,
        *,
        root_cause: str | None,
        note: str | None,
    ) -> None:
        was_active = t.active
        t.state, t.closed_at, t.closed_by = "closed", now, by
        if root_cause is not None:
            t.root_cause = root_cause
        if note is not None:
            t.note = note
        if was_active and t.resolved_at is None:
            t.resolved_at, t.resolved_by = now, by
        uow.note(t, TimelineEntry(now, "closed", f"closed by {by}" + (f": {note}" if note else "")))
        if was_active:
            self._release_children(uow, t, now)
