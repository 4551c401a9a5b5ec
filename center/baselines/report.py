"""The fleet's firmware report as text: a table for people, CSV or JSON for tools."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from center.baselines.inventory import versions_summary

COLUMNS = (
    "site",
    "device_id",
    "model",
    "serial",
    "firmware_version",
    "firmware_status",
    "settings_status",
    "settings_critical",
    "drift_tickets",
    "gateway_id",
    "last_seen",
)
_TABLE = (
    ("SITE", "site"),
    ("DEVICE", "device_id"),
    ("MODEL", "model"),
    ("FIRMWARE", "firmware_version"),
    ("FIRMWARE STATUS", "firmware_status"),
    ("SETTINGS", "settings_status"),
    ("TICKETS", "drift_tickets"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _settings_cell(row: dict[str, Any]) -> str:
    status = str(row["settings_status"])
    if status == "drift":
        weight = "protection" if row["settings_critical"] else "benign"
        return f"drift ({row['settings_differences']}, {weight})"
    return status


def as_table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [
        [_settings_cell(r) if key == "settings_status" else _cell(r[key]) for _, key in _TABLE]
        for r in rows
    ]
    widths = [max([len(title), *(len(c[i]) for c in cells)]) for i, (title, _) in enumerate(_TABLE)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line([t for t, _ in _TABLE]), *(line(c) for c in cells)]
    summary = versions_summary(rows)
    if summary:
        out += ["", "versions:"]
        for g in summary:
            flag = "" if g["status"] == "approved" else f"  [{g['status'].upper()}]"
            out.append(
                f"  {g['model']} {g['firmware_version']}: {len(g['devices'])} device(s)"
                f"{flag}  {', '.join(g['devices'])}"
            )
    deviating = sum(1 for r in rows if r["deviates"])
    out += ["", f"{len(rows)} device(s), {deviating} deviating"]
    return "\n".join(out) + "\n"


def as_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [";".join(str(v) for v in r[c]) if isinstance(r[c], list) else
             ("" if r[c] is None else r[c]) for c in COLUMNS]
        )  # fmt: skip
    return buf.getvalue()


def as_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(rows), indent=2, sort_keys=True) + "\n"


FORMATS = {"table": as_table, "csv": as_csv, "json": as_json}
