"""Analytics benchmark on SQLite: the improvement report and the daily ageing job on a
fleet of 500 devices with 100,000 tickets and 2 million records, and the cost of the
clock-quality update at ingest (the same batches with it on and off, in one run).

    .venv/bin/python -m bench.analytics                       # the issue's sizes
    .venv/bin/python -m bench.analytics --records 200000 --tickets 10000   # quicker

Targets: report < 10 s, ageing job < 30 s, clock-quality update < 5 % of ingest.
The fleet is tests/support/fleet_history.py's synthetic history (3 years), padded with
periodic measurements to the record count; tickets are written straight to the tables.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from center.analytics.ageing_job import AgeingJob
from center.analytics.clock_tracker import ClockQualityTracker
from center.analytics.render_csv import render_csv
from center.analytics.render_html import render_html
from center.analytics.render_pdf import render_pdf
from center.analytics.report import improvement_report
from center.clock import ManualClock, SystemClock
from center.config import parse_config
from center.ingest import Ingestor, Message
from center.store.db import make_engine, migrate
from center.tickets.engine import TicketEngine
from gateway import wire
from tests.support.fleet_history import NOW, YEAR, fleet_config, seed_fleet, seed_tickets


def build(path: Path, records: int, tickets: int) -> tuple[sa.Engine, dict[str, Any]]:
    data = fleet_config()
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    t = time.perf_counter()
    # the fleet's own history is about 10,000 records over about 1,200 device-years:
    # measurements spread over each device's history make up the rest
    per_day = max(0.0, (records - 10_000) / (1_200 * 365.25))
    with engine.begin() as conn:
        seeded = seed_fleet(conn, data, measurements_per_day=per_day)
        made = seed_tickets(conn, data, tickets)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM records")).scalar()
    print(f"fleet: 500 devices, {n:,} records, {made:,} tickets "
          f"(built in {time.perf_counter() - t:.0f} s)")  # fmt: skip
    assert seeded.devices == 500
    return engine, data


def bench_report(engine: sa.Engine, data: dict[str, Any]) -> None:
    config = parse_config(data)
    start, end = NOW - 3 * YEAR, NOW
    t = time.perf_counter()
    with engine.connect() as conn:
        report = improvement_report(conn, config, start, end, NOW)
    figures = time.perf_counter() - t
    timings = {}
    for name, render in (("html", render_html), ("csv", render_csv), ("pdf", render_pdf)):
        t = time.perf_counter()
        render(report)
        timings[name] = time.perf_counter() - t
    print(f"report over 3 years ({report['summary']['tickets']:,} tickets): figures "
          f"{figures:.2f} s; + html {timings['html']:.2f} s, csv {timings['csv']:.2f} s, "
          f"pdf {timings['pdf']:.2f} s  (target < 10 s each: "
          f"{figures + max(timings.values()):.2f} s worst)")  # fmt: skip


def bench_ageing(engine: sa.Engine, data: dict[str, Any]) -> None:
    config = parse_config(data)
    job = AgeingJob(engine, TicketEngine(config, ManualClock(NOW)), ["hook"])
    t = time.perf_counter()
    run = job.run(NOW)
    print(f"ageing job: {time.perf_counter() - t:.2f} s (target < 30 s): {run.summary()}")


def spontaneous_batches(n: int, per_message: int, seed: int) -> list[Message]:
    """Events from 500 relays (50 gateways), each with a device time a few ms off."""
    rng = random.Random(seed)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    seqs: dict[str, int] = {}
    out, made = [], 0
    while made < n:
        site = f"s{rng.randrange(50):02d}"
        gw, dev = f"gw-{site}", f"{site}-d{rng.randrange(10):02d}"
        recs = []
        for _ in range(per_message):
            seqs[gw] = seqs.get(gw, 0) + 1
            at = t0 + timedelta(milliseconds=37 * made)
            recs.append(wire.Event(
                site=site, gateway_id=gw, device_id=dev, session=1, seq=seqs[gw],
                gateway_time=at, address="1", point="breaker_closed", signal="status",
                severity="info", value=rng.random() < 0.5, cause="SPONTANEOUS",
                device_time=at + timedelta(milliseconds=rng.gauss(20, 5)),
            ))  # fmt: skip
            made += 1
        out.append(Message(wire.topic(site, gw, "event", dev), wire.encode_records(recs)))
    return out


class TimedTracker(ClockQualityTracker):
    """The tracker, with the CPU time spent in it summed."""

    spent = 0.0

    def on_records(self, conn: Any, uow: Any, records: Any) -> None:
        t = time.process_time()
        super().on_records(conn, uow, records)
        self.spent += time.process_time() - t


def ingest_once(messages: list[Message], clock_on: bool, per_txn: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/c.sqlite")
        migrate(engine)
        config = parse_config({"analytics": {"clock": {"enabled": clock_on}}})
        clock = SystemClock()
        tickets = TicketEngine(config, clock)
        ingestor = Ingestor(engine, tickets, clock, ["hook"])
        tracker = ingestor.clock_quality = TimedTracker(config.analytics.clock, tickets)
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(messages), per_txn):
            ingestor.ingest(messages[i : i + per_txn])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        engine.dispose()
    if clock_on:
        print(f"    clock quality: {tracker.spent:.3f} CPU-s of {cpu:.3f} CPU-s of ingest "
              f"({100 * tracker.spent / cpu:.1f} %)")  # fmt: skip
    return wall, cpu


def bench_clock(records: int, rounds: int) -> None:
    messages = spontaneous_batches(records, 200, 3)
    per_txn = 4  # 800 records per transaction, as the MQTT worker batches
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(rounds):
        for on in (r % 2 == 0, r % 2 == 1):  # alternate the order against drift
            results[on].append(ingest_once(messages, on, per_txn))
    best = {on: (min(w for w, _ in v), min(c for _, c in v)) for on, v in results.items()}
    rate = {on: (records / w, records / c) for on, (w, c) in best.items()}
    cost_wall = 1 - rate[True][0] / rate[False][0]
    cost_cpu = 1 - rate[True][1] / rate[False][1]
    print(f"ingest of {records:,} spontaneous events from 500 relays, best of {rounds}: "
          f"clock quality off {rate[False][0]:,.0f}/s wall ({rate[False][1]:,.0f}/CPU-s), "
          f"on {rate[True][0]:,.0f}/s wall ({rate[True][1]:,.0f}/CPU-s): costs "
          f"{100 * cost_wall:.1f} % wall, {100 * cost_cpu:.1f} % CPU (target < 5 %)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--ingest-records", type=int, default=40_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip-fleet", action="store_true", help="only the ingest comparison")
    args = p.parse_args()
    if not args.skip_fleet:
        with tempfile.TemporaryDirectory() as tmp:
            engine, data = build(Path(tmp) / "fleet.sqlite", args.records, args.tickets)
            bench_report(engine, data)
            bench_ageing(engine, data)
            engine.dispose()
    bench_clock(args.ingest_records, args.rounds)


if __name__ == "__main__":
    main()
