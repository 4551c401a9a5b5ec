"""The fleet's history in the console: the Statistics page (filters kept in the URL, the
trend and root-cause charts, the devices that recur, response times, MTBF, clock quality
per site) with the printable improvement report behind it, and what the fleet and device
pages show of the analytics (ageing risk, a relay's clock quality and its offset chart).

Everything is read through center/analytics, the same functions the REST API and the
`relay-center report` command use, so the page, the API and the printed report agree.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import Connection

from center.analytics import plots
from center.analytics.incidents import StatsFilter
from center.analytics.queries import ageing_scores, device_clock
from center.analytics.render_html import CSS
from center.analytics.render_pdf import MissingExtra, render_pdf
from center.analytics.report import improvement_report, statistics_plots
from center.analytics.report_tables import Table, cell, statistics_tables
from center.analytics.stats import statistics
from center.api.analytics import MEDIA, RENDER
from center.baselines import inventory
from center.config import CenterConfig
from center.web.app import Console, PageError

FILTERS = ("region", "site", "device_id", "model", "firmware_version", "fault_class",
           "root_cause")  # fmt: skip
# Tables the page shows as they are; recurring devices and clocks get their own layout.
PLAIN_TABLES = ("by_class", "response", "mtbf_model", "mtbf_firmware", "root_causes", "monthly")
# The printable report carries its own stylesheet inline (it is mailed and printed as one
# file): the console allows that one stylesheet by its hash, and nothing else.
REPORT_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass
class Query:
    """The page's filter as the URL gives it: dates as typed, empty fields left out."""

    start: date
    end: date  # inclusive: the last day counted
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Any, today: date) -> Query:
        def day(key: str, default: date) -> date:
            text = (params.get(key) or "").strip()
            if not text:
                return default
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise PageError(
                    422, "Check the dates", f"{key} = {text!r} is not a date (YYYY-MM-DD)."
                ) from None

        end = day("to", today)
        start = day("from", end - timedelta(days=364))
        if end < start:
            raise PageError(422, "Check the dates", f"'to' ({end}) is before 'from' ({start}).")
        values = {k: v.strip() for k in FILTERS if (v := params.get(k) or "").strip()}
        return cls(start, end, values)

    def stats_filter(self) -> StatsFilter:
        lo = datetime.combine(self.start, time(), UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(), UTC)
        return StatsFilter(lo, hi, **self.values)

    def period(self) -> str:
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"


def table_cell(value: Any) -> str:
    return cell(value)


def risk_view(doc: dict[str, Any], threshold: float) -> dict[str, Any]:
    """An ageing score with what its bar needs: the share of the threshold it reaches."""
    share = min(doc["risk"] / threshold, 1.5) / 1.5  # the bar runs to 1.5 x the threshold
    return {**doc, "share": share, "over": doc["risk"] >= threshold}


def fleet_ageing(conn: Connection, config: CenterConfig) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest ageing score of every device, by (site, device)."""
    threshold = config.analytics.ageing.threshold
    return {
        (d["site"], d["device_id"]): risk_view(d, threshold)
        for d in ageing_scores(conn, limit=100_000)
    }


def device_analytics(
    conn: Connection, config: CenterConfig, site: str, device_id: str
) -> dict[str, Any]:
    """A device's ageing score and clock quality (with its offset chart), or None each."""
    threshold = config.analytics.ageing.threshold
    scores = ageing_scores(conn, site, limit=100_000)
    risk = next((d for d in scores if d["device_id"] == device_id), None)
    clock = device_clock(conn, site, device_id)
    chart = None
    if clock is not None:
        chart = Markup(
            plots.offset_chart(
                "Clock offset (device time - gateway time, ms)",
                [(t, o) for t, o in clock["samples"]],
                config.analytics.clock.threshold_ms,
            )
        )
    return {
        "risk": risk_view(risk, threshold) if risk else None,
        "clock": clock,
        "clock_chart": chart,
        "clock_threshold_ms": config.analytics.clock.threshold_ms,
    }


def _choices(conn: Connection, config: CenterConfig) -> dict[str, list[str]]:
    """What the filter fields suggest: the fleet's sites, devices, models, versions."""
    rows = inventory.fleet_report(conn)

    def distinct(key: str) -> list[str]:
        return sorted({str(r[key]) for r in rows if r.get(key)})

    return {
        "site": distinct("site"),
        "device_id": distinct("device_id"),
        "model": distinct("model"),
        "firmware_version": distinct("firmware_version"),
        "region": sorted({site.region for site in config.routing.sites.values()}),
        "root_cause": [*config.tickets.root_causes, "unassigned"],
    }


def router(console: Console) -> APIRouter:
    r = APIRouter()
    config = console.config

    @r.get("/statistics", response_class=HTMLResponse)
    def statistics_page(request: Request) -> HTMLResponse:
        console.user(request)
        q = Query.parse(request.query_params, console.now().date())
        with console.engine.connect() as conn:
            stats = statistics(
                conn, config, q.stats_filter(), config.analytics.report.top_devices,
                console.now(),
            )  # fmt: skip
            choices = _choices(conn, config)
        tables: dict[str, Table] = {t.section: t for t in statistics_tables(stats)}
        charts = {k: Markup(v) for k, v in statistics_plots(stats).items()}
        return console.render(
            request, "statistics.html", q=q, stats=stats, charts=charts,
            tables=[tables[k] for k in PLAIN_TABLES], cell=table_cell, choices=choices,
            classes=sorted({c["fault_class"] for c in stats["by_class"]}),
        )  # fmt: skip

    @r.get("/statistics/report.{fmt}")
    def report(request: Request, fmt: str) -> Response:
        console.user(request)
        if fmt not in MEDIA:
            raise PageError(
                404, "No such report", f"The report comes as html, pdf or csv, not {fmt!r}."
            )
        q = Query.parse(request.query_params, console.now().date())
        f = q.stats_filter()
        with console.engine.connect() as conn:
            data = improvement_report(conn, config, f.start, f.end, console.now())
        try:
            body: str | bytes = render_pdf(data) if fmt == "pdf" else RENDER[fmt](data)
        except MissingExtra as exc:
            raise PageError(501, "No PDF here", str(exc)) from None
        name = f"improvement-{q.start.isoformat()}-{q.end.isoformat()}.{fmt}"
        how = "inline" if fmt == "html" else "attachment"
        headers = {"Content-Disposition": f'{how}; filename="{name}"'}
        if fmt == "html":
            headers["Content-Security-Policy"] = REPORT_CSP
        return Response(body, media_type=MEDIA[fmt], headers=headers)

    return r
