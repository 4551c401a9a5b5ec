"""The agent against a bare c104 client on the same IEC 104 outstations, in one run.

    .venv/bin/python bench/compare_c104.py               # every case, one table
    .venv/bin/python bench/compare_c104.py --profile     # and py-spy on the one-link case
    .venv/bin/python bench/compare_c104.py --quick       # only the one-link and 20-link cases
    .venv/bin/python bench/compare_c104.py --quick --threads  # and CPU per thread (/proc)
    .venv/bin/python bench/compare_c104.py --quick --backlog  # and one relay's backlog

Every case runs twice, once read by the agent (durable in its outbox, then at a
subscriber after the broker's PUBACK) and once by a bare c104 client in its own process
(it only counts: no conversion, no outbox, no MQTT), each time against fresh
`buffered104_outstation.py` relays: one event per ASDU, each relay keeping its events in
a buffer of 100 that overwrites the oldest when the master is slow, as a relay does.
What the outstation overwrote, or sent and never saw acknowledged, is "lost at the
outstation": a loss no master can see, counted by the outstation itself.

Cases (the goals of docs/performance.md, printed beside the figures):
- one link, 2,000 ASDUs/s offered, 4,000 events;
- 20 links, 6,000 ASDUs/s offered for 5 s;
- capacity: 20 links, unbounded buffers, 10,000/s offered for 2 s: the rate each master
  drains a backlog at, with nothing lost;
- one-backlog: one link, unbounded buffer, 10,000 events at 20,000/s: one relay's backlog;
- plateau: 20 links offered twice the agent's capacity measured just before;
- CPU contention: the 20-link case with one busy process per core running beside it
  (started and stopped by the bench, each bounded to 120 s).

Outstation, agent, broker and bare client share the machine's cores: read figures as this
machine's, and ratios within one run as the comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from agent_spine import POINTS, Subscriber, agent_config  # noqa: E402
from bare104_client import rate_and_latency  # noqa: E402
from ports import free_port_run  # noqa: E402
from pyspy_top import PY_SPY, top_costs  # noqa: E402
from thread_cpu import CpuTrace, ThreadTrace, naming_env  # noqa: E402

from simulator.harness.broker import Mosquitto  # noqa: E402

BUFFER = 100  # events a relay keeps for its master (c104's own server keeps 100 messages)


@dataclass
class Case:
    name: str
    relays: int
    rate: float
    events: int
    buffer: int = BUFFER
    hogs: int = 0


@dataclass
class Result:
    delivered: int = 0
    rate: float = 0.0
    cpu_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    outstation: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_s / self.delivered if self.delivered else 0.0

    @property
    def lost_at_outstation(self) -> int:
        o = self.outstation
        return int(o["overwritten"] + o["sent"] - o["acked"] + o["left_in_buffer"])


# --- one case, one master ---------------------------------------------------------------------


def start_hogs(count: int) -> list[subprocess.Popen[bytes]]:
    """Busy loops competing for the cores, each ending by itself after 120 s."""
    loop = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass\n"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


async def read_line(stream: asyncio.StreamReader, limit_s: float) -> str:
    line = await asyncio.wait_for(stream.readline(), limit_s)
    if not line:
        raise RuntimeError("outstation exited early (see its outstation.log)")
    return line.decode().strip()


async def settle(count: Callable[[], int], quiet: float = 1.5, limit: float = 30.0) -> None:
    """Wait until `count()` stops changing for `quiet` seconds (at most `limit`)."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.2)


async def start_outstation(case: Case, work: Path) -> tuple[asyncio.subprocess.Process, int]:
    """The case's outstations on a run of free ports (retried: the machine is shared)."""
    for _ in range(3):
        base_port = free_port_run(case.relays)
        outstation = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH / "buffered104_outstation.py"),
            "--relays", str(case.relays), "--rate", str(case.rate), "--events", str(case.events),
            "--buffer", str(case.buffer), "--base-port", str(base_port),
            "--wait-for-clients", str(case.relays), "--points", str(POINTS),
            stdout=asyncio.subprocess.PIPE, stderr=(work / "outstation.log").open("a"),
        )  # fmt: skip
        assert outstation.stdout is not None
        with contextlib.suppress(RuntimeError):
            await read_line(outstation.stdout, 30)  # listening
            return outstation, base_port
        await outstation.wait()
    raise RuntimeError("the outstations could not listen")


