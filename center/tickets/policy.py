"""Pure ticket rules: priority, flapping, titles, maintenance matching. No I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from center.tickets.model import (
    AGEING,
    CLOCK_QUALITY,
    COMMS,
    FIRMWARE_DRIFT,
    PROTECTION,
    SELF_CHECK,
    SETTINGS_DRIFT,
    SITE_COMMS,
)

SEVERITY_RANK = {"info": 0, "minor": 1, "major": 2, "critical": 3}
CRITICALITY_RANK = {"low": -1, "normal": 0, "high": 1}


def worse_severity(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, 0) >= SEVERITY_RANK.get(b, 0) else b


def higher_criticality(a: str, b: str) -> str:
    return a if CRITICALITY_RANK.get(a, 0) >= CRITICALITY_RANK.get(b, 0) else b


# Preventive classes never outrank a fault: their most urgent priority.
PRIORITY_CAP = {AGEING: "P3"}
# Classes whose active ticket gathers every device of the site, however far apart in time
# (a whole old substation is one ageing ticket, not one per device and per day).
SITE_GROUPED_WHILE_ACTIVE = frozenset({AGEING})


def priority(
    severity: str,
    criticality: str,
    occurrences: int,
    reopen_count: int,
    episode: int,
    *,
    fault_class: str | None = None,
) -> str:
    """P1 (most urgent) to P4: severity rank plus device criticality, plus one for a
    recurrence (a third occurrence, a reopen, or a later episode); capped for preventive
    classes (PRIORITY_CAP)."""
    recurring = occurrences >= 3 or reopen_count > 0 or episode > 1
    score = SEVERITY_RANK.get(severity, 0) + CRITICALITY_RANK.get(criticality, 0) + recurring
    cap = PRIORITY_CAP.get(fault_class or "")
    if cap is not None:
        score = min(score, 4 - int(cap[1]) + 1)
    if score >= 4:
        return "P1"
    if score == 3:
        return "P2"
    if score == 2:
        return "P3"
    return "P4"


def flap_percent(
    transitions: list[datetime], now: datetime, history: int, window_s: float
) -> float:
    """Naemon-style percent state change: the last `history` transitions, weighted from 0.8
    (oldest slot) to 1.2 (newest slot); transitions older than the window count zero."""
    recent = transitions[-history:]
    horizon = now - timedelta(seconds=window_s)
    score = 0.0
    offset = history - len(recent)
    for i, at in enumerate(recent):
        if at >= horizon:
            score += 0.8 + 0.4 * (offset + i) / (history - 1)
    return 100.0 * score / history


def is_flapping(was_flapping: bool, percent: float, high: float, low: float) -> bool:
    """Hysteresis: start at or above `high`, stop at or below `low`."""
    if was_flapping:
        return percent > low
    return percent >= high


CLASS_LABELS = {
    PROTECTION: "Protection operation",
    COMMS: "Device comms lost",
    SITE_COMMS: "Site comms lost",
    SELF_CHECK: "Device self-check failure",
    FIRMWARE_DRIFT: "Firmware drift",
    SETTINGS_DRIFT: "Settings drift",
    AGEING: "Ageing risk",
    CLOCK_QUALITY: "Relay clock quality",
}


def title(fault_class: str, site: str, members: Iterable[str], detail: str = "") -> str:
    label = CLASS_LABELS.get(fault_class)
    if label is None:
        label = fault_class.replace("alarm.", "Device alarm ").replace("_", " ")
    who = ", ".join(sorted(members))
    return f"{label} at {site}: {who}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class Window:
    site: str
    device_id: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str = ""


def in_maintenance(
    windows: Iterable[Window], site: str, device_id: str | None, at: datetime
) -> bool:
    """A window without device covers the whole site."""
    return any(
        w.site == site
        and (w.device_id is None or w.device_id == device_id)
        and w.starts_at <= at < w.ends_at
        for w in windows
    )
