"""SVG of a disturbance record's waveforms for the ticket page (pure: a COMTRADE record and
its fault analysis in, SVG out).

What a protection engineer looks for first is where the fault starts, which phases it
takes, and when it is gone: so the currents and the voltages are drawn one above the other
on one time axis (milliseconds from the record's trigger), the fault is a shaded band from
inception to clearing with both edges and the trip marked, the faulted phases are drawn
bolder, and the status channels (trip, breaker…) run as lanes under the same axis.

Colours follow the phases (A red, B amber, C blue, N grey) in currents and voltages alike,
through classes styled in console.css: the console's CSP allows no inline style. A long
record is reduced to a min/max envelope per pixel column, so a 20,000-sample record draws
as many points as a short one and every peak stays visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from gateway.comtrade import AnalogTrace, DigitalTrace, Record

WIDTH = 1000
LEFT = 112  # y-axis labels and lane names
RIGHT = 14
PLOT_W = WIDTH - LEFT - RIGHT
STRIP_H = 40  # two rows of labels above the plots: inception, trip, clearing
PLOT_HEAD = 18  # a plot's title and its channels' names, above its frame
PLOT_H = 150
PLOT_GAP = 8
LANE_H = 22
AXIS_H = 34
PHASE_ORDER = {"A": 0, "B": 1, "C": 2, "N": 3}
_NICE = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 60_000)


@dataclass(frozen=True)
class Moments:
    """The analysis' instants, in ms from the trigger (None: not found)."""

    inception: float | None
    clearing: float | None
    trip: float | None
    breaker: float | None

    @classmethod
    def of(cls, analysis: dict[str, Any]) -> Moments:
        start = analysis.get("inception_offset_ms")
        if start is None:
            return cls(None, None, None, None)

        def after(key: str) -> float | None:
            value = analysis.get(key)
            return None if value is None else start + value

        return cls(start, after("clearing_ms"), after("trip_ms"), after("breaker_ms"))


def kind_of(trace: AnalogTrace) -> str | None:
    unit = trace.unit.strip().lower()
    return "current" if unit in ("a", "ka") else "voltage" if unit in ("v", "kv") else None


