"""/healthz and /metrics: no token (probe and scrape them over loopback)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import PlainTextResponse

from center import metrics as center_metrics
from center.api.context import ApiContext
from center.config import CenterConfig
from common.prometheus import CONTENT_TYPE


def health_problems(config: CenterConfig, state: dict[str, Any]) -> list[str]:
    """Why the center is not healthy, from its service status (empty: healthy)."""
    mqtt = state.get("mqtt")
    if mqtt is None or mqtt.get("subscribed"):
        return []
    error = f": {mqtt['last_error']}" if mqtt.get("last_error") else ""
    return [f"MQTT session to {config.mqtt.host}:{config.mqtt.port} is down{error}"]


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:

    @routes.get("/healthz", tags=["ops"])
    def healthz(response: Response) -> dict[str, Any]:
        """503 with the reasons while the center cannot do its job (its MQTT session is
        down: nothing arrives), so a load balancer or monitor sees it."""
        state = ctx.status()
        problems = health_problems(ctx.config, state)
        if problems:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"ok": not problems, "problems": problems, **state}

    @routes.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus exposition; no token, like /healthz (scrape it over loopback)."""
        mqtt = ctx.status().get("mqtt", {})
        text = ctx.read(center_metrics.page, ctx.counters, mqtt)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)
