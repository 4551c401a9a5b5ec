"""What `TicketUnitOfWork.prefetch` asks the database about a message's signals, at once.

On PostgreSQL every question goes in one round trip, after the writes that must precede
it (center/store/together.py): the conditions of the signals' keys, the active tickets
of their sites' fault classes with their members, the maintenance windows of the sites
with raised signals, and for the subjects of raised signals the newest ticket each was
ever a member of (what an open asks, to reopen or link it). Elsewhere the writes and the
first three questions go one by one, and the newest tickets are asked when needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from center.store import schema as s
from center.store.db import is_postgres
from center.store.together import Write, execute_all, run_together
from center.tickets.model import ACTIVE

Rows = Sequence[Mapping[Any, Any]]
LatestKey = tuple[str, str, str]  # site, subject, fault class

_MEMBERS = "(SELECT array_agg(m.subject) FROM ticket_members m WHERE m.ticket_id = t.id)"
_CONDITIONS = "SELECT * FROM conditions WHERE key = ANY(%(keys)s::text[])"
_ACTIVE = (
    f"SELECT t.*, {_MEMBERS} AS members_ FROM tickets t WHERE t.site = ANY(%(sites)s::text[])"
    " AND t.fault_class = ANY(%(classes)s::text[]) AND t.state = ANY(%(states)s::text[])"
    " ORDER BY t.id"
)
_WINDOWS = "SELECT * FROM maintenance_windows WHERE site = ANY(%(sites)s::text[]) ORDER BY id"
# The newest ticket per (site, subject, class): what `latest_ticket_for` asks, one by one.
_LATEST = (
    "SELECT DISTINCT ON (k.site, k.subject, k.fault_class)"
    " k.site AS latest_site, k.subject AS latest_subject, k.fault_class AS latest_class,"
    f" t.*, {_MEMBERS} AS members_"
    " FROM ticket_members k JOIN tickets t ON t.id = k.ticket_id"
    " WHERE (k.site, k.subject, k.fault_class) IN"
    " (SELECT * FROM unnest(%(sites)s::text[], %(subjects)s::text[], %(classes)s::text[]))"
    " ORDER BY k.site, k.subject, k.fault_class, k.ticket_id DESC"
)


@dataclass(frozen=True)
class Questions:
    keys: list[str]  # conditions
    sites: list[str]  # active tickets: of these sites ...
    classes: list[str]  # ... and classes
    window_sites: list[str]
    latest: list[LatestKey]  # PostgreSQL only


@dataclass(frozen=True)
class Answers:
    conditions: Rows
    tickets: Rows
    windows: Rows
    latest: Rows | None  # None: not asked


def ask(conn: Connection, writes: Sequence[Write], q: Questions) -> Answers:
    """Make `writes`, then answer `q`."""
    if is_postgres(conn):
        asked = [
            (_CONDITIONS, {"keys": q.keys}),
            (_ACTIVE, {"sites": q.sites, "classes": q.classes, "states": list(ACTIVE)}),
            (_WINDOWS, {"sites": q.window_sites}),
            (
                _LATEST,
                {
                    "sites": [k[0] for k in q.latest],
                    "subjects": [k[1] for k in q.latest],
                    "classes": [k[2] for k in q.latest],
                },
            ),
        ]
        wanted = [bool(q.keys), bool(q.sites), bool(q.window_sites), bool(q.latest)]
        reads = [read for read, want in zip(asked, wanted, strict=True) if want]
        answers = iter(run_together(conn, writes, reads))
        got: list[Rows] = [next(answers) if want else [] for want in wanted]
        return Answers(got[0], got[1], got[2], got[3])
    execute_all(conn, writes)
    t, c, w = s.tickets.c, s.conditions.c, s.maintenance_windows.c
    queries = [
        select(s.conditions).where(c.key.in_(q.keys)),
        select(s.tickets)
        .where(t.site.in_(q.sites), t.fault_class.in_(q.classes), t.state.in_(ACTIVE))
        .order_by(t.id),
        select(s.maintenance_windows).where(w.site.in_(q.window_sites)).order_by(w.id),
    ]
    wanted = [bool(q.keys), bool(q.sites), bool(q.window_sites)]
    rows: list[Rows] = [
        conn.execute(query).mappings().all() if want else []
        for query, want in zip(queries, wanted, strict=True)
    ]
    return Answers(rows[0], rows[1], rows[2], None)
