"""The outbox's journal (gateway/outbox_journal.py, outbox_lane.py): what a commit made
durable there survives a SIGKILL before SQLite stored it, is stored once when the kill
came between SQLite's commit and the journal's emptying, and a torn append loses only
itself. Processes are killed for real; the disk is read apart from the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway import outbox_lane
from gateway.outbox import Outbox, OutboxFull, Pending
from gateway.outbox_journal import Group, Journal, JournalError, decode_all, encode
from gateway.outbox_rows import WriteOp
from gateway.wire import AckRange
from tests.gateway.durable_view import durable_rows

ROOT = Path(__file__).resolve().parents[2]


def group(first: int, n: int, session: int = 1) -> Group:
    rows = [
        (first + i, session, first + i, "relay/v1/s/g/event/d", "event",
         1.5, b'{"n":%d,"t":"\xc3\xa9"}' % (first + i), 4)
        for i in range(n)
    ]  # fmt: skip
    return Group(rows, [("d", f"k{first + i}") for i in range(n)])


def test_groups_read_back_as_written_and_a_torn_last_one_is_dropped() -> None:
    groups = [group(1, 3), group(4, 1), Group(group(5, 2).rows, [])]
    data = b"".join(encode(g) for g in groups)
    assert decode_all(data) == groups
    last = len(encode(groups[-1]))
    for cut in range(1, last):  # the last append torn anywhere
        assert decode_all(data[: len(data) - cut]) == groups[:2]
    flipped = bytearray(data)
    flipped[len(data) - 3] ^= 0x01  # a bad byte in the last group's body
    assert decode_all(bytes(flipped)) == groups[:2]


def test_a_failed_append_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write (the disk filled up mid-append) is cut off again: a later append would
    otherwise follow a torn group, and reading back stops at the torn one."""
    journal = Journal(tmp_path / "j")
    assert journal.open() == []
    journal.append(encode(group(1, 2)))
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, data[:10]))
    with pytest.raises(JournalError):
        journal.append(encode(group(3, 1)))
    monkeypatch.setattr(os, "write", real)
    journal.append(encode(group(4, 1)))
    journal.close()
    assert Journal(tmp_path / "j").open() == [group(1, 2), group(4, 1)]


