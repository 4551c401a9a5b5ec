"""The guard loop's `notify` (protocols/iec104/guard_loop.py): the outbox's writer raises
relays' durable marks from its own thread; each raise reaches its client on the loop's
thread, however many arrive together, and a client that fails there ends alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from protocols.iec104 import guard_loop


class Watcher:
    """A client that notes the value it was asked to look at, on the loop's thread."""

    def __init__(self, fail: bool = False) -> None:
        self.value = 0  # raised from other threads
        self.seen: list[int] = []
        self.threads: set[str] = set()
        self.ended: BaseException | None = None
        self.fail = fail

    def notified(self) -> None:
        self.threads.add(threading.current_thread().name)
        self.seen.append(self.value)
        if self.fail:
            raise RuntimeError("this client breaks")

    def timer(self) -> None:
        pass

    def closed(self, error: BaseException) -> None:
        self.ended = error


def wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "not within the limit"
        time.sleep(0.001)


def test_every_last_raise_reaches_its_client_on_the_loops_thread() -> None:
    """Four threads raise twenty clients' values 500 times each, notifying after each
    raise: every client ends up having looked at its last value, and never on a raiser's
    thread; far fewer looks than raises (one wake-up serves all that came meanwhile)."""
    loop = guard_loop.shared()  # the process's: a loop of their own would outlive the test
    started = threading.Event()
    loop.call_soon(started.set)  # starts the loop's thread
    assert started.wait(5)
    clients = [Watcher() for _ in range(20)]

    def raiser(mine: list[Watcher]) -> None:
        for n in range(1, 501):
            for client in mine:
                client.value = n
                loop.notify(client)

    threads = [threading.Thread(target=raiser, args=(clients[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: all(c.seen and c.seen[-1] == 500 for c in clients))
    assert {name for c in clients for name in c.threads} == {"apdu-guards"}
    assert all(c.seen == sorted(c.seen) for c in clients)
    assert sum(len(c.seen) for c in clients) < 20 * 500


def test_a_client_failing_when_notified_is_closed_and_the_others_go_on() -> None:
    loop = guard_loop.shared()
    broken, fine = Watcher(fail=True), Watcher()
    loop.call_soon(lambda: None)
    for n in (1, 2):
        broken.value = fine.value = n
        loop.notify(broken)
        loop.notify(fine)
        wait_for(lambda: fine.seen[-1:] == [broken.value])
    assert isinstance(broken.ended, RuntimeError)
    assert fine.ended is None
