"""The cases of `compare_c104.py`, what each master gave in one, and the table of a run:
the figures beside the goals of docs/performance.md."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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


def cpu_ratio(pair: tuple[Result, Result]) -> float:
    """The agent's CPU per event over the bare client's, of one (bare, agent) pair."""
    bare, agent = pair
    return agent.cpu_us_per_event / bare.cpu_us_per_event if bare.cpu_us_per_event else 0.0


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
        ratio = cpu_ratio(results[name])
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
    print(f"  agent CPU/event over bare (one link / 20 links)  "
          f"{cpu_ratio(results['one-link']):>4.1f}x / {cpu_ratio(results['20-links']):.1f}x"
          f"{'':>12} <= 2x")  # fmt: skip
    if "plateau" not in results:
        return
    plateau = results["plateau"][1]
    hog_bare, hog_agent = results["cpu-hog"]
    print(f"  offered 2x capacity ({capacity:,.0f}/s): rate / capacity  "
          f"{plateau.rate / max(capacity, 1e-9):>5.0%}{'':>19} >= 90%")  # fmt: skip
    print(f"  under a CPU hog: agent rate / bare rate          "
          f"{hog_agent.rate / max(hog_bare.rate, 1e-9):>5.0%}{'':>19} >= 70%")  # fmt: skip
