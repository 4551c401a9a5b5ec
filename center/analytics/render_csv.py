"""The report as one long CSV table for spreadsheets: one row per figure, with the
dimensions it belongs to (month, site, model, firmware, class, root cause…), so a pivot
table rebuilds any view."""

from __future__ import annotations

import csv
import io
from typing import Any

from center.analytics.report_tables import DIMENSIONS, report_tables

HEADER = ("section", *DIMENSIONS, "metric", "value")


def _value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, dict):
        return ";".join(f"{k}={x}" for k, x in v.items())
    return "" if v is None else v


def render_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(HEADER)
    for table in report_tables(report):
        for row in table.rows:
            dims = [row.get(d, "") if d in dict(table.columns) else "" for d in DIMENSIONS]
            for key, _ in table.columns:
                if key not in DIMENSIONS:
                    out.writerow([table.section, *dims, key, _value(row.get(key))])
    return buf.getvalue()
