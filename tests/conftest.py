from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox import Outbox
from tests.support.mosquitto import Mosquitto

# The c104 part must be correct in any local time zone; tests that care set TZ themselves.
os.environ.setdefault("RELAY_TEST", "1")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    """A real outbox (SQLite WAL) in the test's directory."""
    box = Outbox(tmp_path / "outbox.sqlite")
    box.open()
    yield box
    box.close()
