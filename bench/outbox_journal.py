"""The outbox writer thread's CPU per event with its journal (gateway/outbox_lane.py) and
without it (every commit an SQLite transaction), for commits of one IEC 104 link's size.

    .venv/bin/python bench/outbox_journal.py [--events 11] [--commits 600] [--rounds 3]

Each commit holds `--events` event records (about 500 bytes, with their replay keys, as
the agent writes them) and the acknowledgement of as many earlier ones, `synchronous =
FULL`, as on one link, where the relay's window (k = 12) lets about 11 events share a
commit. The writer thread's own CPU clock is read, so the caller's work does not count.
Both variants in each round, alternating which goes first; compare the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import outbox_lane
from gateway.outbox import Outbox, Pending
from gateway.outbox_rows import WriteOp
from gateway.wire import AckRange

BODY = (
    b'{"kind":"event","site":"north","gateway_id":"gw-1","device_id":"relay.7",'
    b'"gateway_time":"2026-03-01T08:00:00.123456Z","address":"1011","point":"trip_a",'
    b'"label":"Trip phase A","signal":"trip","severity":"critical","phase":"A",'
    b'"value":true,"quality":[],"device_time":"2026-03-01T08:00:00.120000Z","details":'
    b'{"type":"M_SP_TB_1","type_id":30,"ioa":1011,"common_address":1,"time_source":"cp56"},'
    b'"raised":true}'
)


def journal(on: bool) -> contextlib.AbstractContextManager[object]:
    """The journal as shipped, or never taking a commit."""
    if on:
        return contextlib.nullcontext()
    return mock.patch.object(outbox_lane.JournalLane, "takes", return_value=False)


def writer_cpu(box: Outbox) -> float:
    ident = box._writer.ident if box._writer is not None else None
    assert ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(ident))


def settled(done: threading.Event, error: BaseException | None) -> None:
    done.set()


def run(path: Path, events: int, commits: int) -> float:
    """The writer's CPU µs per event over `commits` commits (after 5 to warm up)."""
    box = Outbox(path)
    box.open()
    try:
        seq, start = 0, 0.0
        for n in range(commits + 5):
            if n == 5:
                start = writer_cpu(box)
            records = [Pending("relay/v1/north/gw-1/event/relay.7", "event", BODY)] * events
            keys = {"relay.7": [f"{n:06x}{i:06x}" for i in range(events)]}
            if seq >= 2 * events:  # the center acknowledges what was sent a commit ago
                ack = AckRange(session=box.session, first=seq - 2 * events + 1, last=seq - events)
                box._queue.put(WriteOp(acks=[ack], done=lambda error: None))
            done = threading.Event()
            box._queue.put(WriteOp(records, keys=keys, done=functools.partial(settled, done)))
            done.wait()
            seq += events
        return (writer_cpu(box) - start) / (commits * events) * 1e6
    finally:
        box.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=11, help="events per commit")
    p.add_argument("--commits", type=int, default=600)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    costs: dict[str, list[float]] = {"SQLite alone": [], "journal": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(costs) if r % 2 == 0 else list(costs)[::-1]
            for name in order:
                with journal(name == "journal"):
                    path = Path(tmp) / f"{r}-{name.replace(' ', '-')}.sqlite"
                    costs[name].append(run(path, args.events, args.commits))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in costs.items())
                  + " µs per event", flush=True)  # fmt: skip
    base, journaled = (statistics.median(v) for v in costs.values())
    print(f"\nwriter thread, {args.events} events a commit, FULL: SQLite alone {base:.1f}, "
          f"journal {journaled:.1f} µs per event (median), {journaled / base:.2f}x")  # fmt: skip
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