async def run_case(
    case: Case,
    side: str,
    root: Path,
    profile_to: Path | None = None,
    gil_only: bool = False,
    threads: bool = False,
) -> Result:
    work = root / f"{case.name}-{side}-{time.monotonic_ns()}"
    work.mkdir()
    outstation, base_port = await start_outstation(case, work)
    assert outstation.stdout is not None
    hogs = start_hogs(case.hogs)
    broker: Mosquitto | None = None
    sub: Subscriber | None = None
    task: asyncio.Task[None] | None = None
    spy: subprocess.Popen[bytes] | None = None
    if side == "agent":
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        sub = Subscriber(broker)
        ready = asyncio.Event()
        task = asyncio.create_task(sub.run(ready))
        await ready.wait()
        config = agent_config(work, case.relays, base_port, broker)
        master = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config),
             "--log-level", "warning"],
            stdout=(work / "agent.log").open("a"), stderr=subprocess.STDOUT, cwd=ROOT,
            env=naming_env() if threads else None,
        )  # fmt: skip
    else:
        master = subprocess.Popen(
            [sys.executable, str(BENCH / "bare104_client.py"), str(case.relays), str(base_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
            env=naming_env() if threads else None,
        )  # fmt: skip
    try:
        if await read_line(outstation.stdout, 60) != "generating":
            raise RuntimeError("outstation did not start generating")
        trace = CpuTrace(master.pid)
        per_thread = ThreadTrace(master.pid, threads)
        if profile_to is not None and PY_SPY.exists():
            spy = subprocess.Popen(
                [str(PY_SPY), "record", "--pid", str(master.pid), "--format", "raw",
                 "--output", str(profile_to), "--rate", "250", "--nonblocking",
                 *(["--gil"] if gil_only else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        totals = json.loads(await read_line(outstation.stdout, case.events / case.rate + 120))
        await outstation.wait()
        result = Result(outstation=totals)
        if sub is not None:
            await settle(lambda: sub.events)
            result.cpu_s = trace.until(sub.arrivals[-1] if sub.arrivals else time.time())
            result.delivered = sub.events
            per_thread.stop()
            per_thread.report(sub.events, f"agent, {case.name}, per thread")
            result.rate, result.p50_ms, result.p99_ms = rate_and_latency(
                sub.arrivals, sub.latencies
            )
        else:
            per_thread.stop()
            out, _ = master.communicate(b"stop\n", timeout=30)
            bare = json.loads(out.decode().strip().splitlines()[-1])
            result.cpu_s = trace.until(bare["last"] or time.time())
            result.delivered, result.rate = bare["delivered"], bare["rate"]
            result.p50_ms, result.p99_ms = bare["p50"], bare["p99"]
            per_thread.report(result.delivered, f"bare c104, {case.name}, per thread")
        return result
    finally:
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(30)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if master.poll() is None:
            master.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                master.wait(20)
            if master.poll() is None:
                master.kill()
        if outstation.returncode is None:
            outstation.kill()
            await outstation.wait()
        for hog in hogs:
            hog.kill()
            hog.wait()
        if broker is not None:
            broker.stop()


# --- the report -------------------------------------------------------------------------------


def versions() -> str:
    from importlib import metadata

    mosquitto = subprocess.run(
        ["mosquitto", "-h"], check=False, capture_output=True, text=True
    ).stdout
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    return (
        f"relay-service {metadata.version('relay-service')} ({commit}), "
        f"c104 {metadata.version('c104')}, Python {platform.python_version()}, "
        f"{mosquitto.splitlines()[0] if mosquitto else 'mosquitto ?'}, "
        f"{os.cpu_count()} cores"
    )


def fmt_pair(r: Result) -> str:
    return f"{r.delivered:,} ({r.rate:,.0f}/s)"


def report(
    results: dict[str, tuple[Result, Result]], cases: dict[str, Case], capacity: float
) -> None:
    rows: list[tuple[str, str, str, str, str]] = []

    def share(name: str) -> float:
        bare, agent = results[name]
        return agent.delivered / bare.delivered if bare.delivered else 0.0

    def lost(name: str) -> str:
        def parts(r: Result) -> str:
            o = r.outstation
            unacked = int(o["sent"] - o["acked"] + o["left_in_buffer"])
            return f"{r.lost_at_outstation:,} ({int(o['overwritten']):,} + {unacked:,})"

        bare, agent = results[name]
        return f"{parts(bare)} / {parts(agent)}"

    def cpu(name: str) -> str:
        bare, agent = results[name]
        ratio = agent.cpu_us_per_event / bare.cpu_us_per_event if bare.cpu_us_per_event else 0
        return f"{bare.cpu_us_per_event:.0f} / {agent.cpu_us_per_event:.0f} us = {ratio:.1f}x"

    for name, case in cases.items():
        bare, agent = results[name]
        offered = f"{case.relays} link(s), {case.rate:,.0f}/s, {case.events:,} ev"
        if case.buffer == 0:
            offered += ", unbounded"
        if case.hogs:
            offered += f", {case.hogs} hogs"
        rows.append((name, offered, fmt_pair(bare), fmt_pair(agent), f"{share(name):.0%}"))
    print()
    print(f"{'case':<11} {'offered':<40} {'bare c104':>19} {'agent':>19} {'agent/bare':>10}")
    for row in rows:
        print(f"{row[0]:<11} {row[1]:<40} {row[2]:>19} {row[3]:>19} {row[4]:>10}")
    print()
    print("lost at the outstation (overwritten + never acknowledged), bare / agent:")
    for name in cases:
        print(f"  {name:<11} {lost(name)}")
    print("CPU per event, bare / agent:")
    for name in cases:
        print(f"  {name:<11} {cpu(name)}")
    one = results["one-link"][1]
    twenty = results["20-links"][1]
    print()
    print("goals                                              measured now              goal")
    print(f"  one link: share of bare, lost at outstation      {share('one-link'):>5.0%}, "
          f"{one.lost_at_outstation:,} lost{'':>8} >= 95%, 0 lost")  # fmt: skip
    print(f"  20 links, one event per ASDU, durable rate       {twenty.rate:>7,.0f} ev/s"
          f"{'':>12} >= 5,000 ev/s")  # fmt: skip
    b1, a1 = results["one-link"]
    b20 = results["20-links"][0]
    print(f"  agent CPU/event over bare (one link / 20 links)  "
          f"{a1.cpu_us_per_event / max(b1.cpu_us_per_event, 1e-9):>4.1f}x / "
          f"{twenty.cpu_us_per_event / max(b20.cpu_us_per_event, 1e-9):.1f}x"
          f"{'':>12} <= 2x")  # fmt: skip
    if "plateau" not in results:
        return
    plateau = results["plateau"][1]
    hog_bare, hog_agent = results["cpu-hog"]
    print(f"  offered 2x capacity ({capacity:,.0f}/s): rate / capacity  "
          f"{plateau.rate / max(capacity, 1e-9):>5.0%}{'':>19} >= 90%")  # fmt: skip
    print(f"  under a CPU hog: agent rate / bare rate          "
          f"{hog_agent.rate / max(hog_bare.rate, 1e-9):>5.0%}{'':>19} >= 70%")  # fmt: skip


def run_directory() -> Path:
    """Each case's logs and the outstation's, kept until the next run for a look after."""
    path = ROOT / "var" / "bench" / "c104-run"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


async def both(case: Case, work: Path, threads: bool = False) -> tuple[Result, Result]:
    pair = (
        await run_case(case, "bare", work, threads=threads),
        await run_case(case, "agent", work, threads=threads),
    )
    print(f"{case.name}: bare {fmt_pair(pair[0])}, agent {fmt_pair(pair[1])}", flush=True)
    return pair


async def run_all(args: argparse.Namespace) -> None:
    cases = {
        "one-link": Case("one-link", 1, 2000, 4000),
        "20-links": Case("20-links", 20, 6000, 30000),
    }
    if not args.quick or args.backlog:
        cases["one-backlog"] = Case("one-backlog", 1, 20000, 10000, buffer=0)
    if not args.quick:
        cases["capacity"] = Case("capacity", 20, 10000, 20000, buffer=0)
    work = run_directory()
    results = {name: await both(case, work, args.threads) for name, case in cases.items()}
    capacity = results["capacity"][1].rate if "capacity" in results else 0.0
    if not args.quick:
        offered = max(2 * capacity, 500.0)
        cases["plateau"] = Case("plateau", 20, round(offered), round(offered * 5))
        cases["cpu-hog"] = Case("cpu-hog", 20, 6000, 30000, hogs=os.cpu_count() or 2)
        for name in ("plateau", "cpu-hog"):
            results[name] = await both(cases[name], work)
    print(f"\n{versions()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"logs: {work.relative_to(ROOT)}/<case>-<master>-*/")
    report(results, cases, capacity)
    if not args.profile:
        return
    if not PY_SPY.exists():
        print(f"\nno profile: {PY_SPY} missing (pip install py-spy into that venv)")
        return
    # Threads' time (waits included: where an event's time goes), then only the samples
    # of the thread holding the GIL (where the CPU goes).
    for name, gil_only in (("one-link", False), ("20-links", False), ("20-links", True)):
        raw = work / f"agent-{name}{'-gil' if gil_only else ''}.txt"
        await run_case(cases[name], "agent", work, profile_to=raw, gil_only=gil_only)
        if raw.exists():
            what = "the thread holding the GIL" if gil_only else "all threads, waits included"
            print(f"\npy-spy on the agent, {name} case, {what}:")
            top_costs(raw)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--profile",
        action="store_true",
        help=f"then profile the agent, one and 20 links ({PY_SPY})",
    )
    p.add_argument("--backlog", action="store_true", help="with --quick: and one-backlog")
    p.add_argument("--quick", action="store_true",
                   help="only the one-link and 20-link cases")  # fmt: skip
    p.add_argument("--threads", action="store_true",
                   help="and each master's CPU per thread (bench/thread_cpu.py)")  # fmt: skip
    asyncio.run(run_all(p.parse_args()))


if __name__ == "__main__":
    main()
