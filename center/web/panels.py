"""Extra sections of the ticket page, registered by the features that own them.

The ticket page shows, under the sequence-of-events chart, a "Disturbance records" section.
What fills it is not the console's business: a feature that stores disturbance records
(waveforms, fault analysis) registers a `TicketPanel` here, and the page renders whatever
each panel returns for the ticket. Until one is registered the section says that no
records exist for the incident.

A panel is called inside the page's read transaction and returns HTML it has escaped
itself (a `markupsafe.Markup`, e.g. an SVG of the waveforms), or None when it has nothing
for this ticket. It must not use inline scripts or styles (the page's CSP forbids them);
static files it needs go under center/web/static/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy import Connection


@dataclass(frozen=True)
class TicketPanel:
    key: str  # a stable id (the section's HTML id)
    title: str
    render: Callable[[Connection, dict[str, Any]], Markup | None]  # (conn, ticket document)
    slot: str = "disturbance_records"


_panels: list[TicketPanel] = []


def register(panel: TicketPanel) -> None:
    """Add a panel (once per key: registering a key again replaces it)."""
    _panels[:] = [p for p in _panels if p.key != panel.key] + [panel]


def unregister(key: str) -> None:
    _panels[:] = [p for p in _panels if p.key != key]


def render_slot(
    slot: str, conn: Connection, ticket: dict[str, Any]
) -> list[tuple[TicketPanel, Markup]]:
    out = []
    for panel in _panels:
        if panel.slot == slot and (html := panel.render(conn, ticket)) is not None:
            out.append((panel, html))
    return out
