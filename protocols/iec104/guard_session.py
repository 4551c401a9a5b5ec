"""One connection of an APDU guard (`guard.py`): c104 on `master`, the relay on `upstream`,
served on the guard loop's thread (`guard_loop.py`). The sequence numbers, what is held
back from the relay until it is durable, and when to confirm it; guard.py says why."""

from __future__ import annotations

import array
import fcntl
import logging
import socket
import struct
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from protocols.iec104 import guard_loop
from protocols.iec104.ack_pacing import SEQ_MOD, AckPacer, DurableMark, ReadGather
from protocols.iec104.apdu_check import (
    MONITORING_TYPES,
    FramingError,
    check_asdu,
    frame_kind,
    frame_length,
)

if TYPE_CHECKING:
    from protocols.iec104.guard import ApduGuard

log = logging.getLogger(__name__)


class GuardClosed(Exception):
    """The relay connection ended (or was cut); the link ends with it."""


class Session:
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
        self.lock = threading.Lock()  # guards the sequence state; the guard loop's thread only
        self.pacer = AckPacer()
        self.gather = ReadGather()
        self.loop = guard_loop.shared()
        self.watching_relay = False  # the relay's socket is watched (not while gathering)
        self.ended = False

    # on the guard loop's thread

    def attach(self) -> None:
        loop = self.loop
        if self.guard.is_cut:  # stopped before the loop took it
            self.closed(GuardClosed(self.guard.last_error or "stopped"))
            return
        loop.watch(self.upstream, self, self._from_relay)
        loop.watch(self.master, self, self._from_master)
        self.watching_relay = True

    def _from_relay(self, data: bytes) -> None:
        self._take(data, self._on_relay)

    def _from_master(self, data: bytes) -> None:
        self._take(data, self._on_master)

    def _take(self, data: bytes, handler: Callable[[bytes], None]) -> None:
        if not data or self.guard.is_cut:
            raise self._ended_error()
        handler(data)
        self._reschedule()

    def notified(self) -> None:
        """The durable mark rose (`ApduGuard.durable_through`)."""
        if self.ended:  # closed after it was notified
            return
        if self.guard.is_cut:
            raise self._ended_error()
        self._on_durable()
        self._reschedule()

    def _ended_error(self) -> GuardClosed:
        return GuardClosed(self.guard.last_error or "connection closed")

    def timer(self) -> None:
        """The confirmation's deadline, or the end of a gather."""
        if self.pacer.expired():
            with self.lock:
                self.pacer.sent()
                self._send_nr(self._limit())
        self._reschedule()

    def _reschedule(self) -> None:
        """While a bursting relay's frames gather, its socket is left alone; wake for the
        end of that or the confirmation's deadline, whichever comes first."""
        loop, gather = self.loop, self.gather.remaining()
        if gather and self.watching_relay:
            loop.pause(self.upstream)
            self.watching_relay = False
        elif not gather and not self.watching_relay:
            loop.resume(self.upstream)
            self.watching_relay = True
        timeout = self.pacer.timeout()
        if gather:
            timeout = gather if timeout is None else min(timeout, gather)
        loop.wake_at(self, None if timeout is None else time.monotonic() + timeout)

    def closed(self, error: BaseException) -> None:
        if self.ended:
            return
        self.ended = True
        for sock in (self.upstream, self.master):
            self.loop.unwatch(sock)
        self.loop.wake_at(self, None)
        self.guard.connection_ended(self, error)

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
            self._hand_on(kept, len(data))  # before c104 could see what followed them (an ACT_TERM)
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

    def _hand_on(self, kept: list[tuple[bytes, str]], read: int) -> None:
        """This read's frames (`read` bytes) to the link, then whether to gather."""
        guard = self.guard
        try:
            guard.on_asdus(kept, self.token, self.pacer.commit_now(self.relay_vr, self.sent_nr))
        except Exception as exc:  # noqa: BLE001 - not stored: end before anything confirms it
            guard.cut(f"could not store an ASDU: {type(exc).__name__}: {exc}")
            raise GuardClosed(guard.last_error) from None
        # After the decoding: a relay sending back to back has its next frames here by now.
        waiting = (self.relay_vr - self.sent_nr) % SEQ_MOD
        self.gather.read(waiting, lambda: _pending(self.upstream) >= read)

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

    def _on_durable(self) -> None:
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


_PENDING = array.array("i", [0])  # FIONREAD's answer; the guard loop's thread only


def _pending(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive buffer (FIONREAD; never blocks)."""
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, _PENDING, True)
    except (OSError, ValueError):  # closed meanwhile (its number is then -1)
        return 0
    return _PENDING[0]
