"""The agent alone on one IEC 104 case, at several git revisions, in interleaved rounds:
the way to tell a change from this machine's noise.

    .venv/bin/python bench/interleave_revs.py b46b199 HEAD                # one link, 6 rounds
    .venv/bin/python bench/interleave_revs.py b46b199 HEAD --case 20-links --rounds 4
    .venv/bin/python bench/interleave_revs.py 588bc64 HEAD --pin --events 40000 --rounds 4

Each revision is checked out into a worktree of its own (<tmp>/relay-bench-revs/<commit>,
outside the project, where neither mypy nor pytest would take it for code), and the
agent runs from there, against fresh `buffered104_outstation.py` relays, durable in its
outbox and then at a subscriber, as `compare_c104.py` runs it (its packages shadow the
installed ones: `python -m` puts the working directory first on the path). One round runs
every revision once, in turn, the order rotating from round to round; the rounds repeat.
Prints each run's CPU per event, each revision's mean and median, and in how many rounds
each was the cheapest. Why: on these machines one link's agent moved between 86 and 177 µs
per event within an hour on unchanged code, so a single before/after pair decides
nothing, while interleaved rounds agreed with themselves (docs/performance.md, a202cab).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import compare_c104  # noqa: E402
from c104_cases import Case  # noqa: E402

CASES = {
    "one-link": Case("one-link", 1, 2000, 4000),
    "20-links": Case("20-links", 20, 6000, 30000),
}


def checkout(rev: str) -> tuple[str, Path]:
    """The revision's short commit and its worktree (made once, kept for the next run)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    tree = Path(tempfile.gettempdir()) / "relay-bench-revs" / commit
    if not tree.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--force", str(tree), commit],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
    return commit, tree


async def rounds(revs: list[tuple[str, Path]], case: Case, count: int) -> dict[str, list[float]]:
    work = compare_c104.run_directory()
    costs: dict[str, list[float]] = {commit: [] for commit, _ in revs}
    for n in range(count):
        order = revs[n % len(revs) :] + revs[: n % len(revs)]
        line = []
        for commit, tree in order:
            result = await compare_c104.run_case(case, "agent", work, agent_from=tree)
            if result.delivered < case.events:
                raise SystemExit(f"{commit}: {result.delivered} of {case.events} delivered")
            costs[commit].append(result.cpu_s / result.delivered * 1e6)
            line.append(f"{commit} {costs[commit][-1]:.1f}")
        print(f"round {n + 1}: " + ", ".join(line) + " us per event", flush=True)
    return costs


def report(costs: dict[str, list[float]], case: Case) -> None:
    count = len(next(iter(costs.values())))
    cheapest = {commit: 0 for commit in costs}
    ties = 0
    for n in range(count):
        least = min(values[n] for values in costs.values())
        winners = [commit for commit, values in costs.items() if values[n] == least]
        if len(winners) > 1:  # CPU time comes in clock ticks: equal figures are common
            ties += 1
        else:
            cheapest[winners[0]] += 1
    print(f"\n{case.name}: the agent's CPU per event, {count} interleaved rounds")
    print(f"  {'revision':10} {'mean':>8} {'median':>8}  cheapest alone in")
    for commit, values in costs.items():
        print(f"  {commit:10} {statistics.mean(values):8.1f} {statistics.median(values):8.1f}"
              f"  {cheapest[commit]} of {count} rounds")  # fmt: skip
    print(f"  rounds with a tie for the cheapest: {ties}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("revs", nargs="+", help="git revisions (two or more)")
    p.add_argument("--case", choices=sorted(CASES), default="one-link")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--pin", action="store_true", help="the agent alone on the first core")
    p.add_argument("--events", type=int, help="events per run (default: the case's)")
    args = p.parse_args()
    if len(args.revs) < 2:
        p.error("give two revisions or more")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        compare_c104.MASTER_CPUS.add(cpus[0])
        os.sched_setaffinity(0, set(cpus[1:]))
    revs = [checkout(rev) for rev in args.revs]
    case = CASES[args.case]
    if args.events:  # longer runs: CPU time comes in 10 ms ticks, the start-up counts less
        case = dataclasses.replace(case, events=args.events)
    report(asyncio.run(rounds(revs, case, args.rounds)), case)
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
