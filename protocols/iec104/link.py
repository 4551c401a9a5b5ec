"""The c104 client of one relay: the only module where c104's threads exist.

No `from __future__ import annotations` here: c104 checks callback annotations as real
objects, and string annotations break every callback (docs/domain.md, c104).

c104 runs the session with the relay (through the APDU guard, `guard.py`): STARTDT, TESTFR,
its timers, the general interrogation and clock sync. The relay's data does not go through
c104: the guard hands each monitoring ASDU (and each ASDU that failed its check) to
`_on_asdu` on the guard loop's thread, which decodes it (`codec.py`, or `raw_asdu.py` for a
failed one) and submits its objects to the outbox without waiting for the commit
(`durable_ack.py`). The relay's acknowledgement is held in the guard until the commit
returned and the ASDU's token was reported durable.

Threads and where they cross:
- `_on_asdu` runs on the guard loop's thread. Objects at a `consumed` address (the profile's
  identity and settings points) skip the sink: they go to `on_consumed` on the event loop
  (state a general interrogation re-reads, so not held to the ack rule). A sink failure
  there cuts the guard first, so nothing that was not stored is ever acknowledged.
- `on_state_change` runs on c104's client thread. It unmutes an `OPEN_MUTED` connection
  (the stuck-muted workaround) and hands the state to asyncio in `_in_loop`, the one
  `call_soon_threadsafe` crossing.
- Blocking commands (general interrogation, clock sync, stop) run via `asyncio.to_thread`.

Reconnect policy: the link reaches the relay before a c104 client exists (an absent relay
costs a connect, not a client's threads); c104 retries only until the first OPEN (within
`connect_timeout_s`); a lost open connection raises `LinkError` and stops the client: the
supervisor owns backoff and comms alarms, and a fresh client (in its turn:
`connect_turns.py`) starts from a known state (unmute, interrogation) instead of whatever
c104 kept.
"""

import asyncio
import ipaddress
import logging
import socket
import threading
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import c104

from protocols.driver import DECODE_ERRORS, TIMEOUTS, ObservationSink
from protocols.errors import LinkError, WriteRefused
from protocols.iec104 import codec
from protocols.iec104.config import Iec104Device
from protocols.iec104.connect_turns import Turn
from protocols.iec104.durable_ack import DurableAcks, poster
from protocols.iec104.guard import ApduGuard
from protocols.iec104.interrogation import interrogation
from protocols.iec104.raw_asdu import diverted_observation
from protocols.observations import LinkStateObservation, PointObservation

log = logging.getLogger(__name__)

RECENT_EVENTS = 50
_OPEN_STATES = (c104.ConnectionState.OPEN, c104.ConnectionState.OPEN_MUTED)


@dataclass(frozen=True)
class _LinkEvent:
    kind: str  # "state" | "sink_failed"
    state: c104.ConnectionState | None = None
    detail: str = ""


