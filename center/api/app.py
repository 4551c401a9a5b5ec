"""`create_app`: the FastAPI application with every area's routes, in the order they match,
and the web console under / when it is enabled. Each area adds its routes to the app's
own router (`add_routes(app.router, ctx)`) rather than through `include_router`: FastAPI
keeps an included router nested, and `app.routes` would no longer list the routes
themselves (tests/center/test_api_hostile.py walks them all)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from center.api import (
    analytics,
    baselines,
    disturbances,
    fleet,
    health,
    limits,
    maintenance,
    ops,
    tickets,
)
from center.api.context import ApiContext

AREAS = (health, tickets, fleet, ops, maintenance, baselines, analytics, disturbances)


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPIOffline(
        title="Relay service center",
        version="1",
        description="Tickets, devices and events of the protection-relay fleet.",
    )
    app.state.tokens = [(t.name, t.token.encode(), t.role) for t in ctx.config.api.tokens]
    limits.install(app)
    for area in AREAS:  # on the app's own router: app.routes lists every route
        area.add_routes(app.router, ctx)
    if ctx.config.console.enabled:
        from center.web import mount  # the console (templates, static files): imports the API

        mount(app, ctx)
    return app
