"""The REST API (FastAPI): tickets with timelines and actions, devices, events, inventory,
baselines, maintenance windows, sequence gaps, quarantine, analytics, disturbance records
and counters. Bearer-token auth from the config, each token with a role
(center/auth/roles.py: viewers read, operators act on tickets, engineers approve baselines,
admins manage maintenance windows). OpenAPI at /docs, /redoc and /openapi.json, with their
scripts and styles served from this process (a utility network has no internet, so a CDN
would leave the pages blank). Handlers are plain functions: FastAPI runs them in its
thread pool, so a database call never blocks the MQTT ingest loop.

- `context`: what the handlers share (config, database, ticket service, counters, audit).
- `auth`: bearer tokens and the role each route needs (`Actor`, `Operator`, ...).
- `limits`: limits on everything the API takes, and validation errors without echoed input.
- `app`: `create_app`, which assembles the areas below (and mounts the web console).
- one module per area, each with `add_routes(router, ctx)`: `health` (/healthz,
  /metrics), `tickets`, `fleet` (devices, gateways, inventory, events), `ops` (gaps,
  rejected, quarantine, stats), `maintenance`, `baselines` (firmware and settings),
  `analytics`, `disturbances`.
"""

from center.api.app import create_app
from center.api.context import API, ApiContext

__all__ = ["API", "ApiContext", "create_app"]
