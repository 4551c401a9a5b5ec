"""Jinja filters: times in UTC with milliseconds (device time is what protection engineers
compare), ages, byte sizes, currents and voltages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment


def _dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    v: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return v.astimezone(UTC)


def when(value: Any) -> str:
    """2025-03-01 08:00:01.021Z"""
    v = _dt(value)
    return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d}Z" if v else "–"


def clock(value: Any) -> str:
    """08:00:01.021 (within one incident the date is in the summary)"""
    v = _dt(value)
    return v.strftime("%H:%M:%S.") + f"{v.microsecond // 1000:03d}" if v else "–"


def age(value: Any, now: datetime | None = None) -> str:
    v = _dt(value)
    if v is None:
        return "–"
    s = ((now or datetime.now(UTC)) - v).total_seconds()
    if s < 0:
        return "in the future"
    return _in_units(s, 0) + " ago"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "–"
    return _in_units(float(seconds), 1)


def _in_units(s: float, decimals: int) -> str:
    """Seconds in the largest unit they reach: 3.2 h, 12 min, 40 s."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.{decimals}f} {unit}"
    return f"{s:.{decimals}f} s"


def millis(value: Any) -> str:
    """A latency: milliseconds while small, else the duration (a replayed old event)."""
    if value is None:
        return "–"
    ms = float(value)
    return f"{ms:,.1f} ms" if ms < 10_000 else duration(ms / 1000)


def quantity(value: Any, unit: str) -> str:
    """3000 A → 3,000 A; 63500 V → 63.5 kV; small values keep a decimal."""
    if value is None:
        return "–"
    v = float(value)
    if unit in ("V", "A") and abs(v) >= 10_000:
        return f"{v / 1000:,.1f} k{unit}"
    return f"{v:,.0f} {unit}" if abs(v) >= 10 else f"{v:,.1f} {unit}"


def install(env: Environment) -> None:
    env.filters.update(
        when=when, clock=clock, age=age, duration=duration, millis=millis, quantity=quantity
    )