class Iec104Link:
    """One c104 `Client` with one connection to one relay, for the duration of `run`."""

    def __init__(
        self,
        device: Iec104Device,
        known_addresses: frozenset[str],
        sink: ObservationSink,
        consumed: frozenset[str] = frozenset(),
        on_consumed: Callable[[PointObservation], None] | None = None,
    ) -> None:
        self.device = device
        self.known_addresses = known_addresses
        self.sink = sink
        # Addresses the driver reads for the inventory (identity, settings): handed to
        # `on_consumed` on the event loop instead of the sink; never events.
        self.consumed = consumed
        self.on_consumed = on_consumed
        # Set once the general interrogation after connecting was confirmed.
        self.ready = asyncio.Event()
        self.received = 0  # objects, delivered or consumed
        self.asdus = 0  # ASDUs with at least one object delivered
        self.counters: Counter[str] = Counter()  # decode_errors (the guard loop's thread), timeouts
        self.latest: dict[str, PointObservation] = {}  # address -> last observation
        self.recent: deque[PointObservation] = deque(maxlen=RECENT_EVENTS)
        self._reported_unknown: set[str] = set()  # addresses not in the profile, logged once
        self._events: asyncio.Queue[_LinkEvent] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: c104.Connection | None = None
        self._open = False
        self._lock = threading.Lock()
        self._interrogation_lock = asyncio.Lock()
        # c104 talks to the relay only through this guard (guard.py: what c104 must not see).
        self.guard = ApduGuard(
            self.name,
            on_asdus=self._on_asdus,
            connect_timeout_s=device.connect_timeout_s,
        )
        self.acks = DurableAcks(self.name, self.guard, poster(sink), self._sink_failed)

    @property
    def name(self) -> str:
        d = self.device
        return f"{d.id} ({d.host}:{d.port} ca={d.common_address})"

    # --- asyncio side -----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, interrogate, then wait until the link is lost (`LinkError`) or cancelled.
        The client is stopped (threads joined, socket closed) on every way out."""
        self._loop = asyncio.get_running_loop()
        turn = Turn()  # connect_turns.py: relays that dropped together reconnect in turns
        await turn.take()
        client: c104.Client | None = None
        try:
            self.guard.start(await self._reach_relay())
            client = c104.Client(
                tick_rate_ms=self.device.tick_rate_ms,
                command_timeout_ms=self.device.command_timeout_ms,
            )
            self._connection = self._configure(client)
            client.start()
            await self._wait_open()
            log.info("device %s: connected", self.name)
            await self.sink.deliver([LinkStateObservation(self.device.id, True, "connected")])
            await self.interrogate()
            turn.give_back()
            self.ready.set()
            if self.device.clock_sync:
                await self.clock_sync()
            reason = await self._wait_lost()
            log.warning("device %s: link lost: %s", self.name, reason)
            await self.sink.deliver([LinkStateObservation(self.device.id, False, reason)])
            raise LinkError(f"{self.device.id}: {reason}")
        finally:
            turn.give_back()
            self._open = False
            self._connection = None  # nothing of a stopped connection is kept
            if client is not None:
                await asyncio.to_thread(client.stop)
            await asyncio.to_thread(self.guard.stop)
            if client is not None:
                log.info("device %s: client stopped", self.name)

    async def _reach_relay(self) -> socket.socket:
        """The relay first, in the event loop, and only then a c104 client: a relay that is
        away costs a connect per attempt, not a client and its threads (nor a worker
        thread blocked for `connect_timeout_s`)."""
        d = self.device
        loop = asyncio.get_running_loop()
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(d.connect_timeout_s):
                family, address = await _address(loop, d.host, d.port)
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
        except BaseException as exc:
            if sock is not None:
                sock.close()
            if isinstance(exc, OSError):  # refused, timed out (TimeoutError), no such host
                raise LinkError(
                    f"{d.id}: relay {d.host}:{d.port} not reachable: {str(exc) or 'timed out'}"
                ) from None
            raise
        return sock

    async def interrogate(self) -> None:
        """General interrogation of the relay's station (answers arrive through the point
        callbacks; `interrogation.py` says why it may be asked again)."""
        ca = self.device.common_address
        # One at a time: c104 refuses a second C_IC_NA_1 while one runs ("already running"),
        # and the connect GI, an on-demand poll and the inventory's refresh may overlap.
        async with self._interrogation_lock:
            connection = self._require_open()
            log.info("device %s: general interrogation", self.name)
            try:
                # asyncio.timeout: 3.11's wait_for can swallow a cancellation racing the result
                async with asyncio.timeout(self.device.interrogation_timeout_s):
                    done = await interrogation(connection, ca, self.name)
            except TimeoutError:
                self.counters[TIMEOUTS] += 1
                raise LinkError(f"{self.device.id}: general interrogation timed out") from None
        if not done:
            raise LinkError(f"{self.device.id}: general interrogation not confirmed")

    async def clock_sync(self) -> None:
        """Set the relay's clock (a write: only with allow_commands). c104 sends the OS time
        as correct UTC whatever the local TZ (verified on the wire)."""
        if not self.device.allow_commands:
            raise WriteRefused(f"{self.device.id}: clock sync needs allow_commands = true")
        connection = self._require_open()
        ok = await asyncio.to_thread(connection.clock_sync, self.device.common_address)
        if not ok:
            log.warning("device %s: clock sync not confirmed", self.name)

    def _require_open(self) -> c104.Connection:
        if self._connection is None or not self._open:
            raise LinkError(f"{self.device.id}: not connected")
        return self._connection

    async def _wait_open(self) -> None:
        try:
            async with asyncio.timeout(self.device.connect_timeout_s):
                while True:
                    event = await self._events.get()
                    if event.kind == "state" and event.state == c104.ConnectionState.OPEN:
                        self._open = True
                        return
        except TimeoutError:
            raise LinkError(
                f"{self.device.id}: no connection to {self.device.host}:{self.device.port} "
                f"within {self.device.connect_timeout_s:g}s"
            ) from None

    async def _wait_lost(self) -> str:
        while True:
            event = await self._events.get()
            if event.kind == "sink_failed":
                return f"observation sink failed: {event.detail}"
            if event.state is not None and event.state not in _OPEN_STATES:
                self._open = False
                return f"connection {event.state.name}"

    def _sink_failed(self, detail: str) -> None:
        self._to_loop(_LinkEvent("sink_failed", detail=detail))

    def _to_loop(self, event: _LinkEvent) -> None:
        self._in_loop(self._events.put_nowait, event)

    def _in_loop(self, call: Callable[[Any], None], item: object) -> None:
        """The one crossing from c104's threads into asyncio."""
        loop = self._loop
        if loop is None or loop.is_closed():
            log.debug("device %s: %r after loop closed", self.name, item)
            return
        try:
            loop.call_soon_threadsafe(call, item)
        except RuntimeError:  # the loop closed between the check and the call
            log.debug("device %s: %r after loop closed", self.name, item)

    # --- c104 setup -------------------------------------------------------------------------

    def _configure(self, client: c104.Client) -> c104.Connection:
        client.originator_address = self.device.originator_address
        # MUTED plus unmute-on-OPEN_MUTED: Init.ALL / NONE leave some connections stuck muted.
        connection = client.add_connection(
            ip="127.0.0.1", port=self.guard.port, init=c104.Init.MUTED
        )
        if connection is None:
            raise LinkError(f"{self.device.id}: c104 refused {self.device.host}:{self.device.port}")
        # c104 sees only the confirmations of its own commands (the relay's data goes to
        # `_on_asdu`); t2 = 1 s (lib60870: 10 s) confirms those within a second.
        connection.protocol_parameters.confirm_interval = 1
        connection.add_station(common_address=self.device.common_address)
        # Holding the link weakly: c104 keeps callbacks in C++, where the garbage collector
        # cannot see a cycle back to the link, and does not free every stopped connection
        # (test_link_lifetime.py; bench/link_flap.py).
        on_state_change, on_unexpected_message = _weak_callbacks(self)
        connection.on_state_change(callable=on_state_change)
        connection.on_unexpected_message(callable=on_unexpected_message)
        # Never on_receive_raw / on_send_raw: they leak per frame (upstream #77).
        return connection

    # --- c104 threads -----------------------------------------------------------------------

    def _on_state_change(self, connection: c104.Connection, state: c104.ConnectionState) -> None:
        log.debug("device %s: connection state %s", self.name, state.name)
        if state == c104.ConnectionState.OPEN_MUTED:
            connection.unmute()
        self._to_loop(_LinkEvent("state", state=state))

    def _on_unexpected_message(
        self, connection: c104.Connection, message: c104.IncomingMessage, cause: c104.Umc
    ) -> None:
        # Only what the guard passes on reaches c104: the confirmations of its commands.
        log.debug("device %s: c104 flagged %s %s", self.name, message.type.name, cause.name)

    # --- the APDU guard loop's thread ---------------------------------------------------------

    def _on_asdus(self, asdus: list[tuple[bytes, str]], token: int, urgent: bool) -> None:
        """The ASDUs of one read from the relay (with why each failed the check, or ""),
        decoded and submitted to the outbox together without waiting (committed at once if
        `urgent`); the guard holds the relay's acknowledgement until `token` is reported
        durable. Raises when the sink fails (the guard then ends the connection
        unacknowledged)."""
        device_id, ca = self.device.id, self.device.common_address
        try:
            decoded = [
                [diverted_observation(device_id, ca, asdu, reason)]
                if reason
                else codec.decode_asdu(device_id, ca, asdu)
                for asdu, reason in asdus
            ]
            self.acks.hand_on(self._sort(decoded), token, urgent)
        except Exception as exc:
            # Cut the guard first: nothing c104 sends from now on reaches the relay, so the
            # frame that could not be stored is never acknowledged and the relay keeps it.
            detail = f"{type(exc).__name__}: {exc}"
            self.guard.cut(f"observation sink failed: {detail}")
            log.exception("device %s: could not store a received ASDU", self.name)
            self._to_loop(_LinkEvent("sink_failed", detail=detail))
            raise

    def _sort(self, decoded: list[list[PointObservation]]) -> list[PointObservation]:
        """Remember each object (of each ASDU); those at a consumed address go to
        `on_consumed`, the rest are returned for the outbox."""
        delivered: list[PointObservation] = []
        consumed, known, latest = self.consumed, self.known_addresses, self.latest
        readable = codec.UNREADABLE.isdisjoint  # no key of an unreadable part
        with self._lock:
            for objects in decoded:
                before = len(delivered)
                self.received += len(objects)
                for obs in objects:
                    address = obs.address
                    if address in consumed:
                        # Identity / settings state, re-read by every interrogation: not an event.
                        if self.on_consumed is not None:
                            self._in_loop(self.on_consumed, obs)
                        continue
                    latest[address] = obs
                    if not obs.measurement:
                        self.recent.append(obs)
                    if not readable(obs.details):
                        self.counters[DECODE_ERRORS] += 1
                    if address not in known:
                        self._report_unknown(obs)
                    delivered.append(obs)
                self.asdus += len(delivered) > before
        return delivered

    def _report_unknown(self, obs: PointObservation) -> None:
        if obs.address in self._reported_unknown or len(self._reported_unknown) >= 10_000:
            return
        self._reported_unknown.add(obs.address)
        log.warning(
            "device %s: address %s (%s) is not in the profile; reported as unknown",
            self.name,
            obs.address,
            obs.details.get("type"),
        )


async def _address(
    loop: asyncio.AbstractEventLoop, host: str, port: int
) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The relay's address family and address; a host name is looked up (in a worker
    thread), an IP address as configured is not."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return infos[0][0], infos[0][4]
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (host, port)


def _weak_callbacks(link: Iec104Link) -> tuple[Callable[..., None], Callable[..., None]]:
    """The link's c104 callbacks, holding it only weakly (c104 checks the annotations)."""
    ref = weakref.ref(link)

    def on_state_change(connection: c104.Connection, state: c104.ConnectionState) -> None:
        if (target := ref()) is not None:
            target._on_state_change(connection, state)  # noqa: SLF001

    def on_unexpected_message(
        connection: c104.Connection, message: c104.IncomingMessage, cause: c104.Umc
    ) -> None:
        if (target := ref()) is not None:
            target._on_unexpected_message(connection, message, cause)  # noqa: SLF001

    return on_state_change, on_unexpected_message
