"""`relay-center`: serve, migrate, check-config, poll, inventory, baseline, incident export,
user."""

# The text above is `relay-center --help`'s description. One module per group of commands,
# each with `add_parsers(sub)`: `service` (serve, migrate, check-config, poll, incident
# export), `baselines` (inventory, baseline), `quarantine`, `analytics` (report, ageing),
# `users` (user); `loading` reads the config file for all of them.

from __future__ import annotations

import argparse

from center.cli import analytics, baselines, quarantine, service, users
from common.cli_options import add_version_option

GROUPS = (service, baselines, quarantine, analytics, users)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay-center", description=__doc__)
    add_version_option(parser)
    sub = parser.add_subparsers(required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


__all__ = ["build_parser", "main"]
