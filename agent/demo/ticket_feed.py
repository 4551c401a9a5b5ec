"""What the demo prints about tickets: one line when a ticket opens, and one when what an
operator sees of it changes (state, devices, priority, occurrences)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from center.store.queries import TicketFilter, list_tickets

_WATCHED = ("state", "devices", "priority", "occurrences", "muted", "flapping")


def ticket_line(doc: dict[str, Any], verb: str) -> str:
    devices = ", ".join(doc["devices"]) or doc["subject"]
    muted = " (muted)" if doc["muted"] else ""
    return (
        f"ticket #{doc['id']:<3} {verb:<7} {doc['state']:<12} {doc['priority']}  "
        f"{doc['title']}{muted}  [{devices} -> {doc['service_point']}]"
    )


class TicketFeed:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: dict[int, tuple[Any, ...]] = {}
        self.latest: list[dict[str, Any]] = []

    def changes(self) -> list[str]:
        """Lines for tickets opened or changed since the last call, oldest first."""
        with self.engine.connect() as conn:
            self.latest = list_tickets(conn, TicketFilter(limit=1000))
        lines = []
        for doc in sorted(self.latest, key=lambda d: d["id"]):
            view = tuple(tuple(doc[k]) if isinstance(doc[k], list) else doc[k] for k in _WATCHED)
            before = self.seen.get(doc["id"])
            if before != view:
                lines.append(ticket_line(doc, "opened" if before is None else "changed"))
                self.seen[doc["id"]] = view
        return lines
