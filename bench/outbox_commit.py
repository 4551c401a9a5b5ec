"""What an outbox commit's statements cost: `executemany` and `DELETE ... RETURNING` (one
sqlite3 step per row) against multi-row INSERTs and a counted range DELETE (one step per
statement), with and without Python threads busy beside the committing one.

    .venv/bin/python bench/outbox_commit.py [--rows 9 150] [--busy 0 1]

Each step of the sqlite3 module lets go of the GIL; a busy thread (in the agent, a guard
decoding a relay's frames) may then hold it for up to the switch interval while the commit
waits. Prints CPU and wall time per commit (insert `rows` rows of 200 bytes and delete the
previous commit's, `synchronous = NORMAL`, in WAL mode); both variants in one run, so
compare the ratio. The outbox uses the second (gateway/outbox_rows.py `insert_rows`).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.outbox_rows import insert_rows

COMMITS = 200
Rows = list[tuple[int, int, bytes]]


def per_row(conn: sqlite3.Connection, rows: Rows, first: int, last: int) -> None:
    query = "DELETE FROM t WHERE session = 1 AND seq BETWEEN ? AND ? RETURNING length(body)"
    conn.execute(query, (first, last)).fetchall()
    conn.executemany("INSERT INTO t (session, seq, body) VALUES (?, ?, ?)", rows)


def per_statement(conn: sqlite3.Connection, rows: Rows, first: int, last: int) -> None:
    where = "WHERE session = 1 AND seq BETWEEN ? AND ?"
    conn.execute(f"SELECT COUNT(*), SUM(length(body)) FROM t {where}", (first, last)).fetchone()
    conn.execute(f"DELETE FROM t {where}", (first, last))
    insert_rows(conn, "INSERT INTO t (session, seq, body)", rows)


def measure(statements: Callable[..., None], rows_per_commit: int, busy: int) -> tuple[float, ...]:
    """CPU and wall µs per commit."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "bench.db")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, session INT, seq INT, body BLOB)")
        conn.execute("CREATE INDEX t_record ON t (session, seq)")
        stop = threading.Event()

        def spin() -> None:
            while not stop.is_set():
                sum(range(100))

        hogs = [threading.Thread(target=spin) for _ in range(busy)]
        for hog in hogs:
            hog.start()
        cpu, wall, seq = time.thread_time(), time.perf_counter(), 0
        for _ in range(COMMITS):
            rows = [(1, seq + i, b"x" * 200) for i in range(rows_per_commit)]
            with conn:
                statements(conn, rows, seq - rows_per_commit, seq - 1)
            seq += rows_per_commit
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        stop.set()
        for hog in hogs:
            hog.join()
        conn.close()
    return cpu / COMMITS * 1e6, wall / COMMITS * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[9, 150])
    p.add_argument("--busy", type=int, nargs="+", default=[0, 1])
    args = p.parse_args()
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
    head = ("rows", "busy", "per row: CPU / wall us", "per statement", "CPU ratio")
    print(f"{head[0]:>5} {head[1]:>5} {head[2]:>26} {head[3]:>22} {head[4]:>10}")
    for rows in args.rows:
        for busy in args.busy:
            a = measure(per_row, rows, busy)
            b = measure(per_statement, rows, busy)
            print(f"{rows:>5} {busy:>5} {a[0]:>13,.0f} / {a[1]:>9,.0f}"
                  f" {b[0]:>11,.0f} / {b[1]:>8,.0f} {a[0] / b[0]:>9.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
