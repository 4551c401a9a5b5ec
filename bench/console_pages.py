"""Console benchmark: server time of the queue and ticket pages on SQLite with 10,000 tickets
and a 500-event ticket, and the queue page's weight with all its assets.

    .venv/bin/python -m bench.console_pages                  # 10,000 tickets, 40 rounds
    .venv/bin/python -m bench.console_pages --tickets 2000 --rounds 10

The 10,000 tickets are written straight into the tables (varied sites, service points,
fault classes, priorities and states, 1-3 devices and 3 timeline entries each); the
500-event ticket comes through the real ingest path (a protection operation of 5 relays,
starts and trips raised and cleared within the grouping window), and so does a trip with a
10-channel disturbance record of 20,000 samples (the page parses it and draws its
waveforms on every view). Pages are served by the
real app in process (FastAPI's TestClient, logged in as an operator); the time is from
request to the last byte, so it includes the ASGI round trip: an upper bound of the
server's own time. Goals (issue): p95 < 200 ms; queue page weight < 500 KB.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient
from sqlalchemy import select

from agent.disturbance import transfer_records
from agent.normalize import DeviceContext
from center.api import ApiContext, create_app
from center.auth.users import UserStore
from center.clock import SystemClock
from center.config import parse_config
from center.ingest import Counters, Ingestor, Message
from center.store import schema as s
from center.store.db import make_engine, migrate
from center.ticket_service import TicketService
from center.tickets.engine import TicketEngine
from gateway import wire
from protocols.profile_loader import load_named
from tests.center.records import Gateway, message
from tests.support.disturbance_synth import Fault, observation

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
FAULTS = ["protection_operation", "self_check", "comms", "settings_drift", "firmware_drift"]
STATES = ["open"] * 2 + ["acknowledged"] + ["resolved"] * 3 + ["closed"] * 4


def fill_tickets(engine: Any, n: int) -> None:
    rng = random.Random(11)
    tickets, members, timeline = [], [], []
    for i in range(1, n + 1):
        site = f"site{rng.randrange(50):02d}"
        fault = rng.choice(FAULTS)
        state = rng.choice(STATES)
        devices = rng.sample([f"relay{d}" for d in range(12)], rng.randint(1, 3))
        at = T0 - timedelta(minutes=n - i)
        tickets.append(
            {
                "id": i, "key": f"{site}/{devices[0]}/{fault}/{i}", "site": site,
                "subject": devices[0], "device_id": devices[0], "fault_class": fault,
                "kind": "discrete" if fault == "protection_operation" else "condition",
                "state": state, "muted": False, "episode": 1,
                "priority": rng.choice(["P1", "P2", "P2", "P3", "P3", "P4"]),
                "severity": "major", "criticality": "normal", "region": f"r{int(site[4:]) % 5}",
                "service_point": f"sp-{int(site[4:]) % 5}",
                "title": f"{fault.replace('_', ' ')} at {site}: {', '.join(sorted(devices))}",
                "occurrences": rng.randint(1, 4), "reopen_count": 0, "flapping": False,
                "condition_active": False, "opened_at": at, "updated_at": at,
                "first_event_at": at, "last_event_at": at, "revision": 1,
            }
        )  # fmt: skip
        members += [
            {"ticket_id": i, "subject": d, "site": site, "fault_class": fault} for d in devices
        ]
        timeline += [
            {"ticket_id": i, "at": at, "recorded_at": at, "entry": e, "subject": devices[0],
             "summary": f"{devices[0]}: {e}"}
            for e in ("opened", "event", "event")
        ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(s.tickets.insert(), tickets)
        conn.execute(s.ticket_members.insert(), members)
        conn.execute(s.timeline.insert(), timeline)


def big_incident(engine: Any, config: Any, events: int) -> int:
    """One protection operation of 5 relays with `events` events, through ingest."""
    clock = SystemClock()
    ingestor = Ingestor(engine, TicketEngine(config, clock), clock, [], Counters())
    start = T0 + timedelta(hours=1)
    for n in range(events):
        device = f"bay{n % 5}"
        signal: wire.Signal = "trip" if n % 4 in (1, 2) else "start"
        at = start + timedelta(milliseconds=n * 8)
        record = wire.Event(
            site="big", gateway_id="gw-big", device_id=device, session=1, seq=n + 1,
            gateway_time=at, address=str(1000 + n % 7), point=f"{signal}_phase_{'ABC'[n % 3]}",
            label=signal, signal=signal, severity="critical" if signal == "trip" else "major",
            value=(n // 5) % 2 == 0, device_time=at,
        )  # fmt: skip
        topic = wire.topic("big", "gw-big", "event", device)
        ingestor.ingest([Message(topic, wire.encode_records([record]))])
    with engine.connect() as conn:
        t = s.tickets.c
        tid = conn.execute(s.tickets.select().where(t.site == "big")).mappings().first()["id"]
        count = conn.execute(s.timeline.select().where(s.timeline.c.ticket_id == tid)).all()
    print(f"ticket {tid}: {len(count)} timeline entries")
    return int(tid)


def record_incident(engine: Any, config: Any, samples: int) -> int:
    """A trip with a 10-analog, 2-status disturbance record of `samples` samples attached,
    through ingest as the agent sends it (manifest, then its chunks)."""
    clock = SystemClock()
    ingestor = Ingestor(engine, TicketEngine(config, clock), clock, [], Counters())
    gw = Gateway(site="wave", gateway_id="gw-wave")
    trigger = T0 + timedelta(hours=2)
    fault = Fault(duration_ms=samples / 5, interval_us=200, extra_channels=4, trigger_time=trigger)
    ctx = DeviceContext("wave", "gw-wave", "line1", "iec103", load_named("line-protection"))
    manifest, chunks = transfer_records(ctx, observation(fault, "line1"), trigger)
    ids = {"session": gw.session, "seq": 2}
    trip = gw.event("line1", "trip_phase_a", True, trigger, signal="trip", severity="critical")
    for r in (trip, manifest.model_copy(update=ids), *[c.model_copy(update=ids) for c in chunks]):
        ingestor.ingest([message(r)])
    with engine.connect() as conn:
        d = s.disturbance_records.c
        tid = conn.execute(select(d.ticket_id).where(d.status == "complete")).scalar_one()
    print(f"ticket {tid}: a record of {samples:,} samples x 10 analog channels")
    return int(tid)


def timed(client: TestClient, url: str, rounds: int, **kw: Any) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(rounds):
        t = time.perf_counter()
        r = client.get(url, **kw)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code)
        size = len(r.content)
    return times, size


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 2 else xs[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tickets", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--record-samples", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/center.sqlite")
        migrate(engine)
        config = parse_config({"tickets": {"grouping_window_s": 10}})
        t = time.perf_counter()
        fill_tickets(engine, args.tickets)
        big = big_incident(engine, config, args.events)
        wave = record_incident(engine, config, args.record_samples)
        print(f"setup: {args.tickets} tickets + {args.events}-event ticket in "
              f"{time.perf_counter() - t:.1f} s")  # fmt: skip
        UserStore(engine).add("bench", "bench-password", "operator", by="bench", via="cli",
                              now=T0)  # fmt: skip
        service = TicketService(engine, TicketEngine(config, SystemClock()), [])
        client = TestClient(create_app(ApiContext(config, engine, service, Counters())))
        login = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"username": "bench", "password": "bench-password",
                                    "csrf": csrf, "next": "/queue"})  # fmt: skip
        pages = [
            ("queue (open + acknowledged)", "/queue", {}),
            ("queue, all states, page 100", "/queue?state=all&page=100", {}),
            ("queue, site + fault class", "/queue?state=all&site=site07&fault_class=comms", {}),
            ("queue, by device", "/queue?state=all&device=bay1", {}),
            ("queue live update (fragment)", "/queue", {"headers": {"X-Console-Fragment": "q"}}),
            (f"ticket with {args.events} events", f"/tickets/{big}", {}),
            ("ticket, small", "/tickets/5000", {}),
            (f"ticket with a {args.record_samples:,}-sample record", f"/tickets/{wave}", {}),
        ]
        cold, _ = timed(client, f"/tickets/{wave}", 1)  # reads and draws the record
        print(f"ticket with the record, first view (record read and drawn): {cold[0]:.1f} ms")
        print(f"\n{'page':38} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'bytes':>9}")
        worst = 0.0
        for name, url, kw in pages:
            timed(client, url, 2, **kw)  # warm: templates compiled, caches filled
            times, size = timed(client, url, args.rounds, **kw)
            worst = max(worst, p95(times))
            print(f"{name:38} {statistics.median(times):8.1f} {p95(times):8.1f} "
                  f"{max(times):8.1f} {size:9,}")  # fmt: skip
        html = client.get("/queue").content
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html.decode())
        weight = len(html) + sum(len(client.get(a).content) for a in set(assets))
        print(f"\nworst p95: {worst:.1f} ms (goal < 200 ms)")
        print(f"queue page weight with {len(set(assets))} assets: {weight / 1024:.1f} KB "
              f"(goal < 500 KB)")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
