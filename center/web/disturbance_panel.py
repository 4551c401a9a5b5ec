"""The ticket page's disturbance-records panel, and the COMTRADE download behind it.

For every record attached to the ticket: the fault analysis at a glance (fault type,
inception, clearing, trip, breaker; per phase the pre-fault and fault current, peak and
rise, the voltage and its dip) and the waveforms drawn by `waveform_chart`; then the
relays' own fault reports (Modbus register blocks, without waveforms). The zip is served
here under the console's session, since the REST API's route wants a bearer token that a
browser does not carry.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import Connection

from center.api.disturbances import zip_response
from center.disturbance import queries
from center.web import panels
from center.web.app import Console, PageError
from center.web.waveform_chart import waveform_chart
from gateway import comtrade

log = logging.getLogger(__name__)
PHASES = ("A", "B", "C")


@dataclass
class PhaseRow:
    phase: str
    faulted: bool
    current: dict[str, float] | None  # prefault_rms, fault_rms, fault_peak
    voltage: dict[str, Any] | None  # prefault_rms, fault_rms, dip_pct
    rise: float | None  # fault RMS / pre-fault RMS


@dataclass
class RecordView:
    meta: dict[str, Any]
    analysis: dict[str, Any]
    rows: list[PhaseRow] = field(default_factory=list)
    residual: dict[str, float] | None = None
    chart: Markup | None = None
    chart_problem: str = ""


def phase_rows(analysis: dict[str, Any]) -> list[PhaseRow]:
    """One row per phase with a current or a voltage in the analysis, A-B-C first."""
    currents, voltages = analysis.get("currents") or {}, analysis.get("voltages") or {}
    faulted = set(analysis.get("faulted_phases") or [])
    names = sorted(set(currents) | set(voltages), key=lambda p: (p not in PHASES, p))
    rows = []
    for p in names:
        c = currents.get(p)
        rise = c["fault_rms"] / c["prefault_rms"] if c and c["prefault_rms"] > 0 else None
        rows.append(PhaseRow(p, p in faulted, c, voltages.get(p), rise))
    return rows


class ChartCache:
    """The newest drawn charts. A complete record never changes, and reading a long one back
    and drawing it costs tens of milliseconds that every view of the ticket would repeat."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._charts: OrderedDict[tuple[Any, ...], tuple[Markup | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[Markup | None, str] | None:
        with self._lock:
            if key in self._charts:
                self._charts.move_to_end(key)
                return self._charts[key]
        return None

    def put(self, key: tuple[Any, ...], value: tuple[Markup | None, str]) -> None:
        with self._lock:
            self._charts[key] = value
            while len(self._charts) > self.size:
                self._charts.popitem(last=False)


def draw(
    conn: Connection, meta: dict[str, Any], analysis: dict[str, Any]
) -> tuple[Markup | None, str]:
    """(the waveform SVG, or None and why not)."""
    found = queries.files(conn, meta["id"])
    if found is None:
        return None, "The record's files are not stored."
    _, cfg, dat = found
    try:
        return waveform_chart(comtrade.read(cfg, dat), analysis), ""
    except comtrade.ComtradeError as exc:  # stored before a reader change: say so, keep the rest
        log.warning("disturbance record %s: cannot draw: %s", meta["id"], exc)
        return None, f"The waveforms cannot be drawn: {exc}"


def record_view(conn: Connection, meta: dict[str, Any], cache: ChartCache) -> RecordView:
    analysis = meta.pop("analysis", None) or {"summary": "not analysed", "faulted_phases": []}
    view = RecordView(meta, analysis, phase_rows(analysis), analysis.get("residual"))
    # Ids alone could be reused after retention deletes the newest record (SQLite).
    key = (meta["id"], meta["gateway_id"], meta["session"], meta["seq"], meta["size"])
    drawn = cache.get(key)
    if drawn is None:
        drawn = draw(conn, meta, analysis)
        cache.put(key, drawn)
    view.chart, view.chart_problem = drawn
    return view


def install(console: Console) -> APIRouter:
    """Register the panel on the ticket page; the router serves the zip."""
    template = console.templates.get_template("disturbance_panel.html")
    cache = ChartCache()

    def render(conn: Connection, ticket: dict[str, Any]) -> Markup | None:
        metas = list(reversed(queries.list_records(conn, ticket_id=ticket["id"])))
        reports = queries.reports_for_ticket(conn, ticket["id"])
        if not metas and not reports:
            return None
        records = [record_view(conn, m, cache) for m in metas]
        return Markup(template.render(records=records, reports=reports, site=ticket["site"]))

    panels.register(panels.TicketPanel("disturbance", "Fault analysis and waveforms", render))
    r = APIRouter()

    @r.get("/disturbances/{record_id}/comtrade.zip")
    def comtrade_zip(request: Request, record_id: int) -> Response:
        console.user(request)
        with console.engine.connect() as conn:
            found = queries.files(conn, record_id)
        if found is None:
            raise PageError(
                404, "No such record", f"There is no complete disturbance record {record_id}."
            )
        return zip_response(*found)

    return r
