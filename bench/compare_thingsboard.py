"""ThingsBoard IoT Gateway's Modbus connector against our agent, on the same simulator.

    .venv/bin/python bench/compare_thingsboard.py                 # 1 s and 100 ms, 60 s each
    .venv/bin/python bench/compare_thingsboard.py --window 30 --intervals 0.1
    .venv/bin/python bench/compare_thingsboard.py --agents before=/tmp/base agent=.  # A/B

`--agents NAME=DIR` runs the agent from another checkout too (its own code, this venv), so
a change is compared with what it replaces in one sitting, each against the same peer run.

Both masters poll 100 units of 34 holding registers (`modbus_seq_simulator.py`: a u32
poll sequence and 16 float32, one read per poll) and publish to a Mosquitto this script
starts on a free loopback port: the agent its wire records, the gateway its ThingsBoard
MQTT gateway API (`v1/gateway/telemetry`, QoS 1, access token as user name; the broker
allows anyone). A subscriber records when each (unit, sequence) first arrives and, for
the agent, acknowledges what it received as the center would after storing it (`wire.Ack`
on the gateway's acknowledgement topic): the agent deletes a record from its outbox only
then, and stops sending at 10,000 unacknowledged records.

The gateway is pinned (`thingsboard-gateway` 3.8.5) and installed from the package
registry into its own virtualenv, `var/bench/tb-venv`, with the pymodbus its Modbus
connector would otherwise install itself at start-up (3.9.2). Its configuration is the
package's own `tb_gateway.json` (memory storage) with the broker, the token and the
Modbus connector filled in, statistics and remote configuration off; one wide-range
`timeseries` entry per unit (`address = "0-33"`, 17 u32 values) makes one read per poll.

For each master and interval, over one window after a warm-up:
- reads per CPU-second: polls the simulator answered / the master's CPU (user + system,
  all threads, from /proc);
- polls lost: polls answered in the window whose sequence never reached the broker by
  the end of the drain (the simulator is stopped after the window so backlogs drain);
  for the agent, sequences still in its durable outbox at exit are shown apart;
- polls missed: polls due by the schedule that were never made (the agent counts these
  as overruns; the gateway does not);
- RSS at the start and the end of the window (and its maximum);
- poll to broker: the simulator's read time to the subscriber's arrival, p50 and p99;
- µs of CPU per poll, and the share of it on the event loop's thread (the rest is the
  outbox writer and other threads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from agent_spine import cpu_seconds, rss_mb  # noqa: E402
from modbus_arrivals import GATEWAY, SITE, Collector, outbox_sequences  # noqa: E402
from modbus_report import report, thread_cpu_seconds  # noqa: E402
from modbus_seq_simulator import profile_text  # noqa: E402
from ports import free_port_run  # noqa: E402
from pyspy_top import PY_SPY, top_costs  # noqa: E402
from thingsboard_peer import (  # noqa: E402
    TB_PYMODBUS,
    TB_VERSION,
    ensure_tb_venv,
    start_gateway,
    tb_config,
)

from simulator.harness.agent_config import to_toml  # noqa: E402
from simulator.harness.broker import Mosquitto  # noqa: E402

UNITS = 100


# --- our agent --------------------------------------------------------------------------------


def agent_config(work: Path, broker: Mosquitto, base_port: int, interval: float) -> Path:
    (work / "profiles").mkdir()
    (work / "profiles" / "bench-seq.toml").write_text(profile_text())
    config = {
        "agent": {"site": SITE, "gateway_id": GATEWAY, "state_dir": str(work / "state"),
                  "profile_dirs": [str(work / "profiles")]},
        "broker": {"host": broker.host, "port": broker.port},
        "devices": [
            {"id": f"u{i}", "protocol": "modbus", "profile": "bench-seq", "host": "127.0.0.1",
             "port": base_port + i, "unit_id": 1, "measurements_interval_s": interval}
            for i in range(UNITS)
        ],
    }  # fmt: skip
    path = work / "agent.toml"
    path.write_text(to_toml(config))
    return path


# --- one run ----------------------------------------------------------------------------------


class Simulator:
    def __init__(self, base_port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "modbus_seq_simulator.py"), "--units", str(UNITS),
             "--base-port", str(base_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the Modbus simulator failed to start")

    def reads(self) -> dict[int, list[float]]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("reads\n")
        self.proc.stdin.flush()
        return {int(k): v for k, v in json.loads(self.proc.stdout.readline()).items()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


async def drain(count: Any, quiet: float = 3.0, limit: float = 60.0) -> None:
    deadline, last, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        if (now := count()) != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.5)


async def run_peer(peer: str, interval: float, args: argparse.Namespace, broker: Mosquitto,
                   python: Path, profile_to: Path | None = None,
                   tree: tuple[str, Path] = ("agent", ROOT)) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base_port = free_port_run(UNITS)
        sim = Simulator(base_port)
        collector = Collector(broker, peer)
        ready = asyncio.Event()
        task = asyncio.create_task(collector.run(ready))
        await ready.wait()
        log = (work / f"{peer}.log").open("w")
        if peer == "agent":
            command = [sys.executable, "-m", "agent.cli", "run", "--config",
                       str(agent_config(work, broker, base_port, interval)),
                       "--log-level", "warning"]  # fmt: skip
            # `-m` imports from the working directory first: that tree's code runs.
            master = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tree[1])
        else:
            config = tb_config(work, python, broker, base_port, UNITS, interval)
            master = start_gateway(python, config, work, log)
        try:
            deadline = time.monotonic() + 60
            while sum(1 for r in sim.reads().values() if r) < UNITS:
                if time.monotonic() > deadline or master.poll() is not None:
                    raise SystemExit(f"{peer} did not poll every unit (see {peer}.log)")
                await asyncio.sleep(1)
            await asyncio.sleep(args.warmup)
            t0, cpu0, rss0 = time.time(), cpu_seconds(master.pid), rss_mb(master.pid)
            main0 = thread_cpu_seconds(master.pid, master.pid)
            if profile_to is not None:
                spy = subprocess.Popen(
                    [str(PY_SPY), "record", "--pid", str(master.pid), "--format", "raw",
                     "--output", str(profile_to), "--rate", "250", "--nonblocking",
                     "--duration", str(int(args.window))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            rss = [rss0]
            while time.time() - t0 < args.window:
                await asyncio.sleep(1)
                rss.append(rss_mb(master.pid))
            t1, cpu1 = time.time(), cpu_seconds(master.pid)
            main1 = thread_cpu_seconds(master.pid, master.pid)
            reads = sim.reads()
            sim.stop()  # nothing new: what is queued in the master drains
            await drain(lambda: len(collector.arrived))
            if profile_to is not None:
                spy.wait(30)
        finally:
            if master.poll() is None:
                master.terminate()
                try:
                    master.wait(20)
                except subprocess.TimeoutExpired:
                    master.kill()
                    master.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sim.stop()
        waiting = outbox_sequences(work / "state") if peer == "agent" else set()
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            name = f"{tree[0] if peer == 'agent' else peer}-{interval:g}s.log"
            shutil.copy(work / f"{peer}.log", args.keep_logs / name)
    polls = [(u, n + 1, t) for u, times in reads.items() for n, t in enumerate(times)
             if t0 <= t < t1]  # fmt: skip
    per_unit = Counter(u for u, _, _ in polls)
    latencies = sorted(collector.arrived[(u, n)] - t for u, n, t in polls
                       if (u, n) in collector.arrived)  # fmt: skip
    missing = [(u, n) for u, n, _ in polls if (u, n) not in collector.arrived]
    in_outbox = sum(1 for key in missing if key in waiting)
    cpu = cpu1 - cpu0
    return {
        "peer": peer if peer == "thingsboard" else tree[0], "interval": interval,
        "window": t1 - t0, "reads": len(polls),
        # A unit's polls fall either side of the window's edges: one short is not missed.
        "missed": sum(max(0, int((t1 - t0) / interval) - 1 - per_unit[u]) for u in reads),
        "cpu": cpu,
        "reads_per_cpu_s": len(polls) / cpu if cpu else 0.0,
        "us_per_poll": 1e6 * cpu / len(polls) if polls else 0.0,
        "loop_share": (main1 - main0) / cpu if cpu else 0.0,
        "lost": len(missing) - in_outbox, "in_outbox": in_outbox, "repeats": collector.repeats,
        "rss0": rss0, "rss1": rss[-1], "rss_max": max(rss),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
    }  # fmt: skip


# --- the report -------------------------------------------------------------------------------


def versions() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                            capture_output=True, text=True, cwd=ROOT).stdout.strip()  # fmt: skip
    return (f"relay-service {metadata.version('relay-service')} ({commit}) with pymodbus "
            f"{metadata.version('pymodbus')}; thingsboard-gateway {TB_VERSION} with pymodbus "
            f"{TB_PYMODBUS}; simulator pymodbus {metadata.version('pymodbus')}; "
            f"{UNITS} units x 34 holding registers, one read per poll")  # fmt: skip


async def run_all(args: argparse.Namespace) -> None:
    python = ensure_tb_venv()
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto", extra_conf="max_queued_messages 1000000\n")
        broker.start()
        try:
            for interval in args.intervals:
                runs = [("thingsboard", ("thingsboard", ROOT))] * (not args.no_peer)
                runs += [("agent", tree) for tree in args.agents]
                for peer, tree in runs:
                    rows.append(await run_peer(peer, interval, args, broker, python, tree=tree))
                    r = rows[-1]
                    print(
                        f"{r['peer']} at {interval:g} s: {r['reads']} reads, "
                        f"{r['reads_per_cpu_s']:.0f}/CPU-s, lost {r['lost']}",
                        flush=True,
                    )
        finally:
            broker.stop()
    print(f"\n{versions()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"window {args.window:g} s after {args.warmup:g} s of warm-up, every unit polled first")
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}".format(*load0))
    print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    report(rows)
    if args.profile:
        await profile_agent(args, python)


async def profile_agent(args: argparse.Namespace, python: Path) -> None:
    """The agent alone at the shortest interval, sampled by py-spy through one window."""
    if not PY_SPY.exists():
        print(f"\nno profile: {PY_SPY} missing (pip install py-spy into that venv)")
        return
    interval = min(args.intervals)
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto", extra_conf="max_queued_messages 1000000\n")
        broker.start()
        try:
            raw = Path(tmp) / "agent.txt"
            await run_peer(
                "agent", interval, args, broker, python, profile_to=raw, tree=args.agents[-1]
            )
            print(f"\npy-spy on the agent polling every {interval:g} s:")
            top_costs(raw)
        finally:
            broker.stop()


def agent_tree(text: str) -> tuple[str, Path]:
    name, _, folder = text.rpartition("=")
    path = Path(folder).resolve()
    if not (path / "agent" / "cli").exists():
        raise argparse.ArgumentTypeError(f"{folder}: not a checkout of this project")
    return (name or path.name, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1])
    p.add_argument("--window", type=float, default=60.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument(
        "--agents",
        type=agent_tree,
        nargs="+",
        default=[("agent", ROOT)],
        metavar="NAME=DIR",
        help="agents to run, each from its own checkout",
    )
    p.add_argument("--no-peer", action="store_true", help="the agents only (no ratio)")
    p.add_argument("--keep-logs", type=Path, help="copy each master's log into this folder")
    p.add_argument("--profile", action="store_true",
                   help=f"then profile the agent at the shortest interval ({PY_SPY})")  # fmt: skip
    asyncio.run(run_all(p.parse_args()))


if __name__ == "__main__":
    main()
