"""Charts as SVG strings: pure functions of the figures, no JavaScript, nothing fetched.

The same SVG goes inline into the HTML report, into the PDF (fpdf2 draws SVG) and, as
is, into the web console. Only the elements fpdf2 draws are used: rect, line, polyline,
circle and text with text-anchor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
FONT = 'font-family="Helvetica, Arial, sans-serif"'
W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 44, 46


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [round(i * step, 12) for i in range(math.ceil(top / step - 1e-9) + 1)]


def _label(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}" if v == int(v) else f"{v:.2g}"


def _frame(title: str, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img"><title>{escape(title)}</title>'
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>'
        f'<text x="{LEFT}" y="18" font-size="14" {FONT} fill="#222">{escape(title)}</text>'
    )
    return head + "".join(body) + "</svg>"


def _y_axis(ticks: list[float], y_of: Callable[[float], float], label: str) -> list[str]:
    out = []
    for v in ticks:
        y = y_of(v)
        out.append(
            f'<line x1="{LEFT}" y1="{_num(y)}" x2="{W - RIGHT}" y2="{_num(y)}" '
            f'stroke="#e5e5e5" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{_num(y + 4)}" font-size="10" text-anchor="end" {FONT} '
            f'fill="#555">{_label(v)}</text>'
        )
    out.append(
        f'<text x="{LEFT}" y="{TOP - 8}" font-size="10" {FONT} fill="#555">{escape(label)}</text>'
    )
    return out


def line_chart(
    title: str, x_labels: Sequence[str], series: dict[str, Sequence[float]], y_label: str = ""
) -> str:
    """One line per series over categorical x (months); a legend on the right."""
    n = max(len(x_labels), 1)
    top = max([max(v, default=0.0) for v in series.values()] or [0.0])
    ticks = nice_ticks(top)
    span_y = H - TOP - BOTTOM

    def x_of(i: int) -> float:
        return LEFT + (W - LEFT - RIGHT) * (i + 0.5) / n

    def y_of(v: float) -> float:
        return H - BOTTOM - span_y * v / ticks[-1]

    body = _y_axis(ticks, y_of, y_label)
    # Every `step`-th label, so that each (10 px type: about 6 px a character) keeps clear
    # of the next: a year's twelve months would otherwise run into each other.
    widest = max((len(label) for label in x_labels), default=0) * 6 + 4
    step = max(1, math.ceil(widest * n / (W - LEFT - RIGHT)))
    for i, label in enumerate(x_labels):
        if i % step == 0:
            body.append(
                f'<text x="{_num(x_of(i))}" y="{H - BOTTOM + 16}" font-size="10" '
                f'text-anchor="middle" {FONT} fill="#555">{escape(label)}</text>'
            )
    for k, (name, values) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{_num(x_of(i))},{_num(y_of(v))}" for i, v in enumerate(values))
        body.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, v in enumerate(values):
            body.append(
                f'<circle cx="{_num(x_of(i))}" cy="{_num(y_of(v))}" r="2.5" fill="{color}"/>'
            )
        ly = TOP + 14 * k + 6
        body.append(
            f'<rect x="{W - RIGHT + 12}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{W - RIGHT + 26}" y="{ly + 1}" font-size="10" {FONT} fill="#222">'
            f"{escape(name)}</text>"
        )
    body.append(
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#333"/>'
    )
    return _frame(title, body)


def bar_chart(title: str, items: Sequence[tuple[str, float]], x_label: str = "") -> str:
    """Horizontal bars, largest first as given; a reference line per bar is not drawn."""
    rows = list(items)[:12]
    left = 180
    top = max([v for _, v in rows] or [0.0])
    ticks = nice_ticks(top)
    height = min((H - TOP - BOTTOM) / max(len(rows), 1), 28.0)
    body = []
    for v in ticks:
        x = left + (W - left - 40) * v / ticks[-1]
        body.append(
            f'<line x1="{_num(x)}" y1="{TOP}" x2="{_num(x)}" y2="{H - BOTTOM}" '
            f'stroke="#e5e5e5"/><text x="{_num(x)}" y="{H - BOTTOM + 14}" font-size="10" '
            f'text-anchor="middle" {FONT} fill="#555">{_label(v)}</text>'
        )
    for i, (name, v) in enumerate(rows):
        y = TOP + i * height
        width = (W - left - 40) * v / ticks[-1]
        body.append(
            f'<rect x="{left}" y="{_num(y + 2)}" width="{_num(width)}" '
            f'height="{_num(max(height - 4, 1))}" fill="{PALETTE[0]}"/>'
            f'<text x="{left - 6}" y="{_num(y + height / 2 + 4)}" font-size="10" '
            f'text-anchor="end" {FONT} fill="#222">{escape(name[:32])}</text>'
            f'<text x="{_num(left + width + 4)}" y="{_num(y + height / 2 + 4)}" '
            f'font-size="10" {FONT} fill="#222">{_label(v)}</text>'
        )
    body.append(
        f'<text x="{left}" y="{H - 8}" font-size="10" {FONT} fill="#555">{escape(x_label)}</text>'
    )
    return _frame(title, body)


def offset_chart(title: str, samples: Sequence[tuple[float, float]], threshold_ms: float) -> str:
    """A relay's clock offsets (ms) over time, with the threshold band."""
    if not samples:
        return _frame(title, [f'<text x="{LEFT}" y="80" font-size="12" {FONT}>no readings</text>'])
    t0, t1 = samples[0][0], max(samples[-1][0], samples[0][0] + 1)
    top = max([abs(o) for _, o in samples] + [threshold_ms]) * 1.1
    span_y = (H - TOP - BOTTOM) / 2
    mid = TOP + span_y

    def x_of(t: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * (t - t0) / (t1 - t0)

    def y_of(v: float) -> float:
        return mid - span_y * v / top

    body = [f'<line x1="{LEFT}" y1="{_num(mid)}" x2="{W - RIGHT}" y2="{_num(mid)}" stroke="#333"/>']
    for v in (threshold_ms, -threshold_ms):
        body.append(
            f'<line x1="{LEFT}" y1="{_num(y_of(v))}" x2="{W - RIGHT}" y2="{_num(y_of(v))}" '
            f'stroke="{PALETTE[3]}" stroke-dasharray="4,3"/>'
            f'<text x="{W - RIGHT + 6}" y="{_num(y_of(v) + 4)}" font-size="10" {FONT} '
            f'fill="{PALETTE[3]}">{_label(v)} ms</text>'
        )
    body.extend(
        f'<circle cx="{_num(x_of(t))}" cy="{_num(y_of(o))}" r="2" fill="{PALETTE[0]}"/>'
        for t, o in samples
    )
    for t in (t0, t1):
        day = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        body.append(
            f'<text x="{_num(x_of(t))}" y="{H - BOTTOM + 16}" font-size="10" '
            f'text-anchor="middle" {FONT} fill="#555">{day}</text>'
        )
    return _frame(title, body)
