"""The APDU guard: c104's only way to the relay, and the agent's way to the relay's data.

c104 connects to this guard on a loopback port, never to the relay; one thread reads every
guard's sockets (`guard_loop.py`), and a connection's state is a `Session`
(`guard_session.py`). c104 runs the session: STARTDT, TESTFR, its timers, and
the commands it sends (general interrogation, clock sync) with their confirmations. The
relay's data never reaches c104: every monitoring ASDU goes to the link (`on_asdus`, which
decodes it with `codec.py` and submits it to the outbox without waiting), and so does every
ASDU that fails `check_asdu` (stored as raw data). Why: c104 2.2.1 segfaults on some
malformed ASDUs (`apdu_check.py`), and decoding in c104 cost a Python callback per object;
codec.py has the rest.

What it does with a frame from the relay:
- broken framing, an unknown U function, an S/U-frame with data, an I-frame out of sequence:
  the connection ends (as in lib60870), the relay keeps what was not acknowledged;
- a monitoring I-frame, or one whose ASDU fails `check_asdu`: handed to the link, with
  the others of the same read, under one token (`on_asdus([(asdu, reason), ...], token,
  urgent)`, reason "" if it passed; urgent: commit at once, `AckPacer.commit_now`) before
  anything of that read goes to c104; if that raises, the connection ends unconfirmed;
- anything else (the confirmations of c104's commands, end of initialisation) and S/U
  frames are passed on to c104.

Sequence numbers: c104 sees the passed-on frames numbered afresh. What the relay is told
was received is the guard's decision: an N(R) to the relay (the guard's S-frames, and
rewritten in c104's S- and I-frames) never passes the first frame handed to the link not
yet durable in the outbox. The outbox's writer reports each ASDU's token durable when its
group commit returns (`durable_through`: a token covers all before it), and the guard
sends an S-frame once `w` = 8 frames are durable and unconfirmed, or 5 ms after the first
of them (`ack_pacing.py`), so a relay with a backlog sends in bursts and its window
(k = 12) keeps moving. A bursting relay is read every 4 ms, not per frame (`ReadGather`).

`cut(reason)` ends the connection from any thread at once and lets nothing more from c104
through: the link calls it when the sink fails, so that frame is never acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

from protocols.iec104 import guard_loop
from protocols.iec104.guard_session import GuardClosed, Session

__all__ = ["ApduGuard", "GuardClosed"]

log = logging.getLogger(__name__)


class ApduGuard:
    def __init__(
        self,
        name: str,
        on_asdus: Callable[[list[tuple[bytes, str]], int, bool], None],
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        # ([(ASDU, why it failed the check or "")], their token, urgent): never blocks
        self.on_asdus = on_asdus
        self.connect_timeout_s = connect_timeout_s
        self.received = 0  # monitoring ASDUs handed to the link
        self.diverted = 0  # ASDUs that failed the check, handed to the link as raw data
        self.passed = 0  # ASDUs passed on to c104
        self.framing_errors = 0
        self._session: Session | None = None
        self.last_error = ""
        self._token = 0
        self._listener = _bound()
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._cut = threading.Event()
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._upstream: socket.socket | None = None  # the relay, once reached
        self._thread = threading.Thread(target=self._serve, name=f"apdu-guard {name}", daemon=True)
        self._ended = threading.Event()  # the connection (or the wait for c104) ended

    def start(self, upstream: socket.socket) -> None:
        """Carry one connection: `upstream` is the relay, reached first (link.py), so a
        relay that is away never costs a c104 client; then this port listens for c104."""
        upstream.settimeout(None)
        self._upstream = upstream
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.cut("stopped")
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._thread.ident is not None:  # started: wait for its connection to be closed
            self._ended.wait(timeout=5)

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def counts(self) -> dict[str, int]:
        return {
            "asdus_received": self.received,
            "asdus_passed": self.passed,
            "asdus_diverted": self.diverted,
            "framing_errors": self.framing_errors,
        }

    def cut(self, reason: str) -> None:
        """End the current connection now; nothing more from c104 reaches the relay."""
        self._cut.set()
        self.last_error = reason
        pair = self._sockets
        if pair is not None:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # --- accepting c104, on the guard's own short-lived thread ---------------------------

    def _serve(self) -> None:
        """The relay was reached first (`start`), then this port listens for c104:
        c104 never sees a connection that opens and closes at once (c104 2.2.1 can crash
        unmuting a connection that just closed). One connection only: when it is lost, or
        c104 does not come within `connect_timeout_s`, the link ends and the next link makes
        a new guard. The connection is then served by the guard loop's thread."""
        upstream = self._upstream
        assert upstream is not None  # start() set it
        try:
            master = self._accept_master()
        except OSError as exc:
            log.debug("device %s: c104 did not connect: %s", self.name, exc)
            upstream.close()
            self._ended.set()
            return
        for sock in (master, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(guard_loop.SEND_TIMEOUT_S)  # sends only: reads come when ready
        self._cut.clear()
        self._sockets = (master, upstream)
        session = self._session = Session(self, master, upstream)
        guard_loop.shared().call_soon(session.attach)

    def connection_ended(self, session: Session, error: BaseException) -> None:
        """On the guard loop's thread: the connection ended."""
        if isinstance(error, GuardClosed):
            log.info("device %s: guard closed the connection: %s", self.name, error)
        elif isinstance(error, OSError):
            log.debug("device %s: guard socket: %s", self.name, error)
        else:
            log.error("device %s: guard failed: %r", self.name, error, exc_info=error)
        self._sockets = self._session = None
        session.master.close()
        session.upstream.close()
        self._ended.set()

    def _accept_master(self) -> socket.socket:
        """c104's connection, within `connect_timeout_s`; the port then closes (one
        connection per guard)."""
        listener = self._listener
        try:
            listener.listen(1)
            listener.settimeout(self.connect_timeout_s)
            master, _ = listener.accept()
            master.settimeout(None)
            return master
        finally:
            listener.close()

    def durable_through(self, token: int) -> None:
        """From any thread: the ASDU with this token, and everything handed to the outbox
        before it, is durable. Never blocks (the outbox's writer thread calls it)."""
        session = self._session
        if session is not None and not self.is_cut and session.mark.raise_to(token):
            session.loop.notify(session)

    def next_token(self) -> int:
        self._token += 1
        return self._token


def _bound() -> socket.socket:
    """A loopback socket on a free port, not yet listening (connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock
