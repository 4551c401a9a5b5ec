"""The ticket engine: what a signal, a person's action, or the passing of time does to tickets.

Decisions only. Storage is behind a `UnitOfWork` (center.tickets.unit_of_work, which the
store implements), time behind a `Clock`, the rules (priority, flapping, maintenance) in
center.tickets.policy. This module decides for signals and time; people's actions are in
center.tickets.people, and the changes every path makes to a ticket (open or reopen,
attach, close) in center.tickets.transitions.

Lifecycle: open -> acknowledged -> resolved -> closed.
- Discrete faults (trips, starts, discrete alarm codes) are resolved by a person with a
  root cause. Condition faults (comms, self-check, device alarms) resolve themselves once
  their clear has held for `auto_resolve_after_s`.
- A recurrence while resolved and within `reopen_window_s` reopens the ticket; a resolved
  ticket closes itself when the window has passed; a recurrence after close opens a new
  episode linked to the old ticket.
- Protection operations group across a site's devices: a trip or start within
  `grouping_window_s` of the last one joins the site's active protection ticket, and
  status events of its devices in that window join its timeline.
- A site comms loss (gateway death) inhibits device comms tickets of the site whose loss
  happened during it: they become muted children of the site ticket.
- Flapping (percent state change, hysteresis) keeps a condition ticket open through its
  clears, with one notification, until it calms down.
- Maintenance windows: signals still reach the store and existing tickets' timelines, but
  nothing opens or reopens; a condition still raised when the window ends opens then.
- A state reported because someone asked (a general interrogation after a connect or for a
  poll, a read) is not a change: it never opens, joins or extends an incident, moves no
  ticket time and counts no occurrence. It reconciles conditions only: a condition found
  other than the center knew it changes as if reported (opens, recurs, or starts its
  clear); one found as known touches nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from center.tickets import policy
from center.tickets.model import (
    COMMS,
    SITE_COMMS,
    Condition,
    Signal,
    Ticket,
    TimelineEntry,
)
from center.tickets.people import PeopleActions
from center.tickets.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class TicketEngine(PeopleActions):
    """Signals and the passing of time; people's actions come from `PeopleActions`, the
    changes all of them make to a ticket from `TicketTransitions`."""

    # --- signals ---------------------------------------------------------------------

    def on_signal(self, uow: UnitOfWork, sig: Signal) -> None:
        now = self.clock.now()
        if sig.asked and sig.mode != "condition":
            uow.count("asked_states_not_incidents")  # stored; no part of any incident
            return
        if sig.mode == "context":
            self._context(uow, sig)
        elif sig.mode == "discrete":
            self._discrete(uow, sig, now)
        else:
            self._condition(uow, sig, now)

    def _group_ticket(self, uow: UnitOfWork, sig: Signal) -> Ticket | None:
        """The site's active ticket of this class whose last event is within the window."""
        window = timedelta(seconds=self.rules.grouping_window_s)
        if sig.fault_class in policy.SITE_GROUPED_WHILE_ACTIVE:
            window = timedelta.max
        best = None
        for t in uow.active_tickets(sig.site, sig.fault_class):
            if abs(sig.at - t.last_event_at) <= window and (
                best is None or t.last_event_at > best.last_event_at
            ):
                best = t
        return best

    def _context(self, uow: UnitOfWork, sig: Signal) -> None:
        """Status events of a device already in the incident (its reclose, its breaker)
        join the timeline; the rest of the site's chatter does not."""
        t = self._group_ticket(uow, sig)
        if t is not None and sig.subject in t.members:
            self._attach(uow, t, sig)

    def _discrete(self, uow: UnitOfWork, sig: Signal, now: datetime) -> None:
        if sig.grouped:
            t = self._group_ticket(uow, sig)
            if t is not None:
                entry = "event" if sig.subject in t.members else "grouped"
                self._attach(uow, t, sig, entry)
                return
        t = uow.active_ticket_for(sig.site, sig.subject, sig.fault_class)
        if t is not None:
            if sig.raised:
                t.occurrences += 1
            self._attach(uow, t, sig)
            return
        if not sig.raised:
            return  # a clear with no ticket: it is in the store, nothing to track
        if self._in_maintenance(uow, sig.site, sig.device_id, sig.at):
            uow.count("suppressed_maintenance")
            return
        self._open_or_recur(uow, sig, now)

    def _condition(self, uow: UnitOfWork, sig: Signal, now: datetime) -> None:
        cond = uow.condition(sig.key) or Condition(
            key=sig.key,
            site=sig.site,
            subject=sig.subject,
            fault_class=sig.fault_class,
            active=False,
            changed_at=sig.at,
            severity=sig.severity,
            summary=sig.summary,
        )
        changed = cond.active != sig.raised
        if sig.asked and not changed and not cond.suppressed:
            return  # found as the center knew it: confirms, changes nothing
        if changed:
            cond.active = sig.raised
            cond.changed_at = sig.at
            cond.transitions = [*cond.transitions, sig.at][-self.rules.flap_history :]
        cond.severity, cond.summary = sig.severity, sig.summary
        was_flapping = cond.flapping
        cond.flapping = policy.is_flapping(
            was_flapping,
            policy.flap_percent(
                cond.transitions, now, self.rules.flap_history, self.rules.flap_window_s
            ),
            self.rules.flap_high_pct,
            self.rules.flap_low_pct,
        )
        t = uow.active_ticket_for(sig.site, sig.subject, sig.fault_class)
        if t is not None:
            self._attach(uow, t, sig)
            if changed:
                t.condition_active = sig.raised
                t.clear_since = None if sig.raised else min(sig.at, now)
                if sig.raised:
                    t.occurrences += 1
                    self._refresh(t)
        elif sig.raised and (changed or cond.suppressed):
            if self._in_maintenance(uow, sig.site, sig.device_id, sig.at):
                cond.suppressed = True
                uow.count("suppressed_maintenance")
            else:
                cond.suppressed = False
                t = self._open_condition(uow, sig, now)
        if not sig.raised:
            cond.suppressed = False
        if t is not None and t.flapping != cond.flapping:
            self._set_flapping(uow, t, cond.flapping, now)
        uow.save_condition(cond)

    def _open_condition(self, uow: UnitOfWork, sig: Signal, now: datetime) -> Ticket:
        parent = self._inhibitor(uow, sig)
        t = self._open_or_recur(uow, sig, now)
        if parent is not None and parent.id != t.id:
            self._mute(uow, t, parent, sig.at)
        if sig.fault_class == SITE_COMMS:
            for child in uow.active_tickets(sig.site, COMMS):
                if not child.muted and child.condition_active:
                    self._mute(uow, child, t, sig.at)
        return t

    def _inhibitor(self, uow: UnitOfWork, sig: Signal) -> Ticket | None:
        """The site comms ticket whose outage covers this device comms loss, if any."""
        if sig.fault_class != COMMS:
            return None
        for parent in uow.active_tickets(sig.site, SITE_COMMS):
            still_out = parent.condition_active or (
                parent.clear_since is not None and sig.at <= parent.clear_since
            )
            if parent.first_event_at <= sig.at and still_out:
                return parent
        return None

    def _mute(self, uow: UnitOfWork, child: Ticket, parent: Ticket, at: datetime) -> None:
        child.muted, child.parent_id = True, parent.id
        uow.note(child, TimelineEntry(at, "inhibited", f"muted by site ticket {parent.id}"))
        uow.note(
            parent,
            TimelineEntry(at, "child", f"{child.title} (ticket {child.id})", child.subject),
        )
        uow.count("tickets_inhibited")

    def _set_flapping(self, uow: UnitOfWork, t: Ticket, flapping: bool, now: datetime) -> None:
        t.flapping = flapping
        if not flapping and not t.condition_active:
            t.clear_since = max(t.clear_since or now, now)  # the clear must hold anew
        what = "flapping started" if flapping else "flapping stopped"
        uow.note(t, TimelineEntry(now, "flapping" if flapping else "flapping_stopped", what))
        uow.count("flapping_started" if flapping else "flapping_stopped")
        self._refresh(t)

    # --- time ------------------------------------------------------------------------

    def tick(self, uow: UnitOfWork, due: list[Ticket], conditions: list[Condition]) -> None:
        """What happens because time passed, for one site's candidate tickets (clearing or
        resolved) and its flapping or suppressed conditions."""
        now = self.clock.now()
        for t in due:
            if t.active:
                self._maybe_auto_resolve(uow, t, now)
            elif (
                t.state == "resolved"
                and t.resolved_at is not None
                and now - t.resolved_at >= timedelta(seconds=self.rules.reopen_window_s)
            ):
                self._close(uow, t, "auto", now, root_cause=None, note="reopen window passed")
        for cond in conditions:
            self._tick_condition(uow, cond, now)

    def _tick_condition(self, uow: UnitOfWork, cond: Condition, now: datetime) -> None:
        if cond.flapping:
            pct = policy.flap_percent(
                cond.transitions, now, self.rules.flap_history, self.rules.flap_window_s
            )
            if not policy.is_flapping(True, pct, self.rules.flap_high_pct, self.rules.flap_low_pct):
                cond.flapping = False
                uow.save_condition(cond)
                t = uow.active_ticket_for(cond.site, cond.subject, cond.fault_class)
                if t is not None:
                    self._set_flapping(uow, t, False, now)
        if cond.suppressed and cond.active:
            device = None if cond.subject.startswith("@") else cond.subject
            if not self._in_maintenance(uow, cond.site, device, now):
                sig = Signal(
                    site=cond.site,
                    subject=cond.subject,
                    device_id=device,
                    gateway_id="",
                    fault_class=cond.fault_class,
                    mode="condition",
                    raised=True,
                    severity=cond.severity,
                    at=now,
                    summary=f"still raised after maintenance: {cond.summary}",
                )
                cond.suppressed = False
                uow.save_condition(cond)
                if uow.active_ticket_for(cond.site, cond.subject, cond.fault_class) is None:
                    self._open_condition(uow, sig, now)

    def _maybe_auto_resolve(self, uow: UnitOfWork, t: Ticket, now: datetime) -> None:
        if t.kind != "condition" or t.condition_active or t.flapping or t.clear_since is None:
            return
        if now - t.clear_since < timedelta(seconds=self.rules.hold_for(t.fault_class)):
            return
        t.state, t.resolved_at, t.resolved_by = "resolved", now, "auto"
        uow.note(t, TimelineEntry(now, "resolved", "clear held; resolved automatically"))
        uow.count("tickets_auto_resolved")
        self._release_children(uow, t, now)

    def resolve_cleared(
        self,
        uow: UnitOfWork,
        sig: Signal,
        by: str,
        why: str,
        *,
        even_if_flapping: bool = False,
    ) -> Ticket | None:
        """Resolve the active ticket of a condition whose clear needs no hold: its cause is
        gone for good (a drift approved, or back at its baseline). Returns the ticket
        resolved, if any."""
        t = uow.active_ticket_for(sig.site, sig.subject, sig.fault_class)
        if t is None or t.kind != "condition" or t.condition_active:
            return None
        if t.flapping and not even_if_flapping:
            return None
        now = self.clock.now()
        t.state, t.resolved_at, t.resolved_by = "resolved", now, by
        t.note = why
        uow.note(t, TimelineEntry(now, "resolved", f"resolved by {by}: {why}"))
        uow.count("tickets_resolved_on_clear")
        self._release_children(uow, t, now)
        return t
