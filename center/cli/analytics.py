"""`relay-center report improvement` and `relay-center ageing run`, straight against the
center's database (docs/analytics.md).

    relay-center report improvement --config center.toml --from 2026-01-01 \\
        --to 2026-12-01 --format html|pdf|csv [--output FILE]
    relay-center ageing run --config center.toml      # the daily job, now
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from center.cli.loading import Subparsers, load_or_report, migrated_engine


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD (found: {text!r})") from None


def add_parsers(sub: Subparsers) -> None:
    report = sub.add_parser("report", help="reports people can print and send")
    kinds = report.add_subparsers(required=True)
    imp = kinds.add_parser("improvement", help="the continuous-improvement report")
    imp.add_argument("--config", required=True, help="center TOML file")
    imp.add_argument("--from", dest="start", type=_day, required=True, help="YYYY-MM-DD")
    imp.add_argument("--to", dest="end", type=_day, required=True, help="YYYY-MM-DD (excluded)")
    imp.add_argument("--format", choices=("html", "pdf", "csv", "json"), default="html")
    imp.add_argument("--output", "-o", help="file to write; default: stdout")
    imp.set_defaults(func=cmd_improvement)

    ageing = sub.add_parser("ageing", help="the ageing early warning")
    actions = ageing.add_subparsers(required=True)
    run = actions.add_parser("run", help="score every device now and open ageing tickets")
    run.add_argument("--config", required=True, help="center TOML file")
    run.set_defaults(func=cmd_ageing_run)


def cmd_improvement(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    if args.end <= args.start:
        sys.stderr.write("--to must be after --from\n")
        return 2
    import json

    from center.analytics.render_csv import render_csv
    from center.analytics.render_html import render_html
    from center.analytics.render_pdf import MissingExtra, render_pdf
    from center.analytics.report import improvement_report
    from center.store.db import one_connection

    with one_connection(config.database_url, up_to_date=True) as conn:
        report = improvement_report(conn, config, args.start, args.end, datetime.now(UTC))
    try:
        if args.format == "pdf":
            body: str | bytes = render_pdf(report)
        elif args.format == "json":
            body = json.dumps(report, indent=2, sort_keys=True) + "\n"
        else:
            body = render_html(report) if args.format == "html" else render_csv(report)
    except MissingExtra as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    data = body.encode() if isinstance(body, str) else body
    if args.output:
        Path(args.output).write_bytes(data)
        worse = len(report["firmware"]["worse"])
        sys.stderr.write(
            f"{args.output}: {report['summary']['tickets']} tickets, {worse} firmware "
            f"version(s) failing more than their fleet\n"
        )
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def cmd_ageing_run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 2
    from center.analytics.ageing_job import AgeingJob
    from center.clock import SystemClock
    from center.tickets.engine import TicketEngine

    with migrated_engine(config) as engine:
        tickets = TicketEngine(config, SystemClock())
        run = AgeingJob(engine, tickets, [w.name for w in config.webhooks]).run()
    sys.stdout.write(f"{run.summary()}\n")
    for name in run.put_on_tickets:
        sys.stdout.write(f"  {name}\n")
    return 0
