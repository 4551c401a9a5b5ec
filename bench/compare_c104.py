"""The agent against a bare c104 client on the same IEC 104 outstations, in one run.

    .venv/bin/python bench/compare_c104.py               # every case, one table
    .venv/bin/python bench/compare_c104.py --profile     # and py-spy on the one-link case
    .venv/bin/python bench/compare_c104.py --quick       # only the one-link and 20-link cases
    .venv/bin/python bench/compare_c104.py --quick --threads  # and CPU per thread (/proc)
    .venv/bin/python bench/compare_c104.py --quick --backlog  # and one relay's backlog
    .venv/bin/python bench/compare_c104.py --quick --pin      # masters alone on one core
    .venv/bin/python bench/compare_c104.py --quick --repeat 5 # 5 pairs a case, median ratio
    .venv/bin/python bench/compare_c104.py --quick --state-on /dev/shm  # diagnostic, below

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
machine's, and ratios within one run as the comparison. With `--pin` the master (agent or
bare client) runs alone on the first core and everything else (outstations, broker,
subscriber, the bench) on the others, as on a gateway, where the relays and the center
are other machines: what each master costs without another process's work in its caches.
`--state-on /dev/shm` puts the agent's outbox on tmpfs, where `fdatasync` costs nothing: not
the product (nothing would survive a power loss), but it shows how much of the agent's cost
is this machine's flush (in a VM, a VM exit per flush) rather than the agent's own work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from agent_spine import POINTS, Subscriber, agent_config  # noqa: E402
from bare104_client import rate_and_latency  # noqa: E402
from c104_cases import Case, Result, cpu_ratio, fmt_pair, report, versions  # noqa: E402
from ports import free_port_run  # noqa: E402
from pyspy_top import PY_SPY, top_costs  # noqa: E402
from thread_cpu import CpuTrace, ThreadTrace, naming_env  # noqa: E402

from simulator.harness.broker import Mosquitto  # noqa: E402

MASTER_CPUS: set[int] = set()  # --pin: the master's cores (the rest run everything else)
STATE_ROOT: Path | None = None  # --state-on: the agent's outbox elsewhere (a diagnostic)
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
    agent_from: Path = ROOT,
) -> Result:
    """One case read by one master (`side`: "agent" or "bare"); the agent runs from
    `agent_from`, a checkout whose packages shadow the installed ones (`python -m` puts the
    working directory first on the path: bench/interleave_revs.py)."""
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
        config = agent_config(work, case.relays, base_port, broker, STATE_ROOT)
        master = subprocess.Popen(
            [*pinned(), sys.executable, "-m", "agent.cli", "run", "--config", str(config),
             "--log-level", "warning"],
            stdout=(work / "agent.log").open("a"), stderr=subprocess.STDOUT, cwd=agent_from,
            env=naming_env() if threads else None,
        )  # fmt: skip
    else:
        master = subprocess.Popen(
            [*pinned(), sys.executable, str(BENCH / "bare104_client.py"), str(case.relays),
             str(base_port)],
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


def run_directory() -> Path:
    """Each case's logs and the outstation's, kept until the next run for a look after."""
    path = ROOT / "var" / "bench" / "c104-run"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def pinned() -> list[str]:
    """The master's command prefix: onto `MASTER_CPUS` with --pin (util-linux's taskset)."""
    return ["taskset", "-c", ",".join(map(str, sorted(MASTER_CPUS)))] if MASTER_CPUS else []


async def both(
    case: Case, work: Path, threads: bool = False, repeat: int = 1
) -> tuple[Result, Result]:
    """The case read by each master; with `repeat`, that many pairs, the halves in
    alternating order (bare first, then the agent first, ...), and the pair of the median
    CPU ratio is the one reported: a machine that changes speed between the two halves
    of one pair moves that pair's ratio, not the median."""
    pairs: list[tuple[Result, Result]] = []
    for n in range(repeat):
        sides = ("bare", "agent") if n % 2 == 0 else ("agent", "bare")
        got = {side: await run_case(case, side, work, threads=threads) for side in sides}
        pair = got["bare"], got["agent"]
        pairs.append(pair)
        print(f"{case.name}: bare {fmt_pair(pair[0])}, agent {fmt_pair(pair[1])}, "
              f"CPU {cpu_ratio(pair):.2f}x", flush=True)  # fmt: skip
    if repeat > 1:
        ratios = sorted(cpu_ratio(pair) for pair in pairs)
        print(f"{case.name}: CPU per event over bare, {repeat} pairs: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}x", flush=True)  # fmt: skip
    return sorted(pairs, key=cpu_ratio)[len(pairs) // 2]


async def run_all(args: argparse.Namespace) -> None:
    cases = {
        "one-link": Case("one-link", 1, 2000, 4000),
        "20-links": Case("20-links", 20, 6000, 30000),
    }
    if not args.quick or args.backlog:
        cases["one-backlog"] = Case("one-backlog", 1, 20000, 10000, buffer=0)
    if not args.quick:
        cases["capacity"] = Case("capacity", 20, 10000, 20000, buffer=0)
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs two cores")
        MASTER_CPUS.add(cpus[0])
        os.sched_setaffinity(0, set(cpus[1:]))  # the bench and what it starts
        print(f"pinned: masters on core {cpus[0]}, the rest on {cpus[1:]}")
    work = run_directory()
    results = {
        name: await both(case, work, args.threads, args.repeat) for name, case in cases.items()
    }
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
    p.add_argument("--pin", action="store_true",
                   help="with --quick: the master alone on a core")  # fmt: skip
    p.add_argument("--repeat", type=int, default=1,
                   help="with --quick: pairs per case, halves alternating; the median "
                        "CPU ratio's pair is reported")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="only the one-link and 20-link cases")  # fmt: skip
    p.add_argument("--threads", action="store_true",
                   help="and each master's CPU per thread (bench/thread_cpu.py)")  # fmt: skip
    p.add_argument("--state-on", type=Path, metavar="DIR",
                   help="a diagnostic, not the product's figures: the agent's outbox under "
                        "DIR (/dev/shm: what it costs where a flush costs no CPU)")  # fmt: skip
    args = p.parse_args()
    global STATE_ROOT
    STATE_ROOT = args.state_on
    if args.pin and not args.quick:
        p.error("--pin goes with --quick (the CPU-hog case places its own busy processes)")
    if args.repeat != 1 and not args.quick:
        p.error("--repeat goes with --quick (the plateau case is sized by one capacity run)")
    if args.repeat < 1:
        p.error("--repeat needs at least one pair")
    asyncio.run(run_all(args))


if __name__ == "__main__":
    main()