def nice_ceiling(value: float) -> float:
    """The smallest 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(n * power for n in _NICE if n * power >= value * (1 - 1e-9))


def si(value: float, unit: str) -> str:
    """4500 A → 4.5 kA; 63500 V → 63.5 kV; 0 → 0."""
    if value == 0:
        return "0"
    if abs(value) >= 1000 and not unit.lower().startswith("k"):
        return f"{value / 1000:g} k{unit}"
    return f"{value:g} {unit}"


def envelope(values: Sequence[float], columns: int) -> list[tuple[float, float]]:
    """(fraction of the record, value) points: every sample when few, else the min and max
    of each pixel column in the order they occur (peaks survive the reduction)."""
    n = len(values)
    if n < 2:
        return [(0.0, values[0])] if values else []
    if n <= 2 * columns:
        return [(k / (n - 1), v) for k, v in enumerate(values)]
    out: list[tuple[float, float]] = []
    for c in range(columns):
        lo, hi = c * n // columns, (c + 1) * n // columns
        chunk = values[lo:hi]
        i_min, i_max = chunk.index(min(chunk)), chunk.index(max(chunk))
        for i in sorted({i_min, i_max}):
            out.append(((lo + i) / (n - 1), chunk[i]))
    return out


class _Time:
    """Milliseconds from the trigger to x."""

    def __init__(self, record: Record) -> None:
        self.start = (record.start_time - record.trigger_time).total_seconds() * 1000
        self.end = self.start + (max(record.samples, 2) - 1) * 1000 / record.sample_rate_hz
        self.scale = PLOT_W / (self.end - self.start)
        self.rate = record.sample_rate_hz
        self.samples = record.samples

    def at(self, index: int) -> float:
        """Milliseconds from the trigger of sample `index`."""
        return self.start + index * 1000 / self.rate

    def x(self, ms: float) -> float:
        return LEFT + (min(max(ms, self.start), self.end) - self.start) * self.scale

    def ticks(self) -> list[float]:
        step = next((s for s in _STEPS if s * self.scale >= 64), _STEPS[-1])
        first = math.ceil(self.start / step) * step
        return [first + i * step for i in range(int((self.end - first) // step) + 1)]


def _plot(
    title: str, traces: list[AnalogTrace], top: float, time: _Time, faulted: set[str]
) -> list[str]:
    # On the raw counts (the scaling is linear), so a long record costs C-speed min/max.
    peak = max(
        (
            abs(t.a * raw + t.b)
            for t in traces
            if t.samples
            for raw in (min(t.samples), max(t.samples))
        ),
        default=0.0,
    )
    unit = traces[0].unit.strip()
    full = nice_ceiling(peak)
    head, top = top, top + PLOT_HEAD
    mid = top + PLOT_H / 2

    def y(v: float) -> float:
        return mid - v / full * (PLOT_H / 2)

    parts = [f'<g class="plot" data-plot="{escape(title.lower())}">']
    parts.append(
        f'<rect class="plot-frame" x="{LEFT}" y="{top}" width="{PLOT_W}" height="{PLOT_H}"/>'
    )
    for v in (full, full / 2, 0.0, -full / 2, -full):
        cls = "zero" if v == 0 else "grid"
        parts.append(
            f'<line class="{cls}" x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + PLOT_W}" '
            f'y2="{y(v):.1f}"/><text class="y-label" x="{LEFT - 6}" y="{y(v) + 4:.1f}" '
            f'text-anchor="end">{escape(si(v, unit))}</text>'
        )
    parts.append(f'<text class="plot-title" x="{LEFT}" y="{head + 13}">{escape(title)}</text>')
    legend_x = LEFT + PLOT_W
    for trace in reversed(traces):
        phase = trace.phase or "x"
        bold = " faulted" if trace.phase in faulted else ""
        parts.append(
            f'<text class="trace-label ph-{escape(phase)}{bold}" x="{legend_x}" y="{head + 13}" '
            f'text-anchor="end">{escape(trace.name)}</text>'
        )
        legend_x -= 9 * len(trace.name) + 12
    for trace in traces:
        points = " ".join(
            f"{LEFT + f * PLOT_W:.1f},{y(trace.a * raw + trace.b):.1f}"
            for f, raw in envelope(trace.samples, PLOT_W)
        )
        bold = " faulted" if trace.phase in faulted else ""
        parts.append(
            f'<polyline class="trace ph-{escape(trace.phase or "x")}{bold}" '
            f'data-channel="{escape(trace.name)}" points="{points}">'
            f"<title>{escape(trace.name)} ({escape(unit)})</title></polyline>"
        )
    parts.append("</g>")
    return parts


def _lane_class(name: str) -> str:
    low = name.lower()
    if "trip" in low:
        return "dig-trip"
    if "breaker" in low or "cb" in low:
        return "dig-breaker"
    return "dig-other"


def _on_span(name: str, since: int, until: int, y: float, time: _Time) -> str:
    """A status channel's set interval, from sample `since` to sample `until`."""
    start, end = time.at(since), time.at(until)
    x0, x1 = time.x(start), time.x(end)
    return (
        f'<rect class="dig-on {_lane_class(name)}" x="{x0:.1f}" y="{y + 5}" '
        f'width="{max(x1 - x0, 1.5):.1f}" height="{LANE_H - 9}">'
        f"<title>{escape(name)}: set {start:+.1f} to {end:+.1f} ms</title></rect>"
    )


def _lanes(digital: Sequence[DigitalTrace], top: float, time: _Time) -> list[str]:
    parts = []
    for i, d in enumerate(digital):
        y = top + i * LANE_H
        parts.append(f'<g class="lane-digital" data-channel="{escape(d.name)}">')
        parts.append(
            f'<text class="lane-name" x="{LEFT - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(d.name[:16])}<title>{escape(d.name)}</title></text>"
            f'<line class="lane-base" x1="{LEFT}" y1="{y + LANE_H - 4}" x2="{LEFT + PLOT_W}" '
            f'y2="{y + LANE_H - 4}"/>'
        )
        state, since = d.initial, 0
        for index, new in d.changes:
            if new != state:
                if state:
                    parts.append(_on_span(d.name, since, index, y, time))
                state, since = new, index
        if state:  # still set at the end of the record
            parts.append(_on_span(d.name, since, time.samples - 1, y, time))
        parts.append("</g>")
    return parts


