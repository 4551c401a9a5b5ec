"""SVG charts drawn by the center (pure functions, no I/O): the sequence-of-events chart of
a ticket, bar charts for the fleet's firmware versions and the ingest rate.

SVG rather than a charting library: nothing to download or build, nothing from a CDN, no
script (the Content-Security-Policy allows none inline), and the page is readable before
any JavaScript runs. Colours and shapes come from classes styled in console.css.

The sequence-of-events chart compresses long quiet gaps: a protection operation is tens of
milliseconds of starts and trips, then a reclose a second later. A linear axis would draw
the operation as one blob; here each quiet gap longer than `GAP_MS` is drawn `GAP_MS` wide
with a break mark that says how long it really was, so every millisecond inside the
operation keeps its true proportion.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

GAP_MS = 60.0  # a quiet gap longer than this is drawn this wide, with a break mark
LANE_H = 58
LABEL_W = 130
PLOT_W = 820
TOP = 14
AXIS_H = 34


@dataclass(frozen=True)
class Mark:
    """One event on a device's lane."""

    lane: str  # device id
    offset_ms: float  # from the incident's first event
    kind: str  # trip | start | breaker_failure | reclose | alarm | status
    raised: bool
    label: str  # the point's name
    title: str  # the tooltip: full description


def mark_kind(signal: str | None, point: str | None) -> str:
    """What a mark shows: the protection's own vocabulary, read from signal and point."""
    p = (point or "").lower()
    if "reclose" in p:
        return "reclose"
    if p.startswith("bf") or "breaker_fail" in p:
        return "breaker_failure"
    if signal in ("trip", "start"):
        return signal
    if signal in ("alarm", "self_check"):
        return "alarm"
    return "status"


class _Axis:
    """Offsets (ms) to x, linear within activity and compressed across quiet gaps."""

    def __init__(self, offsets: Sequence[float]) -> None:
        times = sorted(set(offsets)) or [0.0]
        self.times = times
        self.virtual = [0.0]
        self.breaks: list[tuple[float, float]] = []  # (virtual position, real gap ms)
        for a, b in itertools.pairwise(times):
            gap = b - a
            if gap > GAP_MS:
                self.breaks.append((self.virtual[-1] + GAP_MS / 2, gap))
            self.virtual.append(self.virtual[-1] + min(gap, GAP_MS))
        span = self.virtual[-1] or 1.0
        self.pad = span * 0.04 + 2
        self.scale = PLOT_W / (span + 2 * self.pad)

    def v(self, offset: float) -> float:
        """Virtual position of any offset (between two events: interpolated)."""
        i = bisect.bisect_right(self.times, offset) - 1
        if i < 0:
            return self.virtual[0] - (self.times[0] - offset)
        if i >= len(self.times) - 1:
            return self.virtual[-1] + (offset - self.times[-1])
        a, b = self.times[i], self.times[i + 1]
        va, vb = self.virtual[i], self.virtual[i + 1]
        return va + (offset - a) / (b - a) * (vb - va)

    def x(self, offset: float) -> float:
        return LABEL_W + (self.v(offset) + self.pad) * self.scale

    def x_virtual(self, virtual: float) -> float:
        return LABEL_W + (virtual + self.pad) * self.scale

    def ticks(self) -> list[float]:
        """Round offsets inside the linear stretches, at least ~70 px apart."""
        out: list[float] = []
        last_x = -1e9
        step_choices = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 60_000)
        step = next((s for s in step_choices if s * self.scale >= 70), step_choices[-1])
        segment_start = self.times[0]
        edges = [(a, b) for a, b in zip(self.times, self.times[1:], strict=False) if b - a > GAP_MS]
        stretches = []
        for a, b in edges:
            stretches.append((segment_start, a))
            segment_start = b
        stretches.append((segment_start, self.times[-1]))
        for lo, hi in stretches:
            candidates = [lo]
            t = (lo // step + 1) * step
            while t < hi:
                candidates.append(t)
                t += step
            for t in candidates:
                x = self.x(t)
                if x - last_x >= 70:
                    out.append(t)
                    last_x = x
        return out


def _shape(kind: str, raised: bool, x: float, y: float) -> str:
    state = "raised" if raised else "cleared"
    cls = f"mark mark-{kind} {state}"
    r = 7 if raised else 5
    if kind == "trip":
        pts = f"{x:.1f},{y - r - 1} {x + r + 1:.1f},{y} {x:.1f},{y + r + 1} {x - r - 1:.1f},{y}"
        return f'<polygon class="{cls}" points="{pts}"/>'
    if kind == "start":
        pts = f"{x:.1f},{y - r} {x + r:.1f},{y + r * 0.8:.1f} {x - r:.1f},{y + r * 0.8:.1f}"
        return f'<polygon class="{cls}" points="{pts}"/>'
    if kind == "breaker_failure":
        return f'<rect class="{cls}" x="{x - r:.1f}" y="{y - r}" width="{2 * r}" height="{2 * r}"/>'
    if kind == "reclose":
        return f'<circle class="{cls}" cx="{x:.1f}" cy="{y}" r="{r}"/>'
    small = 4 if raised else 3
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y}" r="{small}"/>'


