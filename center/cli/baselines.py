"""`relay-center inventory` and `relay-center baseline …`: the fleet's firmware report and
approvals, straight against the center's database (docs/lifecycle.md).

    relay-center inventory --config center.toml [--format table|csv|json] [--deviating]
    relay-center baseline list --config center.toml
    relay-center baseline approve firmware --config center.toml --model FP-300 \\
        --version 2.5.0 --reason "release 2.5 qualified" [--by alice]
    relay-center baseline approve settings --config center.toml --site north \\
        --device feeder7 [--hash H] --reason "new pickup per study 42" [--by alice]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from center.cli.loading import Subparsers, load_or_report
from center.config import CenterConfig


def add_parsers(sub: Subparsers) -> None:
    p = sub.add_parser("inventory", help="print the fleet's firmware report")
    p.add_argument("--config", required=True, help="center TOML file")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--deviating", action="store_true", help="only devices that deviate")
    p.set_defaults(func=cmd_inventory)

    baseline = sub.add_parser("baseline", help="approved firmware and settings baselines")
    actions = baseline.add_subparsers(required=True)
    listing = actions.add_parser("list", help="print every approval")
    listing.add_argument("--config", required=True, help="center TOML file")
    listing.set_defaults(func=cmd_baseline_list)
    approve = actions.add_parser("approve", help="record an approval (who, when, why)")
    what = approve.add_subparsers(required=True)

    fw = what.add_parser("firmware", help="approve a firmware version for a model")
    fw.add_argument("--model", required=True, help="as the inventory shows it")
    fw.add_argument("--version", required=True, dest="firmware_version")
    fw.set_defaults(func=cmd_approve_firmware)

    st = what.add_parser("settings", help="make a device's settings its baseline")
    st.add_argument("--site", required=True)
    st.add_argument("--device", required=True)
    st.add_argument("--hash", default=None, help="a stored snapshot's hash; default: newest")
    st.set_defaults(func=cmd_approve_settings)
    for p in (fw, st):
        p.add_argument("--config", required=True, help="center TOML file")
        p.add_argument("--reason", required=True, help="why: recorded with the approval")
        p.add_argument("--by", default=None, help="who approves; default: the login name")


def _config(args: argparse.Namespace) -> CenterConfig | None:
    return load_or_report(args.config)


def _engine(config: CenterConfig) -> Any:
    from center.store.db import make_engine, migrate

    engine = make_engine(config.database_url)
    migrate(engine)
    return engine


def cmd_inventory(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 2
    from center.baselines.inventory import fleet_report
    from center.baselines.report import FORMATS
    from center.store.db import one_connection

    with one_connection(config.database_url, up_to_date=True) as conn:
        rows = fleet_report(conn, args.deviating)
    sys.stdout.write(FORMATS[args.format](rows))
    return 0


def cmd_baseline_list(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 2
    from center.baselines import baselines
    from center.store.db import one_connection

    with one_connection(config.database_url, up_to_date=True) as conn:
        firmware = baselines.firmware_approvals(conn)
        settings = sorted(baselines.all_settings_baselines(conn).items())
    lines = ["firmware (approved versions per model):"]
    lines += [
        f"  {a['model']} {a['firmware_version']}  by {a['approved_by']} "
        f"at {a['approved_at']}: {a['reason']}"
        for a in firmware
    ]
    lines.append("settings (baseline per device):")
    lines += [
        f"  {site}/{device} {b.hash}  by {b.approved_by} at {b.approved_at.isoformat()}: {b.reason}"
        for (site, device), b in settings
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _service(config: CenterConfig) -> Any:
    from center.baselines.approvals import BaselineService
    from center.clock import SystemClock
    from center.tickets.engine import TicketEngine

    tickets = TicketEngine(config, SystemClock())
    return BaselineService(_engine(config), tickets, [w.name for w in config.webhooks])


def _approve(args: argparse.Namespace, how: str) -> int:
    config = _config(args)
    if config is None:
        return 2
    from center.baselines.approvals import ApprovalError

    service = _service(config)
    by = args.by or getpass.getuser()
    try:
        if how == "firmware":
            result = service.approve_firmware(args.model, args.firmware_version, by, args.reason)
        else:
            result = service.approve_settings(args.site, args.device, by, args.reason, args.hash)
    except ApprovalError as exc:
        sys.stderr.write(f"not approved: {exc}\n")
        return 1
    finally:
        service.engine.dispose()
    sys.stdout.write(json.dumps(result.document(), indent=2, sort_keys=True) + "\n")
    return 0


def cmd_approve_firmware(args: argparse.Namespace) -> int:
    return _approve(args, "firmware")


def cmd_approve_settings(args: argparse.Namespace) -> int:
    return _approve(args, "settings")
