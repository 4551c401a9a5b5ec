"""The web console: server-rendered pages (Jinja2) for the people who work the tickets,
served by `relay-center serve` on the API's port under `/` (docs/console.md).

Pages: queue, ticket (with its sequence-of-events chart, and the waveforms and fault
analysis of its disturbance records), fleet, statistics, device, gateways,
operations, admin. Charts are SVG drawn by the center (`charts.py`); the only script is
`static/console.js`, which refreshes the queue. Every asset is served from `static/`:
utility networks are offline, and the Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from center.web import (
    disturbance_panel,
    routes_admin,
    routes_analytics,
    routes_auth,
    routes_fleet,
    routes_ops,
    routes_tickets,
)
from center.web.app import HERE, Console, install


def mount(app: FastAPI, ctx: Any) -> Console:
    """Add the console's routes, static files, headers and error pages to the API app."""
    console = Console(ctx, ctx.tickets.tickets.clock)
    install(app, console)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (
        routes_auth,
        routes_tickets,
        routes_fleet,
        routes_analytics,
        routes_ops,
        routes_admin,
    ):
        app.include_router(module.router(console), include_in_schema=False)
    app.include_router(disturbance_panel.install(console), include_in_schema=False)
    return console
