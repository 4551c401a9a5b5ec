"""What the demo prints about tickets: one line when a ticket opens, one when what an
operator sees of it changes (state, devices, priority, occurrences), and one when a
disturbance record is attached to a ticket, with its fault analysis."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from center.disturbance.queries import list_records
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
        self.records_shown: set[int] = set()

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

    def records(self) -> list[str]:
        """Lines for disturbance records attached to a ticket since the last call."""
        with self.engine.connect() as conn:
            found = list_records(conn, limit=1000)
        lines = []
        for rec in sorted(found, key=lambda r: r["id"]):
            if rec["status"] != "complete" or rec["ticket_id"] is None:
                continue
            if rec["id"] not in self.records_shown:
                self.records_shown.add(rec["id"])
                lines.append(
                    f"record     {rec['device_id']} fault {rec['fault_number']} on ticket "
                    f"#{rec['ticket_id']}: {rec['analysis']['summary']}"
                )
        return lines
