"""Options every command line of the product shares, so they read and behave the same in
relay-agent, relay-center and relay-sim:

- `--version`: one number for a support call, read from the package metadata so that it
  cannot drift from what was installed;
- the config file of `check-config`, given either as a positional FILE or as
  `--config FILE` (the other commands take `--config`, so both forms work everywhere).
"""

from __future__ import annotations

import argparse
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "relay-service"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def add_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version()} ({DISTRIBUTION})"
    )


def add_config_file(parser: argparse.ArgumentParser, what: str) -> None:
    """`FILE` or `--config FILE`; read it back with `config_file`."""
    parser.add_argument("file", nargs="?", metavar="FILE", help=f"{what} (or --config FILE)")
    parser.add_argument("--config", dest="config_option", metavar="FILE", help=f"{what}")
    parser.set_defaults(config_parser=parser)


def config_file(args: argparse.Namespace) -> Path:
    """The one file given; a usage error (exit 2) when none, or two different ones."""
    parser: argparse.ArgumentParser = args.config_parser
    given = {f for f in (args.file, args.config_option) if f}
    if not given:
        parser.error("which config? pass FILE or --config FILE")
    if len(given) > 1:
        parser.error(f"two different configs given: {args.file} and --config {args.config_option}")
    return Path(given.pop())
