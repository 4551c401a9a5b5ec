from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox import Outbox


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Outbox]:
    """A real outbox (SQLite WAL) in the test's directory."""
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.open()
    yield outbox
    outbox.close()
