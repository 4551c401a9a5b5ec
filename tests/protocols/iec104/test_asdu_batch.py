"""The per-ASDU batcher: one sink call per ASDU, order kept, nothing held for long."""

from __future__ import annotations

import threading

from protocols.iec104.asdu_batch import AsduBatcher
from protocols.observations import PointObservation


def obs(n: int) -> PointObservation:
    return PointObservation("line1", str(n), True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Calls(list[list[PointObservation]]):
    """What the batcher handed on; `keys` the ASDU key of each call, empty ones included."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[object] = []

    def __call__(self, batch: list[PointObservation], key: object) -> None:
        self.keys.append(key)
        if batch:
            self.append(batch)


def addresses(calls: list[list[PointObservation]]) -> list[list[str]]:
    return [[o.address for o in call] for call in calls]


def test_the_objects_of_one_asdu_go_to_the_sink_in_one_call() -> None:
    calls = Calls()
    b = AsduBatcher(calls)
    for n in (1, 2, 3):
        assert calls == []  # nothing goes out before the last object
        b.add(obs(n), b"asdu-a", 3)
    b.add(obs(4), b"asdu-b", 1)
    assert addresses(calls) == [["1", "2", "3"], ["4"]]
    assert b.asdus == 2


def test_an_identical_asdu_repeated_is_a_second_batch() -> None:
    calls = Calls()
    b = AsduBatcher(calls)
    for n in (1, 2, 1, 2):
        b.add(obs(n), b"same", 2)
    assert addresses(calls) == [["1", "2"], ["1", "2"]]


def test_an_asdu_cut_short_is_flushed_by_the_next_one_first() -> None:
    calls = Calls()
    b = AsduBatcher(calls)
    b.add(obs(1), b"asdu-a", 3)  # objects 2 and 3 never reach a callback
    b.add(obs(9), b"asdu-b", 1)
    assert addresses(calls) == [["1"], ["9"]]


def test_a_held_object_goes_out_once_stale() -> None:
    calls = Calls()
    clock = Clock()
    b = AsduBatcher(calls, stale_after_s=0.5, clock=clock)
    b.add(obs(1), b"asdu-a", 2)
    clock.now += 0.4
    assert not b.stale()
    b.flush_stale()
    assert calls == []
    clock.now += 0.2
    assert b.stale()
    b.flush_stale()
    assert addresses(calls) == [["1"]]
    assert b.stale_flushes == 1
    assert not b.stale()


def test_a_stale_flush_waits_for_a_delivery_in_progress_so_order_is_kept() -> None:
    """The receive thread holds the lock while the sink commits; a stale flush from the
    loop's worker thread cannot overtake it."""
    calls: list[list[str]] = []
    entered, release = threading.Event(), threading.Event()

    def slow_sink(batch: list[PointObservation], key: object) -> None:
        if batch[0].address == "1":
            entered.set()
            release.wait(5)
        calls.append([o.address for o in batch])

    clock = Clock()
    b = AsduBatcher(slow_sink, stale_after_s=0.0, clock=clock)
    receiver = threading.Thread(target=lambda: b.add(obs(1), b"a", 1))
    receiver.start()
    assert entered.wait(5)
    flusher = threading.Thread(target=b.flush_stale)
    flusher.start()
    b_thread = threading.Thread(target=lambda: b.add(obs(2), b"b", 2))
    b_thread.start()
    release.set()
    for t in (receiver, flusher, b_thread):
        t.join(5)
    b.flush()
    assert calls[0] == ["1"]
    assert [a for c in calls for a in c] == ["1", "2"]


def test_consumed_objects_complete_an_asdu_without_being_delivered() -> None:
    """Objects the link keeps for the inventory (added as None) still count towards the
    ASDU's end: the rest goes out at once, not at the stale flush; an ASDU of consumed
    objects only hands on no object, but its key, so the link can mark it durable in
    order."""
    calls = Calls()
    b = AsduBatcher(calls)
    b.add(obs(1), b"asdu-a", 3)
    b.add(None, b"asdu-a", 3)
    b.add(obs(3), b"asdu-a", 3)
    assert addresses(calls) == [["1", "3"]]
    b.add(None, b"asdu-b", 2)
    b.add(None, b"asdu-b", 2)
    assert not b.stale()
    assert addresses(calls) == [["1", "3"]]
    assert b.asdus == 1
    assert calls.keys == [b"asdu-a", b"asdu-b"]
