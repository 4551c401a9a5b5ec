"""The report as PDF through fpdf2 (pure Python, maintained; the `report` extra installs
it): the same tables as the HTML, the same SVG charts drawn as vectors.

The PDF core fonts know Latin-1 only, so the few other characters the figures use are
spelled out rather than shipped with a font file.
"""

from __future__ import annotations

import io
import re
from typing import Any

from center.analytics.report import report_plots
from center.analytics.report_tables import Table, cell, report_tables

_SPELLED = {"×": "x", "≥": ">=", "≤": "<=", "…": "...", "−": "-", "–": "-", "—": "-"}


class MissingExtra(RuntimeError):
    """PDF output needs fpdf2: `pip install 'relay-service[report]'`."""


def latin1(text: str) -> str:
    for char, spelled in _SPELLED.items():
        text = text.replace(char, spelled)
    return text.encode("latin-1", "replace").decode("latin-1")


class _Writer:
    """Headings, paragraphs, charts and tables down an fpdf2 page."""

    def __init__(self, pdf: Any, font_face: Any) -> None:
        self.pdf = pdf
        self.font_face = font_face
        self.width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(self, text: str, size: int = 12) -> None:
        pdf = self.pdf
        pdf.set_font("Helvetica", "B", size)
        pdf.ln(2)
        pdf.multi_cell(self.width, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9)

    def para(self, text: str) -> None:
        self.pdf.set_font("Helvetica", "", 9)
        self.pdf.multi_cell(self.width, 5, latin1(text), new_x="LMARGIN", new_y="NEXT")

    def chart(self, svg: str) -> None:
        pdf = self.pdf
        if pdf.get_y() > pdf.h - 100:
            pdf.add_page()
        drawable = re.sub(r"<title>.*?</title>", "", svg)  # fpdf2 warns about <title>
        pdf.image(io.BytesIO(drawable.encode()), w=min(self.width, 200))

    def table(self, t: Table) -> None:
        self.heading(t.title, 11)
        if not t.rows:
            self.para("None in this period.")
            return
        self.pdf.set_font("Helvetica", "", 7)
        with self.pdf.table(
            text_align="LEFT", headings_style=self.font_face(emphasis="BOLD"), line_height=4
        ) as out:
            header = out.row()
            for _, h in t.columns:
                header.cell(latin1(h))
            for r in t.rows:
                row = out.row()
                for k, _ in t.columns:
                    row.cell(latin1(cell(r.get(k))))


def render_pdf(report: dict[str, Any]) -> bytes:
    try:
        from fpdf import FPDF
        from fpdf.fonts import FontFace
    except ModuleNotFoundError:
        raise MissingExtra(MissingExtra.__doc__) from None

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_title(report["title"])
    pdf.set_creator("relay-service center")
    pdf.add_page()
    out = _Writer(pdf, FontFace)
    heading, para, chart, table = out.heading, out.para, out.chart, out.table

    period = report["period"]
    heading(report["title"], 16)
    para(
        f"Period {period['from'][:10]} to {period['to'][:10]}; generated "
        f"{report['generated_at'][:19]} UTC."
    )
    tables = {t.section: t for t in report_tables(report)}
    svg = report_plots(report)
    table(tables["summary"])
    heading("Trends per month")
    chart(svg["monthly_tickets"])
    chart(svg["monthly_rate"])
    table(tables["monthly"])
    heading("Firmware that fails more than its model's fleet")
    worse = report["firmware"]["worse"]
    for w in worse:
        para(w["sentence"])
    if not worse:
        para("No firmware version fails significantly more than its model's fleet.")
    else:
        chart(svg["firmware"])
    table(tables["firmware"])
    heading("Root causes")
    chart(svg["root_causes"])
    for name in ("root_causes", "recurring", "by_class", "mtbf_model", "mtbf_firmware",
                 "response", "clock"):  # fmt: skip
        table(tables[name])
    return bytes(pdf.output())
