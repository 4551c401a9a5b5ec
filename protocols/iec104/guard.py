"""The APDU guard: c104's only way to the relay, and the agent's way to the relay's data.

c104 connects to this guard on a loopback port, never to the relay; one thread per link
reads both sockets (`selectors`). c104 runs the session: STARTDT, TESTFR, its timers, and
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
(k = 12) keeps moving. A bursting relay is read every 2 ms, not per frame (`ReadGather`).

`cut(reason)` ends the connection from any thread at once and lets nothing more from c104
through: the link calls it when the sink fails, so that frame is never acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable

from protocols.iec104.ack_pacing import SEQ_MOD, AckPacer, DurableMark, ReadGather
from protocols.iec104.apdu_check import (
    MONITORING_TYPES,
    FramingError,
    check_asdu,
    frame_kind,
    frame_length,
)

log = logging.getLogger(__name__)


class GuardClosed(Exception):
    """The relay connection ended (or was cut); the link ends with it."""


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
        self._session: _Session | None = None
        self.last_error = ""
        self._token = 0
        self._listener = _bound()
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._cut = threading.Event()
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._upstream: socket.socket | None = None  # the relay, once reached
        self._thread = threading.Thread(target=self._serve, name=f"apdu-guard {name}", daemon=True)

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

    # --- the guard's thread -----------------------------------------------------------------

    def _serve(self) -> None:
        """The relay was reached first (`start`), then this port listens for c104:
        c104 never sees a connection that opens and closes at once (c104 2.2.1 can crash
        unmuting a connection that just closed). One connection only: when it is lost, or
        c104 does not come within `connect_timeout_s`, the link ends and the next link makes
        a new guard."""
        upstream = self._upstream
        assert upstream is not None  # start() set it
        try:
            master = self._accept_master()
        except OSError as exc:
            log.debug("device %s: c104 did not connect: %s", self.name, exc)
            upstream.close()
            return
        for sock in (master, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._cut.clear()
        self._sockets = (master, upstream)
        self._session = _Session(self, master, upstream)
        try:
            self._session.pump()
        except GuardClosed as exc:
            log.info("device %s: guard closed the connection: %s", self.name, exc)
        except OSError as exc:
            log.debug("device %s: guard socket: %s", self.name, exc)
        finally:
            self._sockets = self._session = None
            master.close()
            upstream.close()

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
        if session is not None and not self.is_cut:
            session.mark.raise_to(token)

    def next_token(self) -> int:
        self._token += 1
        return self._token


def _bound() -> socket.socket:
    """A loopback socket on a free port, not yet listening (connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class _Session:
    """One connection: c104 on `master`, the relay on `upstream`.

    Relay sequence numbers: every frame before `stored_vr` was either handed to the link or
    passed on to c104. Frames handed to the link wait in `undurable` until the link reports
    their token durable. An N(R) sent to the relay never passes the first entry of
    `undurable` and never goes backwards. `unconfirmed` only follows c104's own N(R).
    """

    def __init__(self, guard: ApduGuard, master: socket.socket, upstream: socket.socket) -> None:
        self.guard = guard
        self.master = master
        self.upstream = upstream
        self.from_relay = bytearray()
        self.from_master = bytearray()
        self.relay_vr = 0  # next N(S) expected from the relay
        self.stored_vr = 0  # every relay frame before it: stored, or in `unconfirmed`
        self.master_vs = 0  # next N(S) c104 sees
        self.unconfirmed = 0  # frames passed on to c104 that c104 has not confirmed
        self.confirmed_base = 0  # c104 numbering of the first of them
        self.sent_nr = 0  # last N(R) the relay got
        # (relay N(S), token) of frames handed to the link not known durable
        self.undurable: deque[tuple[int, int]] = deque()
        self.mark = DurableMark()  # every token up to `mark.token` is durable
        self.kept: list[tuple[bytes, str]] = []  # this read's frames for the link
        self.token = 0  # theirs
        self.lock = threading.Lock()  # guards the sequence state; the guard's thread only
        self.pacer = AckPacer()
        self.gather = ReadGather()

    def pump(self) -> None:
        # Two selectors: everything, and everything but the relay (while its frames gather).
        with selectors.DefaultSelector() as every, selectors.DefaultSelector() as quiet:
            every.register(self.upstream, selectors.EVENT_READ, self._on_relay)
            for selector in (every, quiet):
                selector.register(self.master, selectors.EVENT_READ, self._on_master)
                selector.register(self.mark.reader, selectors.EVENT_READ, self._on_durable)
            try:
                self._pump(every, quiet)
            finally:
                self.mark.close()

    def _pump(self, every: selectors.BaseSelector, quiet: selectors.BaseSelector) -> None:
        while True:
            timeout, gather = self.pacer.timeout(), self.gather.remaining()
            if gather:
                timeout = gather if timeout is None else min(timeout, gather)
            for key, _ in (quiet if gather else every).select(timeout):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                if not data or self.guard.is_cut:
                    raise GuardClosed(self.guard.last_error or "connection closed")
                key.data(data)
            if self.pacer.expired():
                with self.lock:
                    self.pacer.sent()
                    self._send_nr(self._limit())

    # relay -> c104

    def _on_relay(self, data: bytes) -> None:
        buffer = self.from_relay
        buffer += data
        offset, out, kept = 0, bytearray(), self.kept
        try:
            while (length := frame_length(buffer, offset)) is not None:
                if len(buffer) - offset < length:
                    break
                body = bytes(buffer[offset + 2 : offset + length])
                offset += length
                out += self._relay_frame(body)
        except FramingError as exc:
            self.guard.framing_errors += 1
            raise GuardClosed(f"framing error from the relay: {exc}") from None
        finally:
            del buffer[:offset]
        if kept:
            self.kept = []
            self._hand_on(kept)  # before c104 could see what followed them (an ACT_TERM)
        if out:
            self.master.sendall(out)

    def _relay_frame(self, body: bytes) -> bytes:
        if frame_kind(body) != "I":
            return bytes([0x68, len(body)]) + body
        ns = struct.unpack_from("<H", body, 0)[0] >> 1
        if ns != self.relay_vr:
            raise FramingError(f"N(S) {ns} out of sequence, expected {self.relay_vr}")
        self.relay_vr = (ns + 1) % SEQ_MOD
        asdu = body[4:]
        verdict = check_asdu(asdu)
        if not verdict.ok or asdu[0] in MONITORING_TYPES:
            self._keep(ns, asdu, verdict.reason)
            return b""
        with self.lock:
            self.unconfirmed += 1
            self.stored_vr = self.relay_vr
        control = struct.pack("<H", self.master_vs << 1) + body[2:4]
        self.master_vs = (self.master_vs + 1) % SEQ_MOD
        self.guard.passed += 1
        return bytes([0x68, len(body)]) + control + asdu

    def _keep(self, ns: int, asdu: bytes, reason: str) -> None:
        """A frame for the link, under the token of this read: confirmed once durable."""
        guard = self.guard
        if not self.kept:
            self.token = guard.next_token()
        self.kept.append((asdu, reason))
        with self.lock:
            self.undurable.append((ns, self.token))
            self.stored_vr = self.relay_vr
        if not reason:
            guard.received += 1
            return
        guard.diverted += 1
        if guard.diverted == 1 or guard.diverted % 1000 == 0:
            log.warning(
                "device %s: ASDU %s failed the check (%s); stored as raw data (%d so far)",
                guard.name,
                asdu.hex(" "),
                reason,
                guard.diverted,
            )

    def _hand_on(self, kept: list[tuple[bytes, str]]) -> None:
        guard = self.guard
        self.gather.read((self.relay_vr - self.sent_nr) % SEQ_MOD)
        try:
            guard.on_asdus(kept, self.token, self.pacer.commit_now(self.relay_vr, self.sent_nr))
        except Exception as exc:  # noqa: BLE001 - not stored: end before anything confirms it
            guard.cut(f"could not store an ASDU: {type(exc).__name__}: {exc}")
            raise GuardClosed(guard.last_error) from None

    # c104 -> relay

    def _on_master(self, data: bytes) -> None:
        buffer = self.from_master
        buffer += data
        offset, out = 0, bytearray()
        try:
            with self.lock:
                while (length := frame_length(buffer, offset)) is not None:
                    if len(buffer) - offset < length:
                        break
                    body = bytearray(buffer[offset + 2 : offset + length])
                    offset += length
                    kind = frame_kind(body)
                    if kind in ("I", "S"):
                        self._translate(struct.unpack_from("<H", body, 2)[0] >> 1)
                        nr = self._limit()  # what is durable, whatever c104 confirmed
                        if kind == "S" and not self._advances(nr):
                            continue  # the relay already has this confirmation
                        nr = nr if self._advances(nr) else self.sent_nr
                        struct.pack_into("<H", body, 2, nr << 1)
                        self.sent_nr = nr
                    out += bytes([0x68, len(body)]) + body
                if out and not self.guard.is_cut:
                    self.upstream.sendall(out)
        except FramingError as exc:  # c104 itself sent something odd: end cleanly
            raise GuardClosed(f"framing error from c104: {exc}") from None
        finally:
            del buffer[:offset]

    def _translate(self, master_nr: int) -> None:
        """Follow c104's N(R): the frames it has taken in (lock held)."""
        done = (master_nr - self.confirmed_base) % SEQ_MOD
        if done > self.unconfirmed:
            raise FramingError(f"c104 confirmed {done} frames, only {self.unconfirmed} open")
        self.unconfirmed -= done
        self.confirmed_base = master_nr

    def _limit(self) -> int:
        """The highest N(R) the relay may get: up to the first frame not known durable."""
        durable = self.mark.token
        while self.undurable and self.undurable[0][1] <= durable:
            self.undurable.popleft()
        return self.undurable[0][0] if self.undurable else self.stored_vr

    def _on_durable(self, _: bytes) -> None:
        self.mark.woken()
        with self.lock:
            nr = self._limit()
            if self.pacer.now(self._confirmable(nr)):
                self._send_nr(nr)

    def _confirmable(self, nr: int) -> int:
        """Frames an N(R) of `nr` would confirm that the relay has not heard of."""
        return (nr - self.sent_nr) % SEQ_MOD if self._advances(nr) else 0

    def _advances(self, nr: int) -> bool:
        return 0 < (nr - self.sent_nr) % SEQ_MOD <= (self.stored_vr - self.sent_nr) % SEQ_MOD

    def _send_nr(self, nr: int) -> None:
        """An S-frame to the relay, if it confirms more than it has and the connection was
        not cut (lock held)."""
        if self._advances(nr) and not self.guard.is_cut:
            self.upstream.sendall(bytes([0x68, 4, 0x01, 0]) + struct.pack("<H", nr << 1))
            self.sent_nr = nr
            self.pacer.sent()
