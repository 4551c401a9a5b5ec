from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.outbox import Outbox
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


# Saved after every change, so that subscribers' sessions survive a SIGKILL of the broker
# and none misses what a client publishes once the broker is back.
SAVE_EVERY_CHANGE = "autosave_on_changes true\nautosave_interval 1\n"


@pytest.fixture
def killable_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that tests may SIGKILL or freeze (SIGSTOP) and start again on its port."""
    broker = Mosquitto(tmp_path / "killable-mosquitto", extra_conf=SAVE_EVERY_CHANGE)
    broker.start()
    try:
        yield broker
    finally:
        if broker.proc is not None:
            os.kill(broker.proc.pid, signal.SIGCONT)
        broker.stop()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    """A real outbox (SQLite WAL) in the test's directory."""
    box = Outbox(tmp_path / "outbox.sqlite")
    box.open()
    yield box
    box.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run: the named or local one, else a throwaway
    cluster started here (tests/support/postgres.py)."""
    with _postgres_admin_url() as url:
        yield url
