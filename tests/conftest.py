from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.postgres import postgres_admin_url as _postgres_admin_url

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


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run: the named or local one, else a throwaway
    cluster started here (tests/support/postgres.py)."""
    with _postgres_admin_url() as url:
        yield url
