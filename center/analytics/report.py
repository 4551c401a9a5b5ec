"""The continuous-improvement report as data: the statistics of a period, the firmware
versions that fail more than their model's fleet (with counts and the test in plain
words), root causes, recurring devices and monthly trends; `plots` draws its charts.
Rendered by render_html, render_csv and render_pdf; served as JSON by the API."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from center.analytics import plots
from center.analytics.history import YEAR_S
from center.analytics.incidents import StatsFilter
from center.analytics.rates import compare_rates, rate_sentence
from center.analytics.stats import Figures, document, figures_for
from center.config import CenterConfig

COMPARED = ("self_check", "comms", "alarm")
LABELS = {"self_check": "self-check failures", "comms": "comms losses", "alarm": "device alarms"}


def firmware_findings(figs: Figures, alpha: float, min_failures: int) -> list[dict[str, Any]]:
    """Each firmware version of a model with two or more versions, against the rest of
    that model's fleet, per failure class."""
    years: dict[tuple[str, str], float] = defaultdict(float)
    for key, spans in figs.exposure.items():
        for version, seconds in spans.items():
            years[(figs.by_key[key].model, version)] += seconds / YEAR_S
    failures: Counter[tuple[str, str, str]] = Counter()
    for inc, dev, fw in figs.pairs(COMPARED):
        failures[(dev.model, fw, inc.family)] += 1
    models: dict[str, list[str]] = defaultdict(list)
    for model, version in sorted(years):
        models[model].append(version)
    out = []
    for model, versions in models.items():
        if len(versions) < 2:
            continue
        for fc in COMPARED:
            total_n = sum(failures[(model, v, fc)] for v in versions)
            total_y = sum(years[(model, v)] for v in versions)
            for v in versions:
                n, y = failures[(model, v, fc)], years[(model, v)]
                c = compare_rates(n, y, total_n - n, total_y - y, alpha)
                worse = c.worse and n >= min_failures
                out.append({
                    "model": model, "firmware_version": v, "fault_class": fc,
                    "failures": n, "device_years": round(y, 2),
                    "rate": None if c.rate is None else round(c.rate, 4),
                    "rest_failures": c.rest_failures,
                    "rest_device_years": round(c.rest_exposure, 2),
                    "rest_rate": None if c.rest_rate is None else round(c.rest_rate, 4),
                    "p_value": c.p_value, "worse": worse,
                    "sentence": rate_sentence(
                        f"{model} firmware {v}, {LABELS[fc]}", c, f"the rest of the {model} fleet"
                    ),
                })  # fmt: skip
    return sorted(out, key=lambda x: (not x["worse"], x["p_value"], x["model"]))


def improvement_report(
    conn: Connection, config: CenterConfig, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    cfg = config.analytics.report
    figs = figures_for(conn, config, StatsFilter(start, end), now)
    stats = document(conn, figs, cfg.top_devices)
    findings = firmware_findings(figs, cfg.alpha, cfg.min_failures)
    return {
        "title": "Continuous improvement report",
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "generated_at": now.isoformat(),
        "summary": {
            k: stats[k]
            for k in ("devices", "device_years", "tickets", "reopen_rate", "flapping_rate")
        },
        "statistics": stats,
        "firmware": {
            "alpha": cfg.alpha,
            "min_failures": cfg.min_failures,
            "worse": [f for f in findings if f["worse"]],
            "findings": findings,
        },
    }


def statistics_plots(stats: dict[str, Any]) -> dict[str, str]:
    """The charts of one set of statistics (the report's, or a filtered view's), by name."""
    months = [m["month"] for m in stats["monthly"]]
    families = Counter[str]()
    for m in stats["monthly"]:
        families.update(m["tickets"])
    top = [name for name, _ in families.most_common(5)]
    trend = plots.line_chart(
        "Tickets per month",
        months,
        {name: [m["tickets"].get(name, 0) for m in stats["monthly"]] for name in top},
        "tickets",
    )
    rate = plots.line_chart(
        "Tickets per device-year, by month",
        months,
        {"all classes": [m["per_device_year"] or 0.0 for m in stats["monthly"]]},
        "per device-year",
    )
    causes: Counter[str] = Counter()
    for row in stats["root_causes"]:
        causes[row["root_cause"]] += row["tickets"]
    root = plots.bar_chart("Root causes", causes.most_common(), "tickets")
    return {"monthly_tickets": trend, "monthly_rate": rate, "root_causes": root}


def report_plots(report: dict[str, Any]) -> dict[str, str]:
    """The report's charts as SVG, by name."""
    worse = report["firmware"]["worse"][:10]
    firmware = plots.bar_chart(
        "Firmware failing more than its fleet (failures per device-year)",
        [
            (f"{w['model']} {w['firmware_version']} {w['fault_class']}", w["rate"] or 0.0)
            for w in worse
        ],
        "failures per device-year (the rest of each model's fleet: see the table)",
    )
    return {**statistics_plots(report["statistics"]), "firmware": firmware}
