"""Center benchmark: records ingested per second (SQLite, PostgreSQL) and trip-to-ticket latency.

    .venv/bin/python -m bench.center_ingest                 # both backends + latency
    .venv/bin/python -m bench.center_ingest --backend sqlite --records 100000

1. Ingest: envelopes of `--per-message` records (the agent's batching) through the
   center's ingest path (validation, idempotent insert, sequences, ticket engine, webhook
   outbox), one transaction per `--messages-per-txn` messages, as the MQTT worker does.
   The mix: 70 % status events, 20 % measurements, 8 % alarms/self-checks, 2 % trips,
   over 20 sites with 10 devices each. Prints the CPU per record of this process and, on
   a PostgreSQL on this machine, of its backend (from /proc): the figure that holds on a
   shared machine, where the wall rate follows the load.
2. Latency: a real Mosquitto and the whole `serve` path (MQTT in, commit, ticket). Trips
   on distinct sites are published one by one while background load flows; latency is
   from the trip's device time (stamped at publish) to the commit that opened its
   ticket. Tickets open on the first event, so no grouping window is included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from center.clock import SystemClock
from center.config import parse_config
from center.ingest import Ingestor, Message
from center.store.db import make_engine, migrate
from center.tickets.engine import TicketEngine
from common import mqtt_client
from gateway import wire

PG_ADMIN = os.environ.get("RELAY_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_messages(n_records: int, per_message: int, t0: datetime) -> list[Message]:
    rng = random.Random(7)
    out = []
    seqs: dict[str, int] = {}
    made = 0
    while made < n_records:
        site = f"site{rng.randrange(20)}"
        gw = f"gw-{site}"
        dev = f"dev{rng.randrange(10)}"
        roll = rng.random()
        kind = "measurement" if roll < 0.2 else "event"
        recs: list[wire.Record] = []
        for _ in range(min(per_message, n_records - made)):
            seqs[gw] = seqs.get(gw, 0) + 1
            at = t0 + timedelta(milliseconds=made)
            common: dict[str, Any] = {
                "site": site,
                "gateway_id": gw,
                "device_id": dev,
                "session": 1,
                "seq": seqs[gw],
                "gateway_time": at,
            }
            if kind == "measurement":
                recs.append(
                    wire.Measurement(
                        **common,
                        address="2001",
                        point="current_phase_a",
                        value=rng.random() * 400,
                        unit="A",
                    )
                )
            else:
                r = rng.random()
                sig: wire.Signal
                sev: wire.Severity
                if r < 0.02 / 0.8:
                    sig, point, sev = "trip", "trip_phase_a", "critical"
                elif r < 0.10 / 0.8:
                    sig, point, sev = (
                        ("self_check", "self_check_fail", "critical")
                        if r < 0.06 / 0.8
                        else ("alarm", "ct_circuit_alarm", "major")
                    )
                else:
                    sig, point, sev = "status", "breaker_closed", "info"
                recs.append(
                    wire.Event(
                        **common,
                        address="1",
                        point=point,
                        signal=sig,
                        severity=sev,
                        value=rng.random() < 0.5,
                        device_time=at,
                    )
                )
            made += 1
        out.append(Message(wire.topic(site, gw, kind, dev), wire.encode_records(recs)))
    return out


def bench_ingest(url: str, messages: list[Message], per_txn: int) -> tuple[float, int]:
    engine = make_engine(url)
    migrate(engine)
    config = parse_config(
        {"webhooks": [{"name": "itsm", "url": "http://127.0.0.1:9/", "secret": "x" * 16}]}
    )
    clock = SystemClock()
    ingestor = Ingestor(engine, TicketEngine(config, clock), clock, ["itsm"])
    server = server_pids(engine)
    start, cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(server)
    for i in range(0, len(messages), per_txn):
        ingestor.ingest(messages[i : i + per_txn])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    server_cpu = cpu_seconds(server) - server_cpu
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM records")).scalar() or 0
        tickets = conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar()
    engine.dispose()
    print(
        f"    stored {stored} records, {tickets} tickets in {elapsed:.2f}s wall, "
        f"{cpu:.2f}s CPU of this process ({1e6 * cpu / stored:.0f} µs/record)"
        + (
            f", {server_cpu:.2f}s of PostgreSQL's ({1e6 * server_cpu / stored:.0f} µs/record)"
            if server
            else ""
        )
    )
    return stored / elapsed, stored


def server_pids(engine: sa.Engine) -> list[int]:
    """PostgreSQL's backend processes serving this engine's pool (one connection: the
    ingestor's), when the server runs on this machine: their CPU is part of the cost."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        pid = int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() or 0)
    return [pid] if Path(f"/proc/{pid}/stat").exists() else []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (0 for one that ended)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pg_database() -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"center_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", admin, name


async def poll(check: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def bench_latency(url: str, trips: int, workdir: Path) -> list[float]:
    from center.server import CenterService
    from tests.support.mosquitto import Mosquitto, free_port

    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    try:
        config = parse_config(
            {
                "mqtt": {"host": broker.host, "port": broker.port, "client_id": "bench-center"},
                "database": {"url": url},
                "api": {"enabled": False, "port": free_port()},
            }
        )
        service = await asyncio.to_thread(CenterService, config)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await poll(lambda: bool(service.mqtt_status.get("subscribed")), 30)
        background = make_messages(40_000, 200, datetime.now(UTC))
        async with mqtt_client.Client(broker.host, broker.port, identifier="bench-gw") as client:

            async def load() -> None:  # ~4,000 records/s of background traffic
                for m in background:
                    await client.publish(m.topic, m.payload, qos=1)
                    await asyncio.sleep(0.05)

            loader = asyncio.create_task(load())
            for i in range(trips):
                now = datetime.now(UTC)
                trip = wire.Event(
                    site=f"lat{i}",
                    gateway_id=f"gw-lat{i}",
                    device_id="line1",
                    session=1,
                    seq=1,
                    gateway_time=now,
                    address="1011",
                    point="trip_phase_a",
                    signal="trip",
                    severity="critical",
                    value=True,
                    device_time=now,
                )
                await client.publish(
                    wire.topic(f"lat{i}", f"gw-lat{i}", "event", "line1"),
                    wire.encode_records([trip]),
                    qos=1,
                )
                await asyncio.sleep(0.1)
            loader.cancel()
        deadline = time.monotonic() + 60

        def measured() -> int:
            return sum(site.startswith("lat") for site, _ in service.counters.latency_samples())

        await poll(lambda: measured() >= trips, max(0.0, deadline - time.monotonic()))
        samples = [x for site, x in service.counters.latency_samples() if site.startswith("lat")]
        stop.set()
        await task
        return samples
    finally:
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--per-message", type=int, default=200)
    parser.add_argument("--messages-per-txn", type=int, default=1)
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    messages = make_messages(args.records, args.per_message, datetime.now(UTC) - timedelta(days=1))
    print(
        f"ingest: {args.records} records, {args.per_message}/message, "
        f"{args.messages_per_txn} message(s)/transaction"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "sqlite":
                rate, _ = bench_ingest(
                    f"sqlite:///{tmp}/bench.sqlite", messages, args.messages_per_txn
                )
            else:
                url, admin, name = pg_database()
                try:
                    rate, _ = bench_ingest(url, messages, args.messages_per_txn)
                finally:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            print(f"  {backend}: {rate:,.0f} records/s")
        if not args.skip_latency:
            url = f"sqlite:///{tmp}/latency.sqlite"
            samples = sorted(asyncio.run(bench_latency(url, args.trips, Path(tmp))))
            if samples:
                p50 = statistics.median(samples) * 1000
                p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1000
                print(
                    f"trip-to-ticket (sqlite, via Mosquitto, under ~4k records/s load): "
                    f"n={len(samples)} p50={p50:.1f} ms p99={p99:.1f} ms "
                    f"max={samples[-1] * 1000:.1f} ms"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
