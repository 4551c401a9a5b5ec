"""The top costs in a py-spy profile (`py-spy record --format raw`), as shares of samples.

Self: the frame on top of the stack. Inclusive: every frame a sample passed through,
less the plumbing every sample passes through (runpy, thread bootstrap, the event loop).
Line numbers are merged, so a function counts once.

    py-spy record --pid PID --format raw --output agent.txt --nonblocking
    .venv/bin/python bench/pyspy_top.py agent.txt
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

# Where the benches look for py-spy: its own virtualenv, filled from the package registry
# (`python3 -m venv var/bench/tools-venv && var/bench/tools-venv/bin/pip install py-spy`).
PY_SPY = Path(__file__).resolve().parents[1] / "var" / "bench" / "tools-venv" / "bin" / "py-spy"
# Frames every sample passes through, left out of the inclusive list.
PLUMBING = ("<module>", "_run_code", "_run_module", "Runner.run", "BaseEventLoop.run_",
            "Thread._bootstrap", "Thread.run", "cmd_run", "main (", "run (", "Handle._run",
            "BaseEventLoop._run_once", "Context.run")  # fmt: skip


def top_costs(raw: Path, limit: int = 15) -> None:
    """Self and inclusive sample shares from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f.strip()) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"  {total} samples, line numbers merged")
    print("  top self:")
    for frame, n in own.most_common(limit):
        print(f"    {n / total:6.1%}  {frame}")
    print("  top inclusive:")
    shown = [(f, n) for f, n in inclusive.most_common() if not f.startswith(PLUMBING)]
    for frame, n in shown[:limit]:
        print(f"    {n / total:6.1%}  {frame}")


if __name__ == "__main__":
    import sys

    top_costs(Path(sys.argv[1]))
