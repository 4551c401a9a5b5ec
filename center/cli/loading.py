"""What every `relay-center` command shares: its config file read, or the reason it cannot
be, on standard error (the command then exits non-zero)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from center.config import CenterConfig, load_config
from common.errors import ConfigError

# `relay-center`'s subparsers action (argparse keeps its type private).
Subparsers = Any


def load_or_report(path: str | Path) -> CenterConfig | None:
    """The center config at `path`, or None once the error is printed."""
    try:
        return load_config(Path(path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
