"""When the guard confirms durable frames (at `every` of them at once, else after the
delay), and when it reads a bursting relay."""

from __future__ import annotations

import socket
import time

import pytest

from protocols.iec104 import guard_session
from protocols.iec104.ack_pacing import AckPacer, DurableMark, ReadGather


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_full_step_is_confirmed_at_once_without_a_deadline() -> None:
    pacer = AckPacer(every=8, delay_s=0.005, clock=Clock())
    assert pacer.now(8)
    assert pacer.timeout() is None


def test_fewer_frames_wait_for_the_deadline_set_by_the_first() -> None:
    clock = Clock()
    pacer = AckPacer(every=8, delay_s=0.5, clock=clock)
    assert not pacer.now(2)
    assert pacer.timeout() == 0.5
    clock.t += 0.25
    assert not pacer.now(5)  # a later commit does not push the deadline back
    assert not pacer.expired()
    assert pacer.timeout() == 0.25
    clock.t += 0.25
    assert pacer.expired()
    pacer.sent()
    assert pacer.timeout() is None
    assert not pacer.expired()


def test_nothing_to_confirm_sets_no_deadline() -> None:
    pacer = AckPacer(clock=Clock())
    assert not pacer.now(0)
    assert pacer.timeout() is None


def test_the_mark_only_rises_and_says_when_it_did() -> None:
    mark = DurableMark()
    assert [mark.raise_to(t) for t in (5, 7, 6, 7, 9)] == [True, True, False, False, True]
    assert mark.token == 9


def test_a_read_asks_for_its_commit_at_once_every_w_frames_not_yet_confirmed() -> None:
    pacer = AckPacer(every=8, clock=Clock())
    asked = [pacer.commit_now(relay_vr=n, sent_nr=0) for n in range(1, 18)]
    assert asked == ([False] * 7 + [True]) * 2 + [False]
    assert not pacer.commit_now(relay_vr=20, sent_nr=17)  # confirmed: counting again
    assert pacer.commit_now(relay_vr=4, sent_nr=32764)  # 8 waiting across the wrap


def test_a_frame_that_comes_alone_is_read_at_once() -> None:
    clock = Clock()
    gather = ReadGather(every=8, gather_s=0.002, clock=clock)
    for waiting in (1, 2, 3):  # one frame every 10 ms: no burst
        gather.read(waiting)
        assert gather.remaining() == 0.0
        clock.t += 0.010


def test_a_burst_is_read_every_gather_s_while_the_relay_can_still_send() -> None:
    clock = Clock()
    gather = ReadGather(every=8, gather_s=0.002, clock=clock)
    gather.read(1)  # the burst's first frame: the next read is not held
    assert gather.remaining() == 0.0
    clock.t += 0.0005
    gather.read(2)  # the next within 2 ms: the relay bursts, its frames gather
    assert gather.remaining() == pytest.approx(0.002)
    clock.t += 0.001
    assert gather.remaining() == pytest.approx(0.001)
    clock.t += 0.001
    assert gather.remaining() == 0.0
    gather.read(5)  # what came meanwhile, read when the wait ended: wait again
    assert gather.remaining() == pytest.approx(0.002)
    clock.t += 0.002
    gather.read(8)  # w frames wait for a confirmation: the relay soon stops, read on
    assert gather.remaining() == 0.0
    clock.t += 0.003
    gather.read(1)  # the relay paused longer than gather_s: its burst is over
    assert gather.remaining() == 0.0


def test_a_relay_sending_back_to_back_is_read_on_not_gathered() -> None:
    """A relay with a backlog sends its window at once: when as much has come again while
    a read was handled, the rest of the window is read at once, not held for gather_s."""
    clock = Clock()
    gather = ReadGather(every=8, gather_s=0.004, clock=clock)
    gather.read(3)
    clock.t += 0.0001
    gather.read(5, more=lambda: True)  # within gather_s, but the next frames are already there
    assert gather.remaining() == 0.0
    clock.t += 0.0001
    gather.read(6)  # they stopped coming faster than they are read: a burst, gathered
    assert gather.remaining() == pytest.approx(0.004)


def test_the_bytes_waiting_in_a_relays_socket_are_counted_without_reading_them() -> None:
    a, b = socket.socketpair()
    try:
        assert guard_session._pending(b) == 0
        a.sendall(b"\x68\x04\x01\x00\x02\x00" * 3)
        deadline = time.monotonic() + 5
        while guard_session._pending(b) < 18 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert guard_session._pending(b) == 18
        assert b.recv(100) == b"\x68\x04\x01\x00\x02\x00" * 3  # still all there
        assert guard_session._pending(b) == 0
    finally:
        a.close()
        b.close()
    assert guard_session._pending(b) == 0  # closed: nothing, no error
