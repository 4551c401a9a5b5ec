"""Outbox and uplink throughput, measured against each other in one run.

    .venv/bin/python bench/outbox_uplink.py [--seconds 3] [--threads 20]

1. Appends: N threads (as N c104 receive threads) each append one record at a time and
   wait for its commit; group commit against the measured cost of a commit per row.
2. Forwarding: a backlog drained to a real Mosquitto at QoS 1, until a subscriber that
   acknowledges end to end as the center does (tests/support/collector.py) has
   acknowledged every record; one record per message against packed messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import wire
from gateway.outbox import Outbox, Pending
from gateway.uplink import Uplink, UplinkSettings
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto


def body(n: int) -> Pending:
    record = wire.Event(
        site="s1",
        gateway_id="gw1",
        device_id=f"d{n % 20}",
        session=0,
        seq=0,
        gateway_time=wire.utcnow(),
        address=str(1000 + n % 50),
        point="trip_phase_a",
        signal="trip",
        severity="critical",
        value=True,
        quality=["NT"],
        device_time=wire.utcnow(),
        cause="spontaneous",
        cause_raw="SPONTANEOUS",
    )
    return Pending(
        wire.topic("s1", "gw1", "event", f"d{n % 20}"), "event", wire.encode_body(record)
    )


def appends(path: Path, threads: int, seconds: float, sync: str) -> tuple[float, int, int]:
    box = Outbox(path, synchronous=sync)
    box.open()
    stop = time.monotonic() + seconds
    counts = [0] * threads
    sample = body(1)

    def run(i: int) -> None:
        while time.monotonic() < stop:
            box.append_blocking([sample])
            counts[i] += 1

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.monotonic() - t0
    commits = box.commits
    box.close()
    return sum(counts) / elapsed, sum(counts), commits


def commit_per_row(path: Path, seconds: float, sync: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    sample = body(1).body
    n, stop = 0, time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < stop:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (body) VALUES (?)", (sample,))
        conn.execute("COMMIT")
        n += 1
    return n / (time.monotonic() - t0)


async def forward(path: Path, broker: Mosquitto, records: int, per_message: int) -> float:
    box = Outbox(path, synchronous="NORMAL")
    box.open()
    box.append_blocking([body(n) for n in range(records)])
    box.bind_loop(asyncio.get_running_loop())

    def birth(connection: int) -> wire.Birth:
        return wire.Birth(
            site="s1",
            gateway_id="gw1",
            session=box.session,
            seq=box.last_seq,
            gateway_time=wire.utcnow(),
            connection=connection,
            agent_version="bench",
        )

    uplink = Uplink(
        UplinkSettings(
            site="s1",
            gateway_id="gw1",
            host=broker.host,
            port=broker.port,
            max_records_per_message=per_message,
            max_in_flight=8,
        ),
        box,
        birth,
    )
    async with Collector(broker.host, broker.port):  # acknowledges what it receives
        t0 = time.monotonic()
        task = asyncio.create_task(uplink.run())
        while box.depth > 0:
            await asyncio.sleep(0.005)
        elapsed = time.monotonic() - t0
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    box.close()
    return records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print(f"== appends: {args.threads} threads, one record each, wait for commit ==")
        for sync in ("FULL", "NORMAL"):
            per_row = commit_per_row(d / f"row-{sync}.sqlite", args.seconds, sync)
            rate, n, commits = appends(d / f"g-{sync}.sqlite", args.threads, args.seconds, sync)
            print(
                f"synchronous={sync:6}: group commit {rate:9.0f} rec/s "
                f"({n / commits:5.1f} rec/commit)"
                f" | commit per row {per_row:8.0f} rows/s | ratio {rate / per_row:4.1f}x"
            )
        broker = Mosquitto(d / "mosq")
        broker.start()
        try:
            print("== forwarding a backlog to Mosquitto, QoS 1, until acknowledged end to end ==")
            single = asyncio.run(forward(d / "f1.sqlite", broker, 3000, 1))
            packed = asyncio.run(forward(d / "f2.sqlite", broker, 60000, 200))
            print(f"1 record/message   : {single:9.0f} rec/s")
            print(f"200 records/message: {packed:9.0f} rec/s | ratio {packed / single:4.1f}x")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
