"""The table `compare_thingsboard.py` prints: one row per master and interval, then the
goals, each agent against the peer's row of the same interval and run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """User + system CPU of one thread (the main thread runs the agent's event loop)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'master':<11} {'poll':>6} {'polls/s':>8} {'missed':>7} {'reads/CPU-s':>11} "
          f"{'us/poll':>7} {'loop':>5} {'lost':>6} {'RSS start -> end (max) MB':>26} "
          f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    for r in rows:
        lost = f"{r['lost']}" + (f"+{r['in_outbox']}q" if r["in_outbox"] else "")
        print(f"{r['peer']:<11} {r['interval'] * 1000:>4.0f}ms {r['reads'] / r['window']:>8.0f} "
              f"{r['missed']:>7} {r['reads_per_cpu_s']:>11.0f} {r['us_per_poll']:>7.0f} "
              f"{r['loop_share']:>5.0%} {lost:>6} "
              f"{r['rss0']:>9.1f} -> {r['rss1']:.1f} ({r['rss_max']:.1f}) "
              f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}")  # fmt: skip
    print(
        "(lost: polls answered, never at the broker; +Nq: still durable in the agent's outbox;"
        " missed: polls due but never made; loop: the share of the CPU on the main thread)"
    )
    print("\ngoals                                         measured now             goal")
    for interval in sorted({r["interval"] for r in rows}, reverse=True):
        same = [r for r in rows if r["interval"] == interval]
        peers = [r for r in same if r["peer"] == "thingsboard"]
        for agent in (r for r in same if r["peer"] != "thingsboard"):
            _goals(interval, agent, peers[0] if peers else None)


def _goals(interval: float, agent: dict[str, Any], tb: dict[str, Any] | None) -> None:
    name = f"{interval * 1000:.0f} ms, {agent['peer']}:"
    growth = agent["rss1"] - agent["rss0"]
    if tb is not None:
        ratio = agent["reads_per_cpu_s"] / max(tb["reads_per_cpu_s"], 1e-9)
        print(f"  {name:<22} reads/CPU-s over peer's {ratio:>5.1f}x{'':>18} >= 5x")
    peer_lost = f" (peer: {tb['lost']})" if tb is not None else ""
    print(f"  {name:<22} polls lost silently     {agent['lost']:>5}{'':>19} 0{peer_lost}")
    peer_growth = f" (peer: {tb['rss1'] - tb['rss0']:+.1f} MB)" if tb is not None else ""
    print(f"  {name:<22} RSS growth in window   {growth:>+5.1f} MB{'':>16} flat{peer_growth}")