def legend_icon(kind: str, raised: bool = True) -> Markup:
    """A mark as a tiny standalone SVG, for the legend next to the chart."""
    body = _shape(kind, raised, 9, 9)
    return Markup(
        f'<svg class="legend-icon" width="18" height="18" aria-hidden="true">{body}</svg>'
    )


def soe_chart(marks: Sequence[Mark], lanes: Sequence[str]) -> Markup:
    """One lane per device, one mark per event, x = milliseconds from the first event."""
    height = TOP + LANE_H * max(len(lanes), 1) + AXIS_H
    width = LABEL_W + PLOT_W + 10
    axis = _Axis([m.offset_ms for m in marks])
    parts = [
        f'<svg class="soe" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="sequence of events, {len(lanes)} devices, {len(marks)} events">'
    ]
    bottom = TOP + LANE_H * len(lanes)
    for i, lane in enumerate(lanes):
        y = TOP + LANE_H * i + LANE_H / 2
        parts.append(f'<g class="lane" data-lane="{escape(lane)}">')
        parts.append(
            f'<text class="lane-label" x="{LABEL_W - 10}" y="{y + 4:.0f}" '
            f'text-anchor="end">{escape(lane)}</text>'
        )
        parts.append(
            f'<line class="lane-line" x1="{LABEL_W}" y1="{y:.0f}" x2="{LABEL_W + PLOT_W}" '
            f'y2="{y:.0f}"/>'
        )
        above: list[float] = []  # x of the labels above the lane, then below it
        below: list[float] = []
        for m in (x for x in marks if x.lane == lane):
            x = axis.x(m.offset_ms)
            parts.append(
                f'<g class="event" data-x="{x:.1f}" data-ms="{m.offset_ms:g}">'
                f"<title>{escape(m.title)}</title>"
            )
            parts.append(_shape(m.kind, m.raised, x, y))
            parts.append("</g>")
            if not m.raised or m.kind == "status":
                continue
            for taken, dy in ((above, -12), (below, 22)):  # first free side, else none
                if all(abs(x - o) > 80 for o in taken):
                    parts.append(
                        f'<text class="mark-label" x="{x:.1f}" y="{y + dy:.0f}" '
                        f'text-anchor="middle">{escape(m.label)}</text>'
                    )
                    taken.append(x)
                    break
        parts.append("</g>")
    for virtual, gap in axis.breaks:
        x = axis.x_virtual(virtual)
        parts.append(
            f'<g class="gap"><line x1="{x - 3:.1f}" y1="{TOP}" x2="{x - 3:.1f}" y2="{bottom}"/>'
            f'<line x1="{x + 3:.1f}" y1="{TOP}" x2="{x + 3:.1f}" y2="{bottom}"/>'
            f'<text x="{x:.1f}" y="{bottom + 28}" text-anchor="middle">+{gap:,.0f} ms</text></g>'
        )
    parts.append(
        f'<line class="axis" x1="{LABEL_W}" y1="{bottom}" x2="{LABEL_W + PLOT_W}" y2="{bottom}"/>'
    )
    for t in axis.ticks():
        x = axis.x(t)
        parts.append(
            f'<g class="tick"><line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{t:,.0f} ms</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    css: str = ""  # extra class: approved, unapproved, no_baseline…
    title: str = ""


def bar_chart(bars: Sequence[Bar], unit: str = "", width: int = 640) -> Markup:
    """Horizontal bars, one per row, labelled, with the value at the end."""
    label_w, row_h = 230, 24
    height = row_h * len(bars) + 8
    top = max((b.value for b in bars), default=0) or 1
    span = width - label_w - 70
    parts = [
        f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="bar chart">'
    ]
    for i, b in enumerate(bars):
        y = 4 + i * row_h
        w = max(b.value / top * span, 1 if b.value else 0)
        parts.append(f"<g><title>{escape(b.title or f'{b.label}: {b.value:g} {unit}')}</title>")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(b.label)}</text>'
            f'<rect class="bar {escape(b.css)}" x="{label_w}" y="{y + 3}" width="{w:.1f}" '
            f'height="{row_h - 8}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{b.value:g} {escape(unit)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(values: Sequence[float], labels: Sequence[str], width: int = 980) -> Markup:
    """Vertical columns over time (oldest left), e.g. records per minute."""
    height, bottom = 140, 118
    n = max(len(values), 1)
    top = max(values, default=0) or 1
    col = width / n
    parts = [
        f'<svg class="columns" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="column chart">'
    ]
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        h = v / top * (bottom - 10)
        parts.append(
            f"<g><title>{escape(label)}: {v:g}</title>"
            f'<rect class="bar" x="{i * col + 1:.1f}" y="{bottom - h:.1f}" '
            f'width="{max(col - 2, 1):.1f}" height="{h:.1f}"/></g>'
        )
    parts.append(f'<line class="axis" x1="0" y1="{bottom}" x2="{width}" y2="{bottom}"/>')
    if labels:
        parts.append(f'<text x="0" y="{bottom + 16}">{escape(labels[0])}</text>')
        parts.append(
            f'<text x="{width}" y="{bottom + 16}" text-anchor="end">{escape(labels[-1])}</text>'
        )
    parts.append(f'<text x="4" y="12">max {top:g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
