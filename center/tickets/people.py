"""What people do to tickets: acknowledge, note, resolve with a root cause, close.

Apart from the engine's automatic decisions (`engine.py`) because these are checked
requests from the API and the console: a wrong state or an unknown root cause is refused
with a `TicketActionError` that the caller shows, and nothing changes.
"""

from __future__ import annotations

from center.errors import TicketActionError
from center.tickets.model import Ticket, TimelineEntry
from center.tickets.transitions import TicketTransitions
from center.tickets.unit_of_work import UnitOfWork


class PeopleActions(TicketTransitions):
    def _person(self, uow: UnitOfWork, ticket_id: int) -> Ticket:
        t = uow.get(ticket_id)
        if t is None:
            raise TicketActionError(f"no ticket {ticket_id}")
        return t

    def _check_cause(self, root_cause: str | None) -> None:
        if root_cause is not None and root_cause not in self.rules.root_causes:
            raise TicketActionError(
                f"root_cause: expected one of {self.rules.root_causes} (found: {root_cause!r})"
            )

    def acknowledge(self, uow: UnitOfWork, ticket_id: int, by: str, note: str | None) -> Ticket:
        t = self._person(uow, ticket_id)
        if t.state != "open":
            raise TicketActionError(f"ticket {ticket_id} is {t.state}, not open")
        now = self.clock.now()
        t.state, t.acknowledged_at, t.acknowledged_by = "acknowledged", now, by
        uow.note(t, TimelineEntry(now, "acknowledged", note or f"acknowledged by {by}"))
        return t

    def add_note(self, uow: UnitOfWork, ticket_id: int, by: str, text: str) -> Ticket:
        """A person's note in the timeline, in any state (a closed ticket's findings too)."""
        t = self._person(uow, ticket_id)
        if not text.strip():
            raise TicketActionError("note: expected some text")
        uow.note(t, TimelineEntry(self.clock.now(), "note", f"{by}: {text.strip()}"))
        return t

    def resolve(
        self, uow: UnitOfWork, ticket_id: int, by: str, root_cause: str, note: str | None
    ) -> Ticket:
        t = self._person(uow, ticket_id)
        self._check_cause(root_cause)
        if not t.active:
            raise TicketActionError(f"ticket {ticket_id} is {t.state}, not open")
        now = self.clock.now()
        t.state, t.resolved_at, t.resolved_by = "resolved", now, by
        t.root_cause, t.note = root_cause, note
        uow.note(t, TimelineEntry(now, "resolved", f"resolved by {by}: {root_cause}"))
        self._release_children(uow, t, now)
        return t

    def close(
        self,
        uow: UnitOfWork,
        ticket_id: int,
        by: str,
        root_cause: str | None,
        note: str | None,
    ) -> Ticket:
        t = self._person(uow, ticket_id)
        self._check_cause(root_cause)
        if t.state == "closed":
            raise TicketActionError(f"ticket {ticket_id} is already closed")
        if t.kind == "discrete" and root_cause is None and t.root_cause is None:
            raise TicketActionError("root_cause: required to close a protection ticket")
        self._close(uow, t, by, self.clock.now(), root_cause=root_cause, note=note)
        return t
