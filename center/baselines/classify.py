"""How a device's settings differ from its baseline, and how much that matters. Pure.

The weight of a setting comes from the device profile's settings metadata, which the agent
puts on every snapshot entry: `protection` (pickups, time delays, enabled functions) or
`benign` (labels, comms parameters). A setting the profile does not list counts as
protection: an unknown change is looked at by a person rather than waved through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Change = Literal["added", "removed", "changed"]
PROTECTION = "protection"
BENIGN = "benign"


@dataclass(frozen=True)
class SettingDifference:
    name: str
    before: Any
    after: Any
    change: Change
    category: str  # protection | benign (unlisted settings count as protection)

    @property
    def critical(self) -> bool:
        return self.category != BENIGN

    def describe(self) -> str:
        if self.change == "added":
            return f"{self.name} added ({self.after!r})"
        if self.change == "removed":
            return f"{self.name} removed (was {self.before!r})"
        return f"{self.name} {self.before!r} -> {self.after!r}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "category": self.category,
            "critical": self.critical,
        }


def category_of(*entries: Mapping[str, Any] | None) -> str:
    """The first category an entry gives; protection when none does."""
    for entry in entries:
        if entry is not None and entry.get("category") in (PROTECTION, BENIGN):
            return str(entry["category"])
    return PROTECTION


def differences(
    baseline: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> list[SettingDifference]:
    """Every setting whose value differs between baseline and current, by name. The
    current entry's category wins (it carries the newest profile metadata)."""
    out = []
    for name in sorted(baseline.keys() | current.keys()):
        old, new = baseline.get(name), current.get(name)
        category = category_of(new, old)
        if old is None and new is not None:
            out.append(SettingDifference(name, None, new.get("value"), "added", category))
        elif new is None and old is not None:
            out.append(SettingDifference(name, old.get("value"), None, "removed", category))
        elif old is not None and new is not None and old.get("value") != new.get("value"):
            out.append(
                SettingDifference(name, old.get("value"), new.get("value"), "changed", category)
            )
    return out


def severity(diffs: list[SettingDifference]) -> str:
    """A protection-critical difference is a critical drift; only benign ones, minor."""
    return "critical" if any(d.critical for d in diffs) else "minor"


def summary(device_id: str, diffs: list[SettingDifference], limit: int = 3) -> str:
    if not diffs:
        return f"{device_id}: settings differ from the baseline (units or groups only)"
    critical = [d for d in diffs if d.critical]
    shown = (critical or diffs)[:limit]
    more = len(diffs) - len(shown)
    what = "protection-critical" if critical else "benign"
    text = "; ".join(d.describe() for d in shown) + (f"; {more} more" if more > 0 else "")
    return f"{device_id}: {len(diffs)} setting(s) differ from the baseline ({what}): {text}"
