"""What every `relay-center` command shares: its config file read, or the reason it cannot
be, on standard error (the command then exits non-zero); its database at the newest
schema."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from center.config import CenterConfig, load_config
from common.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

# `relay-center`'s subparsers action (argparse keeps its type private).
Subparsers = Any


def load_or_report(path: str | Path) -> CenterConfig | None:
    """The center config at `path`, or None once the error is printed."""
    try:
        return load_config(Path(path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


@contextmanager
def migrated_engine(config: CenterConfig) -> Iterator[Engine]:
    """The config's database brought to the newest schema, disposed of on the way out."""
    from center.store.db import make_engine, migrate  # heavy: only for commands that need it

    engine = make_engine(config.database_url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
