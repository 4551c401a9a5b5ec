"""The report's tables, once, for every format: HTML and PDF print them, CSV flattens
them into one long table (one row per figure) that a spreadsheet pivots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The dimensions a CSV row can carry; every other column of a table is a figure.
DIMENSIONS = (
    "month", "region", "site", "device_id", "model", "firmware_version", "fault_class",
    "root_cause",
)  # fmt: skip


@dataclass(frozen=True)
class Table:
    section: str
    title: str
    columns: list[tuple[str, str]]  # (key, header)
    rows: list[dict[str, Any]]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _response_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for r in stats["response"]:
        ack, res = r["time_to_acknowledge"], r["time_to_resolve"]
        out.append({
            "fault_class": r["fault_class"], "tickets": r["tickets"],
            "ack_p50_h": ack["p50_h"], "ack_p90_h": ack["p90_h"], "ack_mean_h": ack["mean_h"],
            "resolve_p50_h": res["p50_h"], "resolve_p90_h": res["p90_h"],
            "resolve_mean_h": res["mean_h"], "reopen_rate": r["reopen_rate"],
            "flapping_rate": r["flapping_rate"],
        })  # fmt: skip
    return out


def report_tables(report: dict[str, Any]) -> list[Table]:
    summary = Table("summary", "Summary", [
        ("devices", "Devices"), ("device_years", "Device-years"), ("tickets", "Tickets"),
        ("reopen_rate", "Reopen rate"), ("flapping_rate", "Flapping rate (conditions)")],
        [report["summary"]])  # fmt: skip
    firmware = Table("firmware", "Firmware versions against their model's fleet", [
        ("model", "Model"), ("firmware_version", "Firmware"), ("fault_class", "Class"),
        ("failures", "Failures"), ("device_years", "Device-years"), ("rate", "Rate"),
        ("rest_failures", "Rest: failures"), ("rest_device_years", "Rest: device-years"),
        ("rest_rate", "Rest: rate"), ("p_value", "p"), ("worse", "Fails more")],
        report["firmware"]["findings"])  # fmt: skip
    tables = statistics_tables(report["statistics"])
    return [summary, *tables[:2], firmware, *tables[2:]]


def statistics_tables(stats: dict[str, Any]) -> list[Table]:
    """The tables of one set of statistics (the report's, or a filtered view's)."""
    mtbf_cols = [("model", "Model"), ("fault_class", "Class"), ("failures", "Failures"),
                 ("device_years", "Device-years"), ("mtbf_days", "MTBF (days)")]  # fmt: skip
    monthly = [
        {"month": m["month"], "total": m["total"], "device_years": m["device_years"],
         "per_device_year": m["per_device_year"], **m["tickets"]}
        for m in stats["monthly"]
    ]  # fmt: skip
    classes = sorted({k for m in stats["monthly"] for k in m["tickets"]})
    return [
        Table("by_class", "Tickets and raised events per class", [
            ("fault_class", "Class"), ("tickets", "Tickets"),
            ("per_device_year", "Tickets per device-year"), ("events", "Raised events"),
            ("events_per_device_year", "Events per device-year")], stats["by_class"]),
        Table("monthly", "Trend per month", [("month", "Month"), ("total", "Tickets"),
              ("device_years", "Device-years"), ("per_device_year", "Per device-year"),
              *[(c, c) for c in classes]], monthly),
        Table("mtbf_model", "Mean time between failures per model", mtbf_cols,
              stats["mtbf"]["by_model"]),
        Table("mtbf_firmware", "Mean time between failures per firmware version",
              [*mtbf_cols[:1], ("firmware_version", "Firmware"), *mtbf_cols[1:]],
              stats["mtbf"]["by_firmware"]),
        Table("response", "Time to acknowledge and to resolve (hours)", [
            ("fault_class", "Class"), ("tickets", "Tickets"), ("ack_p50_h", "Ack p50"),
            ("ack_p90_h", "Ack p90"), ("ack_mean_h", "Ack mean"),
            ("resolve_p50_h", "Resolve p50"), ("resolve_p90_h", "Resolve p90"),
            ("resolve_mean_h", "Resolve mean"), ("reopen_rate", "Reopen rate"),
            ("flapping_rate", "Flapping rate")], _response_rows(stats)),
        Table("root_causes", "Root causes", [("root_cause", "Root cause"),
              ("fault_class", "Class"), ("tickets", "Tickets")], stats["root_causes"]),
        Table("recurring", "Devices that recur", [("site", "Site"), ("device_id", "Device"),
              ("model", "Model"), ("tickets", "Tickets"), ("by_class", "By class")],
              stats["recurring_devices"]),
        Table("clock", "Clock quality per site", [("site", "Site"), ("relays", "Relays"),
              ("judged", "Judged"), ("bad", "Bad clocks"), ("bad_share", "Bad share"),
              ("median_abs_offset_ms", "Median |offset| ms"),
              ("summer_time", "On summer time (SU)"), ("stands_out", "No time source?")],
              stats["clock"]["sites"]),
    ]  # fmt: skip
