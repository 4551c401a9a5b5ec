"""What the ticket engine needs from storage: the tickets, conditions and maintenance
windows of one transaction, and the changes to write when it ends.

The engine decides; a unit of work loads and records. The store implements this
(`center.store.ticket_repo.TicketUnitOfWork`, one database transaction); the engine
depends only on this protocol, so `center.tickets` imports nothing of `center.store`.
"""

from __future__ import annotations

from typing import Protocol

from center.tickets.model import Condition, Ticket, TimelineEntry
from center.tickets.policy import Window


class UnitOfWork(Protocol):
    # --- loading: each ticket is one object for the whole unit of work ----------------

    def get(self, ticket_id: int) -> Ticket | None: ...

    def active_tickets(self, site: str, fault_class: str) -> list[Ticket]:
        """The site's open or acknowledged tickets of this class."""
        ...

    def active_ticket_for(self, site: str, subject: str, fault_class: str) -> Ticket | None:
        """The active ticket of this class that `subject` is a member of."""
        ...

    def latest_ticket_for(self, site: str, subject: str, fault_class: str) -> Ticket | None:
        """The newest ticket of this class that `subject` was ever a member of."""
        ...

    def children(self, parent_id: int) -> list[Ticket]:
        """The active tickets muted under `parent_id`."""
        ...

    def windows(self, site: str) -> list[Window]:
        """The site's maintenance windows kept in storage (the configured ones apart)."""
        ...

    # --- conditions ------------------------------------------------------------------

    def condition(self, key: str) -> Condition | None: ...

    def save_condition(self, cond: Condition) -> None: ...

    # --- changes, written when the unit of work flushes -------------------------------

    def add(self, t: Ticket) -> Ticket:
        """Store a new ticket with its members; it gets its id."""
        ...

    def add_member(self, t: Ticket, subject: str) -> None: ...

    def changed(self, t: Ticket, change: str, notify_even_if_muted: bool = False) -> None:
        """Mark the ticket changed (a new revision and a notification at flush)."""
        ...

    def note(self, t: Ticket, entry: TimelineEntry) -> None:
        """Add a timeline entry; the ticket counts as changed by it."""
        ...

    def count(self, name: str) -> None:
        """Count a decision for the center's metrics."""
        ...
