"""REST endpoints of the analytics, with the API's bearer-token auth. The web console
uses the same functions: statistics and report data as JSON, charts as SVG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from center.analytics import plots
from center.analytics.clock_sites import clock_rows
from center.analytics.incidents import StatsFilter
from center.analytics.queries import ageing_scores, device_clock
from center.analytics.render_csv import render_csv
from center.analytics.render_html import render_html
from center.analytics.render_pdf import MissingExtra, render_pdf
from center.analytics.report import improvement_report, report_plots
from center.analytics.stats import statistics
from center.api.auth import Actor
from center.api.context import API, ApiContext

PREFIX = f"{API}/analytics"
RENDER = {"html": render_html, "csv": render_csv}
# Module level: with postponed annotations FastAPI resolves names in module globals.
From = Annotated[datetime | None, Query(alias="from", description="default: a year before to")]
To = Annotated[datetime | None, Query(alias="to", description="default: now")]
MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
         "pdf": "application/pdf"}  # fmt: skip


def _period(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    try:  # year 0001 at +05:00, or a year before 0001-06-01, is no instant in UTC
        end = (
            (end or now).astimezone(UTC)
            if (end or now).tzinfo
            else (end or now).replace(tzinfo=UTC)
        )
        start = start or end - timedelta(days=365)
        start = start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)
    except OverflowError:
        raise HTTPException(422, "from and to must be times expressible in UTC") from None
    if end <= start:
        raise HTTPException(422, "to must be after from")  # starlette renamed its constant
    return start, end


def _now(ctx: ApiContext) -> datetime:
    return ctx.tickets.tickets.clock.now()


def _report(ctx: ApiContext, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    lo, hi = _period(start, end, _now(ctx))
    with ctx.engine.connect() as conn:
        return improvement_report(conn, ctx.config, lo, hi, _now(ctx))


def _rendered(fmt: str, data: dict[str, Any]) -> Response:
    try:
        body: str | bytes = render_pdf(data) if fmt == "pdf" else RENDER[fmt](data)
    except MissingExtra as exc:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED, str(exc)) from None
    return Response(body, media_type=MEDIA[fmt])


def add_routes(routes: APIRouter, ctx: ApiContext) -> None:
    config = ctx.config

    @routes.get(f"{PREFIX}/stats", tags=["analytics"])
    def stats(
        *,
        _: Actor,
        start: From = None,
        end: To = None,
        region: str | None = None,
        site: str | None = None,
        device_id: str | None = None,
        model: str | None = None,
        firmware_version: str | None = None,
        fault_class: str | None = None,
        root_cause: str | None = None,
        top: Annotated[int, Query(ge=1, le=1000)] = 10,
    ) -> dict[str, Any]:
        lo, hi = _period(start, end, _now(ctx))
        f = StatsFilter(lo, hi, region, site, device_id, model, firmware_version, fault_class,
                        root_cause)  # fmt: skip
        with ctx.engine.connect() as conn:
            return statistics(conn, config, f, top, _now(ctx))

    @routes.get(f"{PREFIX}/report", tags=["analytics"])
    def report_json(_: Actor, start: From = None, end: To = None) -> dict[str, Any]:
        return _report(ctx, start, end)

    @routes.get(f"{PREFIX}/report.{{fmt}}", tags=["analytics"])
    def report_file(fmt: str, _: Actor, start: From = None, end: To = None) -> Response:
        if fmt not in MEDIA:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no format {fmt}: html, csv or pdf")
        return _rendered(fmt, _report(ctx, start, end))

    @routes.get(f"{PREFIX}/plots/{{name}}.svg", tags=["analytics"])
    def report_plot(name: str, _: Actor, start: From = None, end: To = None) -> Response:
        charts = report_plots(_report(ctx, start, end))
        if name not in charts:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no chart {name}: {sorted(charts)}")
        return Response(charts[name], media_type="image/svg+xml")

    @routes.get(f"{PREFIX}/ageing", tags=["analytics"])
    def ageing(
        _: Actor,
        site: str | None = None,
        min_risk: float = 0.0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            return ageing_scores(conn, site, min_risk, limit)

    @routes.get(f"{PREFIX}/clock", tags=["analytics"])
    def clock(_: Actor, site: str | None = None) -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            return clock_rows(conn, site)

    @routes.get(f"{API}/devices/{{site}}/{{device_id}}/clock", tags=["analytics"])
    def one_clock(site: str, device_id: str, _: Actor) -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            doc = device_clock(conn, site, device_id)
        if doc is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no clock readings of {site}/{device_id}"
            )
        return doc

    @routes.get(f"{API}/devices/{{site}}/{{device_id}}/clock.svg", tags=["analytics"])
    def clock_chart(site: str, device_id: str, _: Actor) -> Response:
        doc = one_clock(site, device_id, _)
        svg = plots.offset_chart(
            f"Clock offset of {device_id} (device - gateway time, ms)",
            [(t, o) for t, o in doc["samples"]],
            config.analytics.clock.threshold_ms,
        )
        return Response(svg, media_type="image/svg+xml")
