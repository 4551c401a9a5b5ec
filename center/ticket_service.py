"""Transactions around the ticket engine: the periodic tick and people's actions.

Here the store and the engine meet: each transaction opens a store unit of work
(`center.store.ticket_repo`) and hands it to the engine (`center.tickets`), which knows
only the `UnitOfWork` protocol. So this module sits above both, beside `center.ingest`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_

from center import gateway_silence
from center.disturbance import queries as disturbances
from center.errors import TicketNotFound
from center.ingest import Counters
from center.store import schema as s
from center.store.db import lock_site, try_lock_tick
from center.store.ticket_repo import TicketUnitOfWork
from center.store.ticket_rows import ticket_document
from center.tickets.engine import TicketEngine
from center.tickets.model import ACTIVE, Ticket


class TicketService:
    def __init__(
        self,
        engine: Engine,
        tickets: TicketEngine,
        endpoints: list[str],
        counters: Counters | None = None,
    ) -> None:
        self.engine = engine
        self.tickets = tickets
        self.endpoints = endpoints
        self.counters = counters or Counters()

    def tick(self) -> int:
        """Auto-resolve, auto-close, end flapping, open what maintenance held back, find
        silent gateways. Returns the number of tickets changed."""
        rules = self.tickets.rules
        now = self.tickets.clock.now()
        shortest_hold = min([rules.auto_resolve_after_s, *rules.auto_resolve_overrides.values()])

        t = s.tickets.c
        due_where = or_(
            and_(
                t.kind == "condition",
                t.state.in_(ACTIVE),
                t.condition_active.is_(False),
                t.flapping.is_(False),
                t.clear_since <= now - timedelta(seconds=shortest_hold),
            ),
            and_(
                t.state == "resolved",
                t.resolved_at <= now - timedelta(seconds=rules.reopen_window_s),
            ),
        )
        c = s.conditions.c
        cond_where = or_(c.flapping.is_(True), and_(c.suppressed.is_(True), c.active.is_(True)))
        with self.engine.begin() as conn:
            if not try_lock_tick(conn):
                return 0
            uow = TicketUnitOfWork(conn, now, self.endpoints)
            due = uow.find(due_where)
            conds = uow.conditions_where(cond_where)
            silent = gateway_silence.due(conn, now)
            sites = sorted(
                {x.site for x in due} | {x.site for x in conds} | {x.site for x in silent}
            )
            for site in sites:
                lock_site(conn, site)
                found = [x for x in silent if x.site == site]
                for sig in gateway_silence.mark_silent(
                    conn, found, now, rules.silent_after_intervals
                ):
                    uow.count("gateways_silent")
                    self.tickets.on_signal(uow, sig)
                self.tickets.tick(
                    uow,
                    [x for x in due if x.site == site],
                    [x for x in conds if x.site == site],
                )
            changed = uow.flush()
            swept = disturbances.sweep(conn, self.tickets.config.disturbance, now)
        self.counters.merge(uow.counters)
        self.counters.merge(swept)
        return len(changed)

    def act(self, ticket_id: int, action: Callable[[TicketUnitOfWork], Ticket]) -> dict[str, Any]:
        """Run a person's action in its own transaction; returns the ticket document."""
        with self.engine.begin() as conn:
            uow = TicketUnitOfWork(conn, self.tickets.clock.now(), self.endpoints)
            found = uow.get(ticket_id)
            if found is None:
                raise TicketNotFound(ticket_id)
            lock_site(conn, found.site)
            ticket = action(uow)
            uow.flush()
        return ticket_document(ticket)

    def acknowledge(self, ticket_id: int, by: str, note: str | None = None) -> dict[str, Any]:
        return self.act(ticket_id, lambda u: self.tickets.acknowledge(u, ticket_id, by, note))

    def add_note(self, ticket_id: int, by: str, text: str) -> dict[str, Any]:
        return self.act(ticket_id, lambda u: self.tickets.add_note(u, ticket_id, by, text))

    def resolve(
        self, ticket_id: int, by: str, root_cause: str, note: str | None = None
    ) -> dict[str, Any]:
        return self.act(
            ticket_id, lambda u: self.tickets.resolve(u, ticket_id, by, root_cause, note)
        )

    def close(
        self, ticket_id: int, by: str, root_cause: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        return self.act(ticket_id, lambda u: self.tickets.close(u, ticket_id, by, root_cause, note))