def run_and_kill(tmp_path: Path, body: str) -> None:
    """Run `body` in a process that opens an outbox at tmp_path/o.sqlite; it ends killed."""
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys
            from pathlib import Path
            from gateway import outbox_lane
            from gateway.outbox import Outbox, Pending
            outbox_lane.APPLY_AFTER_S = 3600  # nothing moves into SQLite on its own
            box = Outbox(Path(sys.argv[1]) / "o.sqlite")
            box.open()
            def append(first, n):
                box.append_blocking(
                    [Pending("relay/v1/s/g/event/d", "event", b'{"n":%d}' % i)
                     for i in range(first, first + n)],
                    keys={"d": [f"k{i}" for i in range(first, first + n)]},
                )
            """
        )
        + textwrap.dedent(body)
        + "\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def reopened(path: Path) -> tuple[list[bytes], dict[str, list[str]], int]:
    box = Outbox(path)
    box.open()
    try:
        rows = box.read(10_000)
        return [r.body for r in rows], box.recent_keys(), box.session
    finally:
        box.close()


def bodies(first: int, last: int) -> list[bytes]:
    return [b'{"n":%d}' % i for i in range(first, last + 1)]


def test_commits_only_in_the_journal_survive_a_sigkill(tmp_path: Path) -> None:
    run_and_kill(tmp_path, "append(1, 3)\nappend(4, 5)\n")
    assert [r.seq for r in durable_rows(tmp_path / "o.sqlite")] == list(range(1, 9))
    rows, keys, session = reopened(tmp_path / "o.sqlite")
    assert rows == bodies(1, 8)
    assert keys == {"d": [f"k{i}" for i in range(1, 9)]}
    assert session == 2
    assert (tmp_path / "o.sqlite.journal").stat().st_size == 0
    assert reopened(tmp_path / "o.sqlite")[0] == bodies(1, 8)  # stored once, not again


def test_a_kill_between_sqlites_commit_and_the_journals_emptying_stores_once(
    tmp_path: Path,
) -> None:
    run_and_kill(
        tmp_path,
        """
        append(1, 4)
        box.store_journal()
        append(5, 2)
        from gateway.outbox_journal import Journal
        Journal.empty = lambda self: os.kill(os.getpid(), signal.SIGKILL)
        box.store_journal()
        """,
    )
    journal = tmp_path / "o.sqlite.journal"
    assert [g.last for g in decode_all(journal.read_bytes())] == [(1, 6)]  # not emptied
    rows, keys, _ = reopened(tmp_path / "o.sqlite")
    assert rows == bodies(1, 6)
    assert keys == {"d": [f"k{i}" for i in range(1, 7)]}


def test_after_a_failed_append_commits_go_to_sqlite_and_nothing_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()
    try:
        box.append_blocking([Pending("t", "event", b"1")])
        real = os.write
        failures = []

        assert box._journal is not None
        journal_fd = box._journal._fd

        def full(fd: int, data: bytes) -> int:
            if fd == journal_fd:
                failures.append(fd)
                raise OSError(28, "No space left on device")
            return real(fd, data)

        monkeypatch.setattr(os, "write", full)
        box.append_blocking([Pending("t", "event", b"2")])  # into SQLite instead
        box.append_blocking([Pending("t", "event", b"3")])  # the journal is not tried again
        assert len(failures) == 1
        assert [r.body for r in box.read(10)] == [b"1", b"2", b"3"]
    finally:
        box.close()
    assert [r.body for r in durable_rows(tmp_path / "o.sqlite")] == [b"1", b"2", b"3"]


def test_an_acknowledgement_of_rows_still_in_the_journal_removes_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.open()

    async def acknowledge() -> int:
        return await box.acknowledge([AckRange(session=box.session, first=1, last=3)])

    try:
        box.append_blocking([Pending("t", "event", b"%d" % i) for i in range(1, 6)])
        assert box.count_upto((box.session, 5)) == 5  # four in the journal's lane
        assert asyncio.run(acknowledge()) == 3
        assert box.depth == 2
        assert [r.seq for r in durable_rows(tmp_path / "o.sqlite")] == [4, 5]
    finally:
        box.close()


class PageLimited(Outbox):
    """SQLite refuses to grow past `pages` (0: no limit) while the journal still can: the
    case where the journal would otherwise go on taking what SQLite cannot."""

    pages = 0

    def _commit(self, conn: sqlite3.Connection, ops: list[WriteOp]) -> None:
        conn.execute(f"PRAGMA max_page_count = {self.pages or 1_073_741_823}")
        super()._commit(conn, ops)


def test_while_sqlite_cannot_store_what_the_journal_holds_appends_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_lane, "APPLY_AFTER_S", 0.01)
    box = PageLimited(tmp_path / "o.sqlite")
    box.open()
    big = [Pending("t", "event", b"x" * 3000)]
    try:
        box.append_blocking(big)
        box.store_journal()
        with contextlib.closing(sqlite3.connect(box.path)) as conn:
            box.pages = conn.execute("PRAGMA page_count").fetchone()[0]
        box.append_blocking(big)  # into the journal: durable, SQLite not yet asked
        deadline = time.monotonic() + 10
        while not box._lane._retry_at:  # the writer's own store of it failed
            assert time.monotonic() < deadline, "the journal's rows were never tried"
            time.sleep(0.01)
        with pytest.raises(OutboxFull):
            box.append_blocking(big)  # not into the journal meanwhile
        box.pages = 0  # room again
        box._queue.put(WriteOp(probe=True))
        box.store_journal()
        assert box.unavailable is None
        box.append_blocking(big)
        assert box._lane.rows == 1  # the journal takes commits again
        box.store_journal()
        assert [r.seq for r in durable_rows(tmp_path / "o.sqlite")] == [1, 2, 3]
        assert (tmp_path / "o.sqlite.journal").stat().st_size == 0
    finally:
        box.close()
