"""Where `center/api.py` still imports the ticket service from: it is
`center.ticket_service`, above the engine and the store. Import it from there."""

from __future__ import annotations

from center.ticket_service import TicketService

__all__ = ["TicketService"]
