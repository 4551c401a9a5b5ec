"""`relay-agent run` (the daemon until SIGTERM or SIGINT; SIGUSR1 prints its tasks) and
`relay-agent check-config`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from agent.config import load_config
from common import daemon_signals
from common.cli_options import config_file
from common.errors import ConfigError


def _setup_logging(level: str) -> None:
    from common.logging_setup import setup_logging

    setup_logging(level)


def cmd_check_config(args: argparse.Namespace) -> int:
    path = config_file(args)
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{path}: INVALID ({len(exc.problems)} problem(s))", file=sys.stderr)
        return 2
    cfg = loaded.config
    print(f"{path}: OK")
    print(f"  site {cfg.agent.site}, gateway {cfg.agent.gateway_id}")
    print(f"  broker {cfg.broker.host}:{cfg.broker.port}{' (TLS)' if cfg.broker.tls else ''}")
    print(f"  outbox {cfg.outbox_path}")
    for device in cfg.devices:
        profile = loaded.profiles[device.id]
        state = "" if device.enabled else " (disabled)"
        rw = ", COMMANDS ALLOWED" if device.allow_commands else ""
        print(
            f"  device {device.id}: {getattr(device, 'protocol', '?')}, "
            f"profile {profile.name} ({len(profile.points)} points){rw}{state}"
        )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level)
    try:
        loaded = load_config(Path(args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from agent.daemon import AgentDaemon

    daemon = AgentDaemon(loaded)
    return asyncio.run(_run_until_signal(daemon))


async def _run_until_signal(daemon: object) -> int:
    from agent.daemon import AgentDaemon

    assert isinstance(daemon, AgentDaemon)
    task = asyncio.create_task(daemon.run(), name="agent")
    daemon_signals.install(task.cancel)  # SIGUSR1 shows the tasks; a hung stop gives up
    try:
        await task
    except asyncio.CancelledError:
        logging.getLogger("agent").info("stopped")
    return 0
