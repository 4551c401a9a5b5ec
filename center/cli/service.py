"""`relay-center serve | migrate | check-config | poll | incident export`: the service
itself, its schema and config, remote polls and incident playback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from center.cli.loading import Subparsers, load_or_report
from center.config import CenterConfig
from common import daemon_signals
from common.cli_options import add_config_file, config_file


def _setup_logging(level: str) -> None:
    from common.logging_setup import setup_logging

    setup_logging(level)  # journald-friendly when stderr is the journal
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _load(args: argparse.Namespace, path: Path | None = None) -> CenterConfig | None:
    return load_or_report(path or Path(args.config))


async def _serve(config: CenterConfig) -> None:
    from center.server import CenterService  # heavy imports only when serving

    service = await asyncio.to_thread(CenterService, config)
    stop = asyncio.Event()
    daemon_signals.install(stop.set)  # SIGUSR1 shows the tasks; a hung stop gives up
    await service.run(stop)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 2
    _setup_logging(config.center.log_level)
    logging.getLogger(__name__).info(
        "relay-center %s: database %s, broker %s:%d",
        config.center.instance,
        config.database_url.split("@")[-1],
        config.mqtt.host,
        config.mqtt.port,
    )
    asyncio.run(_serve(config))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 2
    from center.store.db import make_engine, migrate

    migrate(make_engine(config.database_url))
    print("schema is at the newest revision")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = config_file(args)
    config = _load(args, path)
    if config is None:
        return 2
    print(f"{path}: ok (database {config.database_url.split('@')[-1]})")
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    """Remote on-demand poll. With --config, the broker comes from the center's config and
    the gateway serving the device from its inventory (the devices table)."""
    from center import remote_poll

    if args.config is None:
        return remote_poll.run(args)
    config = _load(args)
    if config is None:
        return 2

    def gateway_of(site: str, device: str) -> str | None:
        from sqlalchemy import select

        from center.store import schema
        from center.store.db import one_connection

        d = schema.devices.c
        with one_connection(config.database_url) as conn:
            q = select(d.gateway_id).where(d.site == site, d.device_id == device)
            return conn.execute(q).scalar()

    broker = remote_poll.BrokerSettings.from_center_config(config.mqtt)
    return remote_poll.run(args, broker, gateway_of)


def cmd_incident_export(args: argparse.Namespace) -> int:
    """A ticket's incident as a scenario relay-sim replays (docs/disturbance.md)."""
    config = _load(args)
    if config is None:
        return 2
    from center.incident import ExportError, export
    from center.store.db import one_connection

    relays = Path(args.relays) if args.relays else None
    try:
        with one_connection(config.database_url) as conn:
            written = export(conn, args.ticket, Path(args.output), relays)
    except (ExportError, OSError) as exc:
        print(f"relay-center incident export: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def add_parsers(sub: Subparsers) -> None:
    for name, func, text in (
        ("serve", cmd_serve, "run ingest, tickets, webhooks and the API"),
        ("migrate", cmd_migrate, "bring the database schema up to date and exit"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", required=True, help="center TOML file")
        p.set_defaults(func=func)
    check = sub.add_parser("check-config", help="validate a config file and exit")
    add_config_file(check, "center TOML file")
    check.set_defaults(func=cmd_check)

    from center import remote_poll

    poll = sub.add_parser("poll", help="ask a relay, through its agent, for data now")
    remote_poll.add_arguments(poll)
    poll.add_argument("--config", help="center TOML: broker settings and the device inventory")
    poll.set_defaults(func=cmd_poll)

    incident = sub.add_parser("incident", help="incident playback")
    export = incident.add_subparsers(required=True).add_parser(
        "export", help="write a ticket's incident as a relay-sim scenario"
    )
    export.add_argument("ticket", type=int, help="the ticket id")
    export.add_argument("-o", "--output", required=True, help="scenario TOML to write")
    export.add_argument("--config", required=True, help="center TOML file")
    export.add_argument(
        "--relays", help="a scenario whose [[relays]] links, identities and settings to reuse"
    )
    export.set_defaults(func=cmd_incident_export)