def _labels(moments: Moments, time: _Time, top: float, bottom: float) -> list[str]:
    """The fault band, its edges and the trip, with labels in two rows where they crowd."""
    parts: list[str] = []
    if moments.inception is None:
        return parts
    x0 = time.x(moments.inception)
    x1 = time.x(moments.clearing if moments.clearing is not None else time.end)
    parts.append(
        f'<rect class="fault-band" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
        f'height="{bottom - top}"/>'
    )
    marks: list[tuple[float, str, str]] = [(moments.inception, "inception", "m-inception")]
    if moments.trip is not None:
        marks.append((moments.trip, f"trip +{moments.trip - moments.inception:.0f} ms", "m-trip"))
    if moments.clearing is not None:
        cleared = moments.clearing - moments.inception
        marks.append((moments.clearing, f"cleared +{cleared:.0f} ms", "m-clearing"))
    else:
        marks.append((time.end, "not cleared in the record", "m-open"))
    taken: list[list[tuple[float, float]]] = [[], []]
    for ms, text, cls in sorted(marks):
        x = time.x(ms)
        half = 3.6 * len(text) + 4
        centre = min(max(x, LEFT + half), LEFT + PLOT_W - half)
        free = [all(centre + half < a or centre - half > b for a, b in row) for row in taken]
        row = free.index(True) if True in free else 1
        taken[row].append((centre - half, centre + half))
        label_y = 14 + row * 17
        parts.append(
            f'<g class="moment {cls}" data-ms="{ms:.1f}">'
            f'<line x1="{x:.1f}" y1="{label_y + 4}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text x="{centre:.1f}" y="{label_y}" text-anchor="middle">{escape(text)}</text></g>'
        )
    return parts


def waveform_chart(record: Record, analysis: dict[str, Any]) -> Markup:
    """Currents, voltages (one plot each, shared time axis) and the status lanes."""
    time = _Time(record)
    faulted = set(analysis.get("faulted_phases") or [])
    groups = []
    for kind, title in (("current", "Currents"), ("voltage", "Voltages")):
        traces = sorted(
            (t for t in record.analog if kind_of(t) == kind),
            key=lambda t: (PHASE_ORDER.get(t.phase, 9), t.name),
        )
        if traces:
            groups.append((title, traces))
    plots_h = len(groups) * (PLOT_HEAD + PLOT_H + PLOT_GAP)
    lanes_top = STRIP_H + plots_h
    bottom = lanes_top + LANE_H * len(record.digital)
    height = bottom + AXIS_H
    parts = [
        f'<svg class="wave" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="waveforms of {escape(record.device)}: '
        f"{len(record.analog)} analog and {len(record.digital)} status channels, "
        f'{record.duration_s * 1000:.0f} ms">'
    ]
    for t in time.ticks():
        x = time.x(t)
        label = "0 trigger" if t == 0 else f"{t:+,.0f}"
        parts.append(
            f'<g class="tick"><line class="t-grid" x1="{x:.1f}" y1="{STRIP_H}" x2="{x:.1f}" '
            f'y2="{bottom + 5}"/><text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">'
            f"{label}</text></g>"
        )
    parts += _labels(Moments.of(analysis), time, STRIP_H - 4, bottom)
    for i, (title, traces) in enumerate(groups):
        parts += _plot(title, traces, STRIP_H + i * (PLOT_HEAD + PLOT_H + PLOT_GAP), time, faulted)
    parts += _lanes(record.digital, lanes_top, time)
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{LEFT + PLOT_W}" y2="{bottom}"/>'
    )
    parts.append(
        f'<text class="axis-title" x="{LEFT + PLOT_W}" y="{bottom + 31}" text-anchor="end">'
        "ms from the trigger</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))
