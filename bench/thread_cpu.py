"""Where a process's CPU goes, thread by thread, from /proc (not sampled: exact).

Python 3.11 does not give its threads OS names, so every thread of the agent reads
"python" in /proc. `naming_env()` runs a process with `thread_names/sitecustomize.py`
on its path, which names each Python thread after its `threading` name (15 bytes, the
kernel's limit) and the main thread "loop". Native threads (c104's) are named by the
thread that made them, so they read "loop" too; `snapshot` tells them apart from the
main thread by their id.

    trace = ThreadTrace(pid); ...; trace.stop(); trace.report(events, "agent")
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import defaultdict
from pathlib import Path

from agent_spine import cpu_seconds

HOOK = Path(__file__).resolve().parent / "thread_names"

# thread name -> group (a link's guard is "apdu-guard <device>", trimmed by the kernel)
GROUPS = (
    (re.compile(r"^apdu-guard"), "guards"),
    (re.compile(r"^outbox-writer"), "outbox writer"),
    (re.compile(r"^asyncio_"), "loop's executor"),
)


def naming_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with the thread-naming hook first on the path."""
    out = dict(os.environ if env is None else env)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOK), out.get("PYTHONPATH")]))
    return out


Counts = dict[str, tuple[float, int, int]]  # group -> (CPU s, voluntary, involuntary switches)


def snapshot(pid: int) -> dict[int, tuple[str, float, int, int]]:
    """Each live thread: (group, CPU seconds, voluntary and involuntary context switches)."""
    out: dict[int, tuple[str, float, int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            tid = int(task.name)
            comm = (task / "comm").read_text().strip()
            # nanoseconds on a CPU, exact (stat's ticks miss a thread's short bursts)
            on_cpu_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
        switches = dict(re.findall(r"^(\w+_ctxt_switches):\s+(\d+)$", status, re.M))
        out[tid] = (
            group_of(pid, tid, comm),
            on_cpu_ns / 1e9,
            int(switches.get("voluntary_ctxt_switches", 0)),
            int(switches.get("nonvoluntary_ctxt_switches", 0)),
        )
    return out


def group_of(pid: int, tid: int, comm: str) -> str:
    if tid == pid:
        return "loop (main thread)"
    if comm == "loop":
        return "c104 (native)"
    for pattern, group in GROUPS:
        if pattern.match(comm):
            return group
    return comm


def breakdown(
    before: dict[int, tuple[str, float, int, int]], after: dict[int, tuple[str, float, int, int]]
) -> Counts:
    """Per group, what its threads spent between the snapshots (threads new in `after`
    count from zero)."""
    sums: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for tid, (group, cpu, vol, invol) in after.items():
        _, cpu0, vol0, invol0 = before.get(tid, (group, 0.0, 0, 0))
        row = sums[group]
        row[0] += cpu - cpu0
        row[1] += vol - vol0
        row[2] += invol - invol0
    return {g: (r[0], int(r[1]), int(r[2])) for g, r in sums.items()}


def print_breakdown(counts: Counts, events: int, title: str) -> None:
    total = sum(c for c, _, _ in counts.values())
    print(f"\n{title}: {events:,} events, {total:.2f} CPU s "
          f"({1e6 * total / max(events, 1):.0f} us per event)")  # fmt: skip
    print(f"  {'threads':<22} {'us/event':>9} {'share':>6} {'vol. sw/event':>14} "
          f"{'invol. sw/event':>16}")  # fmt: skip
    for group, (cpu, vol, invol) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
        n = max(events, 1)
        print(f"  {group:<22} {1e6 * cpu / n:>9.1f} {cpu / max(total, 1e-9):>6.0%} "
              f"{vol / n:>14.2f} {invol / n:>16.2f}")  # fmt: skip


class CpuTrace:
    """A process's CPU seconds sampled every 100 ms, so a case is charged only up to its
    last delivered event, not for the idle wait on the last acknowledgements after it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = [(time.time(), cpu_seconds(pid))]
        self.task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            while True:
                await asyncio.sleep(0.1)
                self.samples.append((time.time(), cpu_seconds(self.pid)))

    def until(self, moment: float) -> float:
        """CPU seconds from the start to the first sample at or after `moment`."""
        self.task.cancel()
        at = next((cpu for t, cpu in self.samples if t >= moment), self.samples[-1][1])
        return at - self.samples[0][1]


class ThreadTrace:
    """Per-thread CPU from its making to `stop`, printed by `report`; does nothing when
    not `enabled` (so a bench calls it unconditionally). Sampled every 100 ms, so a
    thread that ends meanwhile (a link's guard when its connection closes) still counts
    with its last sample."""

    def __init__(self, pid: int, enabled: bool = True) -> None:
        self.pid, self.enabled = pid, enabled
        self._first = snapshot(pid) if enabled else {}
        self._last = dict(self._first)
        self._task = asyncio.create_task(self._sample()) if enabled else None

    async def _sample(self) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            while True:
                await asyncio.sleep(0.1)
                self._last.update(snapshot(self.pid))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                self._last.update(snapshot(self.pid))

    def report(self, events: int, title: str) -> None:
        if self.enabled:
            print_breakdown(breakdown(self._first, self._last), events, title)
