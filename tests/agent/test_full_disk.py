"""A full disk under the outbox: nothing received is acknowledged to the relay while it
lasts, its link is held down rather than flapping, /healthz and the metrics say so, and
once space returns every event is stored.

The disk is a real one: a 2 MiB tmpfs mounted for the test, when the test may mount (root
with CAP_SYS_ADMIN, as in CI's container and on a developer's VM). Where it may not, the
boundary is SQLite's own `max_page_count`, which fails a commit with the same SQLITE_FULL
error a full filesystem gives; the test prints which one it used.

The relay is the Modbus simulator with its event ring: the driver moves its read position
only after the outbox commit, so "not acknowledged" is visible as a position that does not
move, and "nothing lost" as every ring event stored once space is back."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from agent.metrics import health, outbox_samples
from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from agent.supervisor import LinkSupervisor
from gateway.outbox import Outbox
from protocols.modbus.driver import ModbusDriver
from protocols.profile_loader import load_named
from tests.protocols.modbus.helpers import PROFILE, free_port, plan, relay, tcp_device, wait_until

DISK_BYTES = 2 * 1024 * 1024


class PageLimitedOutbox(Outbox):
    """The fallback boundary: SQLite refuses to grow the file past `pages` (0: no limit)."""

    pages = 0

    def _commit(self, conn: sqlite3.Connection, ops: list[Any]) -> None:
        conn.execute(f"PRAGMA max_page_count = {self.pages or 1_073_741_823}")
        super()._commit(conn, ops)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """A directory on a 2 MiB filesystem, and whether it is a real mount."""
    disk = tmp_path / "disk"
    disk.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)]
    try:
        mounted = subprocess.run(command, capture_output=True, check=False).returncode == 0
    except OSError:  # no mount(8) at all
        mounted = False
    print("full disk:", "a 2 MiB tmpfs" if mounted else "SQLite max_page_count (cannot mount)")
    try:
        yield disk, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write until the filesystem says it is full (ENOSPC)."""
    filler = disk / "filler"
    # Unbuffered: a buffered file keeps what did not fit and raises ENOSPC again on close.
    with filler.open("wb", buffering=0) as out:
        while write_some(out):
            pass
    return filler


def write_some(out: BinaryIO) -> bool:
    """Write 64 KiB; False once the disk is full."""
    try:
        out.write(b"\0" * 65536)
        out.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True


def ring_events(box: Outbox) -> list[int]:
    bodies = [json.loads(r.body) for r in box.read(100_000) if r.kind == "event"]
    return [b["details"]["value"] for b in bodies if b["address"].startswith("event:")]


async def test_a_full_disk_acknowledges_nothing_and_loses_nothing(
    tmp_path: Path, small_disk: tuple[Path, bool]
) -> None:
    disk, mounted = small_disk
    box = PageLimitedOutbox(disk / "outbox.sqlite")
    box.open()
    box.bind_loop(asyncio.get_running_loop())
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    position = tmp_path / "state" / "f1.json"  # the driver's read position in the ring
    device = tcp_device("f1", port, state_file=position)
    pipeline = Pipeline(
        box, {"f1": DeviceContext("s1", "gw1", "f1", "modbus", load_named(PROFILE))}
    )
    supervisor = LinkSupervisor(plan([device]), ModbusDriver, pipeline, 0.1, 0.5)
    running = asyncio.create_task(supervisor.run())
    try:
        sim.append_event(1, fields={"value": 0})
        await wait_until(lambda: ring_events(box) == [0] and position.exists(), 20, "first event")
        before = position.read_text()
        if mounted:
            filler = fill(disk)
        else:
            with contextlib.closing(sqlite3.connect(box.path)) as conn:
                box.pages = conn.execute("PRAGMA page_count").fetchone()[0]
        for value in range(1, 41):  # more than fits in what the disk has left
            sim.append_event(
                1,
                fields={"value": value},
            )
        await wait_until(lambda: box.unavailable is not None, 30, "the outbox to refuse")
        await wait_until(lambda: not supervisor.status.running, 30, "the link held down")
        restarts = supervisor.status.restarts
        await asyncio.sleep(2.0)  # backoff 0.1-0.5 s: a flapping link would restart meanwhile
        assert supervisor.status.restarts == restarts, "the link flapped while full"
        assert not supervisor.status.running
        assert position.read_text() == before, "the relay was acknowledged while full"
        assert health(box) is not None
        assert "cannot store" in str(health(box))
        metrics = {name: value for name, _, value in outbox_samples(box)}
        assert metrics["relay_agent_outbox_unavailable"] == 1
        assert metrics["relay_agent_outbox_refused_total"] > 0
        if mounted:
            filler.unlink()
        else:
            box.pages = 0
        await wait_until(lambda: len(ring_events(box)) == 41, 60, "every event once space is back")
        assert ring_events(box) == list(range(41)), "an event lost or stored twice"
        assert box.unavailable is None
        assert health(box) is None
        assert position.read_text() != before
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await sim.stop()
        box.close()
