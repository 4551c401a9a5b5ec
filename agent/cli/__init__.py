"""`relay-agent`: run the daemon and check a config (`run.py`); poll, status and snapshot,
the engineer's on-demand reads (`poll.py`, through the daemon's socket: `client.py`)."""

from __future__ import annotations

import argparse

from agent.cli.poll import add_commands
from agent.cli.run import cmd_check_config, cmd_run
from common.cli_options import add_config_file, add_version_option


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay-agent", description=__doc__)
    add_version_option(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent daemon")
    run.add_argument("--config", required=True, help="agent config (TOML)")
    run.add_argument("--log-level", default="info")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config and its profiles")
    add_config_file(check, "agent config (TOML)")
    check.set_defaults(func=cmd_check_config)

    add_commands(sub)  # poll, status, snapshot
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
