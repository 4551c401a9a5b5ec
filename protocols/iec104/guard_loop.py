"""One thread for every link's APDU guard: one `epoll` over all their sockets.

Why: a thread per guard made a gateway with many relays pay for them in wake-ups and the
GIL. With 20 relays at 300 frames/s each, every frame woke its own guard's thread, the
durable mark and the confirmation deadline woke it again, and the 20 threads waited on one
another for the GIL: 2.9 voluntary context switches per event, the largest share of the
agent's CPU (docs/performance.md). One thread reads whichever sockets are ready, so a
busy gateway's frames share wake-ups, and no guard waits for another's GIL.

What it asks of a client (`guard_session.Session`), all on this thread:
- `watch(sock, client, handler)` / `unwatch(sock)`: `handler(data)` gets what one `recv`
  read when the socket is readable, `b""` once it is closed; `pause(sock)` / `resume(sock)`
  leave a watched socket alone for a while (a bursting relay's gather);
- `wake_at(client, when)`: `client.timer()` at `when` (monotonic), None for never;
- `notify(client)`, from any thread: `client.notified()` soon on this thread (the outbox's
  writer, once a commit made a relay's frames durable). One wake-up of this thread for
  every client notified before it got to them: a commit that covers 20 relays costs one
  write to the loop's socket, not one socket pair and one read per relay;
- `client.closed(error)` once a handler or the timer raised: the client must `unwatch` its
  sockets and close them. The other clients go on.

Sends stay blocking, with a time limit (`SEND_TIMEOUT_S`, set by the guard): a relay that
stops reading holds every link's confirmations that long once, then its link ends.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 1.0  # a send to a relay or to c104 blocks every link at most this long


class Client(Protocol):
    def timer(self) -> None: ...

    def notified(self) -> None: ...

    def closed(self, error: BaseException) -> None: ...


Handler = Callable[[bytes], None]


class GuardLoop:
    def __init__(self) -> None:
        self._epoll = select.epoll()  # level-triggered; a paused socket is registered for 0
        self._watched: dict[int, tuple[Client, Handler, socket.socket]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._epoll.register(self._wake_r.fileno(), select.EPOLLIN)
        self._calls: deque[Callable[[], None]] = deque()
        self._notified: dict[Client, None] = {}  # in the order notified, each once
        self._due: dict[Client, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- from any thread ----------------------------------------------------------------------

    def call_soon(self, call: Callable[[], None]) -> None:
        """Run `call` on the loop's thread (started on first use)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="apdu-guards", daemon=True)
                self._thread.start()
            self._calls.append(call)
        self._wake()

    def notify(self, client: Client) -> None:
        """`client.notified()` on the loop's thread, once however often it is notified
        before then (a client of this loop: the thread runs)."""
        with self._lock:
            first = not self._notified
            self._notified[client] = None
        if first:  # else the wake-up for the first one is on its way
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is on its way already
            self._wake_w.send(b"\0")

    # --- on the loop's thread -----------------------------------------------------------------

    def watch(self, sock: socket.socket, client: Client, handler: Handler) -> None:
        self._watched[sock.fileno()] = (client, handler, sock)
        self._epoll.register(sock.fileno(), select.EPOLLIN)

    def unwatch(self, sock: socket.socket) -> None:
        """Before `sock` is closed."""
        fd = sock.fileno()
        if self._watched.pop(fd, None) is not None:
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def pause(self, sock: socket.socket) -> None:
        """Leave a watched socket alone (it is still reported once it hangs up)."""
        self._epoll.modify(sock.fileno(), 0)

    def resume(self, sock: socket.socket) -> None:
        self._epoll.modify(sock.fileno(), select.EPOLLIN)

    def wake_at(self, client: Client, when: float | None) -> None:
        if when is None:
            self._due.pop(client, None)
        else:
            self._due[client] = when

    def _run(self) -> None:
        while True:
            self._turn()

    def _turn(self) -> None:
        """One wait and what it found (a function, so that nothing of a closed client
        stays referenced by the loop while it waits)."""
        due = self._due
        earliest = min(due.values()) if due else None
        timeout = -1 if earliest is None else max(0.0, earliest - time.monotonic())
        for fd, _ in self._epoll.poll(timeout):
            watched = self._watched.get(fd)
            if watched is None:  # the wake-up, or a client closed earlier in this turn
                if fd == self._wake_r.fileno():
                    self._run_calls()
                continue
            client, handler, sock = watched
            try:
                # Never waits: a socket closed earlier in this turn may have left its
                # number to one that has nothing to read yet.
                data = sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._close(client, exc)
                continue
            try:
                handler(data)
            except Exception as exc:  # noqa: BLE001 - this client ends, the rest go on
                self._close(client, exc)
        # A deadline set during this turn is seen by the next one (it waits for none).
        if earliest is not None and (now := time.monotonic()) >= earliest:
            for client in [c for c, when in due.items() if when <= now]:
                try:
                    client.timer()
                except Exception as exc:  # noqa: BLE001
                    self._close(client, exc)

    def _run_calls(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)
        while self._calls:
            call = self._calls.popleft()
            try:
                call()
            except Exception:
                log.exception("a guard's call on the guard loop failed")
        with self._lock:
            notified, self._notified = self._notified, {}
        for client in notified:
            try:
                client.notified()
            except Exception as exc:  # noqa: BLE001 - this client ends, the rest go on
                self._close(client, exc)

    def _close(self, client: Client, error: BaseException) -> None:
        self._due.pop(client, None)
        try:
            client.closed(error)
        except Exception:
            log.exception("a guard failed to close")


_SHARED: GuardLoop | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> GuardLoop:
    """The process's guard loop, made on first use."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = GuardLoop()
        return _SHARED
