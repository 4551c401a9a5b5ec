"""Center scale-out: one, two and three `relay-center serve` processes sharing one
PostgreSQL database through an MQTT shared subscription, in one run.

    .venv/bin/python -m bench.center_scaleout                  # 1, 2 and 3 centers
    .venv/bin/python -m bench.center_scaleout --centers 1 3 --sites 30 --records 90000
    .venv/bin/python -m bench.center_scaleout --rounds 3       # median of 3 rounds of 1, 2, 3

For each number of centers: a fresh database, a real Mosquitto, N center processes
(`$share/centers/relay/v1/#`, persistent sessions, PUBACK after commit), subscribed
before anything is published. Then gateways publish their streams at QoS 1 (messages of
`--per-message` records, like the agent's uplink batches): status events and
measurements, and per site `--incidents` protection incidents (three devices trip
within a second), an hour of event time apart so that each is exactly one ticket. The
rate is records stored / time from the first publish to the last record committed.
Afterwards it checks that every record is stored once, that each incident is one
ticket holding its three devices, and prints the CPU per record of the centers, of the
PostgreSQL backends and of the broker (from /proc, so the bench must run on the
database's machine), which says where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.center_ingest import PG_ADMIN, cpu_seconds, pg_database
from center.ingest import Message
from common import mqtt_client
from gateway import wire
from simulator.harness.broker import Mosquitto, free_port, mosquitto_binary

DEVICES = ("line1", "line2", "busbar")


def site_stream(site: int, n_records: int, incidents: int, per_message: int) -> list[Message]:
    """One gateway's records in outbox order: chatter, with `incidents` trip bursts."""
    name, gw = f"site{site}", f"gw-site{site}"
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    every = max(1, n_records // (incidents + 1))
    records: list[wire.Record] = []
    incident = 0
    for seq in range(1, n_records + 1):
        common: dict[str, Any] = {"site": name, "gateway_id": gw, "session": 1, "seq": seq}
        burst = seq % every
        signal: wire.Signal
        severity: wire.Severity
        if seq >= every and incident < incidents and burst < len(DEVICES):
            at = t0 + timedelta(hours=incident + 1, milliseconds=20 * burst)
            # Each incident on its own devices: a trip on a device whose ticket is still
            # open (nobody resolved it) joins that ticket instead of opening one.
            device = f"{DEVICES[burst]}-{incident}"
            point, signal, severity = "trip_phase_a", "trip", "critical"
            incident += burst == len(DEVICES) - 1
        else:
            at = t0 + timedelta(hours=incident, seconds=1 + seq % 3000)
            device = DEVICES[seq % len(DEVICES)]
            if seq % 5 == 0:
                records.append(
                    wire.Measurement(
                        **common, device_id=device, gateway_time=at, address="2001",
                        point="current_phase_a", value=float(seq % 400), unit="A",
                    )
                )  # fmt: skip
                continue
            point, signal, severity = "breaker_closed", "status", "info"
        records.append(
            wire.Event(
                **common, device_id=device, gateway_time=at, address="1", point=point,
                signal=signal, severity=severity, value=seq % 2 == 0 or signal == "trip",
                device_time=at,
            )
        )  # fmt: skip
    return [
        Message(
            wire.topic(name, gw, wire.BATCH_KIND), wire.encode_records(records[i : i + per_message])
        )
        for i in range(0, len(records), per_message)
    ]


def backend_pids(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [
            int(pid)
            for (pid,) in conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
        ]


_LOCK_SAMPLE = sa.text(
    "SELECT count(*) FILTER (WHERE wait_event = 'advisory'), "
    "count(*) FILTER (WHERE state IN ('active', 'idle in transaction')) "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return b'"subscribed":true' in r.read().replace(b" ", b"")
    except OSError:
        return False


async def wait_for(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


@dataclass
class Run:
    centers: int
    records: int
    seconds: float
    center_cpu: float
    pg_cpu: float
    broker_cpu: float
    tickets_ok: bool
    stored_once: bool
    lock_wait_share: float  # of the samples of busy center connections, waiting on a site lock


def center_config(workdir: Path, i: int, url: str, broker: Mosquitto, batch: int) -> Path:
    path = workdir / f"center{i}.toml"
    path.write_text(
        f'[center]\ninstance = "c{i}"\nstate_dir = "{workdir / f"state{i}"}"\n'
        'log_level = "WARNING"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "bench-c{i}"\n'
        f'shared_group = "centers"\nmax_batch_messages = {batch}\n'
        f'[database]\nurl = "{url}"\n'
        f"[api]\nport = {free_port()}\n"
        'tokens = [{ name = "b", token = "bench-token-0123456789" }]\n'
    )
    return path


async def publish(broker: Mosquitto, streams: list[list[Message]]) -> None:
    async def one(i: int, messages: list[Message]) -> None:
        client = mqtt_client.Client(broker.host, broker.port, identifier=f"bench-gw{i}")
        async with client:
            for m in messages:
                await client.publish(m.topic, m.payload, qos=1)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(streams)))


async def run_once(
    n: int, streams: list[list[Message]], incidents: int, batch: int, tmp: Path
) -> Run:
    url, admin, name = pg_database()
    workdir = tmp / f"centers{n}"
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    engine = sa.create_engine(url)
    try:
        configs = [center_config(workdir, i, url, broker, batch) for i in range(n)]
        for cfg in configs:
            log = (workdir / f"{cfg.stem}.log").open("ab")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "center.cli", "serve", "--config", str(cfg)],
                    stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        ports = [int(c.read_text().split("[api]\nport = ")[1].split("\n")[0]) for c in configs]
        await wait_for(lambda: all(healthy(p) for p in ports), 90, f"{n} centers subscribed")
        total = sum(len(wire.decode_envelope(m.payload)) for s in streams for m in s)

        samples: list[tuple[int, int]] = []

        def stored() -> int:
            """Records stored so far; samples how many center connections wait on a
            site lock (an advisory lock) against how many are busy."""
            with engine.connect() as conn:
                samples.append(tuple(conn.execute(_LOCK_SAMPLE).one()))
                return int(conn.execute(sa.text("SELECT count(*) FROM records")).scalar() or 0)

        pids = [p.pid for p in procs]
        assert broker.proc is not None
        broker_pid = broker.proc.pid
        pg_pids = backend_pids(engine)
        before = cpu_seconds(pids), cpu_seconds(pg_pids), cpu_seconds([broker_pid])
        start = time.perf_counter()
        await publish(broker, streams)
        await wait_for(lambda: stored() >= total, 600, f"{total} records stored")
        seconds = time.perf_counter() - start
        pg_pids = sorted(set(pg_pids) | set(backend_pids(engine)))
        after = cpu_seconds(pids), cpu_seconds(pg_pids), cpu_seconds([broker_pid])
        with engine.connect() as conn:
            distinct = conn.execute(
                sa.text("SELECT count(DISTINCT (gateway_id, session, seq)), count(*) FROM records")
            ).one()
            per_site = conn.execute(
                sa.text(
                    "SELECT t.site, count(DISTINCT t.id), count(m.subject) FROM tickets t "
                    "JOIN ticket_members m ON m.ticket_id = t.id "
                    "WHERE t.fault_class = 'protection_operation' GROUP BY t.site"
                )
            ).all()
        if per_site and not all(t == incidents for _, t, _ in per_site):
            print(f"    protection tickets per site (site, tickets, members): {per_site}")
        tickets_ok = len(per_site) == len(streams) and all(
            tickets == incidents and members == incidents * len(DEVICES)
            for _, tickets, members in per_site
        )
        return Run(
            n, total, seconds, after[0] - before[0], after[1] - before[1], after[2] - before[2],
            tickets_ok, distinct[0] == distinct[1] == total,
            sum(w for w, _ in samples) / max(1, sum(b for _, b in samples)),
        )  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def versions() -> str:
    import psycopg

    with sa.create_engine(PG_ADMIN).connect() as conn:
        pg = str(conn.execute(sa.text("SHOW server_version")).scalar())
    broker = subprocess.run(
        [mosquitto_binary() or "mosquitto", "-h"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    return (
        f"Python {platform.python_version()}, PostgreSQL {pg}, psycopg {psycopg.__version__}, "
        f"{broker}, {os.cpu_count()} CPUs"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--centers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--records", type=int, default=60_000, help="in all, over the sites")
    parser.add_argument("--per-message", type=int, default=200)
    parser.add_argument("--incidents", type=int, default=3, help="per site")
    parser.add_argument("--max-batch-messages", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    per_site = args.records // args.sites
    streams = [
        site_stream(i, per_site, args.incidents, args.per_message) for i in range(args.sites)
    ]
    print(f"command: {' '.join(sys.argv)}")
    print(versions())
    print(
        f"{args.sites} gateways x {per_site} records, {args.per_message}/message, "
        f"{args.incidents} incidents/site, max_batch_messages {args.max_batch_messages}"
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):  # the machine is shared: rounds, each 1..N
            for n in args.centers:
                run = asyncio.run(
                    run_once(n, streams, args.incidents, args.max_batch_messages, Path(tmp))
                )
                runs.append(run)
                rate = run.records / run.seconds
                print(f"  round {round_ + 1}: {n} center(s) {rate:,.0f} records/s")
    print(
        "centers  records/s (median)  ratio  center µs/rec  postgres µs/rec  broker µs/rec  "
        "waiting on a site lock  stored once  one ticket per incident"
    )
    base = statistics.median(r.records / r.seconds for r in runs if r.centers == args.centers[0])
    for n in args.centers:
        mine = [r for r in runs if r.centers == n]
        rate = statistics.median(r.records / r.seconds for r in mine)
        records = sum(r.records for r in mine)
        print(
            f"{n:7d}  {rate:17,.0f}  {rate / base:5.2f}  "
            f"{1e6 * sum(r.center_cpu for r in mine) / records:13.0f}  "
            f"{1e6 * sum(r.pg_cpu for r in mine) / records:15.0f}  "
            f"{1e6 * sum(r.broker_cpu for r in mine) / records:13.0f}  "
            f"{statistics.mean(r.lock_wait_share for r in mine):22.0%}  "
            f"{all(r.stored_once for r in mine)!s:>11}  {all(r.tickets_ok for r in mine)}"
        )
    return 0 if all(r.stored_once and r.tickets_ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
