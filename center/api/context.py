"""What every API handler shares: the config, the database, the ticket service, the ingest
counters and the service status, with the two things handlers do with them (read in a
connection, record an audited action)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from center.auth import audit
from center.config import CenterConfig
from center.ingest import Counters
from center.ticket_service import TicketService

API = "/api/v1"


@dataclass
class ApiContext:
    config: CenterConfig
    engine: Engine
    tickets: TicketService
    counters: Counters
    status: Callable[[], dict[str, Any]] = field(default=lambda: {})

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(conn, *args, **kwargs)` in a connection of its own."""
        with self.engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def audit(
        self, who: str, action: str, target: str, detail: str = "", ticket_id: int | None = None
    ) -> None:
        """Record an action taken with a token (center/auth/audit.py), with its role."""
        role = next((t.role for t in self.config.api.tokens if t.name == who), "?")
        with self.engine.begin() as conn:
            audit.record(
                conn, at=self.tickets.tickets.clock.now(), actor=who, role=role, via="api",
                action=action, target=target, detail=detail, ticket_id=ticket_id,
            )  # fmt: skip
