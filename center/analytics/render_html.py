"""The report as one self-contained HTML page: inline CSS and SVG, no script, no link to
anything outside, so it prints and mails as it is."""

from __future__ import annotations

from html import escape
from typing import Any

from center.analytics.report import report_plots
from center.analytics.report_tables import Table, cell, report_tables

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; max-width: 1100px }
h1 { font-size: 1.6em } h2 { font-size: 1.2em; margin-top: 1.6em }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right }
th { background: #f3f3f3 } td:first-child, th:first-child { text-align: left }
.finding { background: #fff4e5; border-left: 4px solid #ff7f0e; padding: 0.5em 1em }
@media print { body { margin: 0 } h2 { page-break-after: avoid } }
"""


def table_html(t: Table) -> str:
    if not t.rows:
        return f"<h2>{escape(t.title)}</h2><p>None in this period.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for _, h in t.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell(r.get(k)))}</td>" for k, _ in t.columns) + "</tr>"
        for r in t.rows
    )
    return f"<h2>{escape(t.title)}</h2><table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any]) -> str:
    period = report["period"]
    svg = report_plots(report)
    worse = report["firmware"]["worse"]
    findings = (
        "".join(f'<p class="finding">{escape(w["sentence"])}</p>' for w in worse)
        or "<p>No firmware version fails significantly more than its model's fleet.</p>"
    )
    tables = {t.section: t for t in report_tables(report)}
    clock = report["statistics"]["clock"]["sites_standing_out"]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{escape(report['title'])}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(report['title'])}</h1>",
        f"<p>Period {escape(period['from'][:10])} to {escape(period['to'][:10])}; "
        f"generated {escape(report['generated_at'][:19])} UTC.</p>",
        table_html(tables["summary"]),
        "<h2>Trends per month</h2>",
        svg["monthly_tickets"],
        svg["monthly_rate"],
        table_html(tables["monthly"]),
        "<h2>Firmware that fails more than its model's fleet</h2>",
        findings,
        svg["firmware"] if worse else "",
        table_html(tables["firmware"]),
        "<h2>Root causes</h2>",
        svg["root_causes"],
        table_html(tables["root_causes"]),
        table_html(tables["recurring"]),
        table_html(tables["by_class"]),
        table_html(tables["mtbf_model"]),
        table_html(tables["mtbf_firmware"]),
        table_html(tables["response"]),
        "<h2>Clock quality</h2>",
        f"<p>Sites where most relay clocks are bad (no time source?): "
        f"{escape(', '.join(clock) or 'none')}.</p>",
        table_html(tables["clock"]),
        "</body></html>",
    ]
    return "\n".join(parts)
