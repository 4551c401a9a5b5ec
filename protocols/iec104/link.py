"""The c104 client of one relay: the only module where c104's threads exist.

No `from __future__ import annotations` here: c104 checks callback annotations as real
objects, and string annotations break every callback (docs/domain.md, c104).

Threads and where they cross:
- Point callbacks (and `on_new_point`, `on_unexpected_message`) run on lib60870's receive
  thread. They hand each object to an `AsduBatcher`, which submits each ASDU's objects to
  the outbox (`sink.submit`) when its last object arrived, without waiting for the commit.
  The acknowledgement is held in the APDU guard instead: when the commit returns,
  `durable_ack.py` reports the ASDU's token durable, and only then may the relay be told
  it was received (guard.py). Objects at a `consumed` address
  (the profile's identity and settings points) skip the sink: they go to `on_consumed` on
  the event loop (state a general interrogation re-reads, so not held to the ack rule).
- `on_state_change` runs on c104's client thread. It unmutes an `OPEN_MUTED` connection
  (the stuck-muted workaround) and hands the state to asyncio in `_in_loop`, the one
  `call_soon_threadsafe` crossing.
- The APDU guard's thread (`guard.py`, c104's only way to the relay) calls
  `_store_diverted` for a frame c104 must not see: `sink.deliver_blocking` there, before
  the guard reads on. A sink failure on either thread cuts the guard first, so nothing
  that was not stored is ever acknowledged to the relay.
- Blocking commands (general interrogation, clock sync, stop) run via `asyncio.to_thread`.

An ASDU that reaches no callback has no token to report. lib60870 confirms an I-frame only
after its callbacks returned, so once c104 confirmed it, whatever it carried was submitted;
`_release_c104_confirmed` (the loop's stale check) then submits an empty barrier and
reports c104's last confirmed token durable when it commits, so such a frame
waits about a second at most, far inside the relay's t1 (15 s).

Reconnect policy: c104 retries only until the first OPEN (within `connect_timeout_s`); a
lost open connection raises `LinkError` and stops the client: the supervisor owns backoff
and comms alarms, and a fresh client (in its turn: `connect_turns.py`) starts from a known
state (unmute, interrogation) instead of whatever c104 kept.
"""

import asyncio
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import c104

from protocols.driver import DECODE_ERRORS, TIMEOUTS, ObservationSink
from protocols.errors import LinkError, WriteRefused
from protocols.iec104 import codec
from protocols.iec104.asdu_batch import AsduBatcher
from protocols.iec104.asdu_source import AsduSource
from protocols.iec104.config import Iec104Device
from protocols.iec104.connect_turns import Turn
from protocols.iec104.durable_ack import DurableAcks, poster
from protocols.iec104.guard import ApduGuard
from protocols.iec104.interrogation import interrogation
from protocols.iec104.raw_asdu import cot_label, diverted_observation
from protocols.observations import LinkStateObservation, PointObservation

log = logging.getLogger(__name__)

RECENT_EVENTS = 50
_OPEN_STATES = (c104.ConnectionState.OPEN, c104.ConnectionState.OPEN_MUTED)
# c104 drops these unexpected messages instead of giving them to a point: report them.
_DROPPED = (c104.Umc.MISMATCHED_TYPE_ID, c104.Umc.UNKNOWN_IOA, c104.Umc.UNKNOWN_CA)


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
        self.received = 0
        self.counters: Counter[str] = Counter()  # decode_errors (this thread only), timeouts
        self.latest: dict[str, PointObservation] = {}  # address -> last observation
        self.recent: deque[PointObservation] = deque(maxlen=RECENT_EVENTS)
        self._reported_unknown: set[str] = set()
        self._events: asyncio.Queue[_LinkEvent] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: c104.Connection | None = None
        self._open = False
        self._lock = threading.Lock()
        self._interrogation_lock = asyncio.Lock()
        # c104 talks to the relay only through this guard (guard.py: what c104 must not see).
        self.guard = ApduGuard(
            self.name,
            (device.host, device.port),
            on_diverted=self._store_diverted,
            connect_timeout_s=device.connect_timeout_s,
        )
        self.acks = DurableAcks(self.name, self.guard, poster(sink), self._sink_failed)
        self.batcher = AsduBatcher(self.acks.hand_on)
        self._asdus = AsduSource(self.guard.asdus)

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
        client = c104.Client(
            tick_rate_ms=self.device.tick_rate_ms,
            command_timeout_ms=self.device.command_timeout_ms,
        )
        self.guard.start()
        try:
            self._connection = self._configure(client)
            client.start()
            await self._wait_open()
            log.info("device %s: connected", self.name)
            await self.sink.deliver([LinkStateObservation(self.device.id, True, "connected")])
            stale_guard = asyncio.create_task(self._flush_stale())
            try:
                await self.interrogate()
                turn.give_back()
                self.ready.set()
                if self.device.clock_sync:
                    await self.clock_sync()
                reason = await self._wait_lost()
            finally:
                stale_guard.cancel()
            await asyncio.to_thread(self.batcher.flush)
            log.warning("device %s: link lost: %s", self.name, reason)
            await self.sink.deliver([LinkStateObservation(self.device.id, False, reason)])
            raise LinkError(f"{self.device.id}: {reason}")
        finally:
            turn.give_back()
            self._open = False
            await asyncio.to_thread(client.stop)
            await asyncio.to_thread(self.guard.stop)
            log.info("device %s: client stopped", self.name)

    async def _flush_stale(self) -> None:
        """The batcher's safety net: an ASDU whose last object never reached a callback;
        and a frame c104 confirmed without a callback, which the guard would hold."""
        while True:
            await asyncio.sleep(self.batcher.stale_after_s / 2)
            if self.guard.held_by_c104_only():
                await asyncio.to_thread(self._release_c104_confirmed)
            if self.batcher.stale():
                try:
                    await asyncio.to_thread(self.batcher.flush_stale)
                except Exception as exc:
                    log.exception("device %s: could not store a received ASDU", self.name)
                    detail = f"{type(exc).__name__}: {exc}"
                    self._events.put_nowait(_LinkEvent("sink_failed", detail=detail))

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
        # t2 = 1 s (lib60870: 10 s): c104 confirms what it holds within a second even when
        # fewer than w = 8 frames came. The relay hears the guard's confirmations (after
        # each commit); c104's only matter for frames that reach no callback.
        connection.protocol_parameters.confirm_interval = 1
        connection.add_station(common_address=self.device.common_address)
        connection.on_state_change(callable=self._on_state_change)
        connection.on_unexpected_message(callable=self._on_unexpected_message)
        # Points are added when first seen, with the type the relay actually sends: every
        # IOA (in the profile or not) reaches `_on_point`; the agent decides what is unknown.
        client.on_new_station(callable=self._on_new_station)
        client.on_new_point(callable=self._on_new_point)
        # Never on_receive_raw / on_send_raw: they leak per frame (upstream #77).
        return connection

    # --- c104 threads -----------------------------------------------------------------------

    def _on_state_change(self, connection: c104.Connection, state: c104.ConnectionState) -> None:
        log.debug("device %s: connection state %s", self.name, state.name)
        if state == c104.ConnectionState.OPEN_MUTED:
            connection.unmute()
        self._to_loop(_LinkEvent("state", state=state))

    def _on_new_station(
        self, client: c104.Client, connection: c104.Connection, common_address: int
    ) -> None:
        log.warning(
            "device %s: unconfigured common address %d; its points are reported as '%d:<ioa>'",
            self.name,
            common_address,
            common_address,
        )
        connection.add_station(common_address=common_address)

    def _on_new_point(
        self, client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type
    ) -> None:
        point = station.add_point(io_address=io_address, type=point_type)
        if point is None:
            log.error("device %s: c104 refused point %d %s", self.name, io_address, point_type)
            return
        point.on_receive(callable=self._on_point)
        address = self._address(station.common_address, io_address)
        if address not in self.known_addresses:
            log.warning(
                "device %s: address %s (%s) is not in the profile; reported as unknown",
                self.name,
                address,
                point_type.name,
            )

    def _on_point(
        self, point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        self._deliver(message, {})
        return c104.ResponseState.SUCCESS

    def _on_unexpected_message(
        self, connection: c104.Connection, message: c104.IncomingMessage, cause: c104.Umc
    ) -> None:
        if cause not in _DROPPED:
            # e.g. INVALID_COT for time-tagged GI answers: c104 still hands those to the point.
            log.debug("device %s: c104 flagged %s %s", self.name, message.type.name, cause.name)
            return
        # c104 drops these (a relay answering GI with M_SP_NA_1 and sending M_SP_TB_1
        # spontaneously for the same IOA is common): deliver them ourselves.
        what = f"{cause.name} for ioa {message.io_address} ({message.type.name})"
        log.info("device %s: %s; delivered anyway", self.name, what)
        self._deliver(message, {"c104_unexpected": cause.name})

    def _deliver(self, message: c104.IncomingMessage, flags: dict[str, Any]) -> None:
        """Convert and hand on to the outbox, on the receive thread; the guard holds the
        relay's acknowledgement until the commit returned. The ASDU's bytes come from the
        guard (`asdu_source.py`): never `message.raw`."""
        try:
            ca, ioa = message.common_address, message.io_address
            type_name = codec.enum_name(message.type)
            cot = int(message.cot.value)
            found = self._asdus.find(codec.TYPE_IDS[type_name], ca, ioa)
            key, asdu = found if found is not None else (object(), None)
            cot_name = cot_label(cot)
            if cot_name.startswith("COT_"):  # a cause c104 does not name: keep its number
                flags = {**flags, "cot": cot}
            obs = codec.to_observation(
                self.device.id,
                self._address(ca, ioa),
                io_address=ioa,
                common_address=ca,
                type_name=type_name,
                cot_name=cot_name,
                info=message.info,
                raw=asdu,
                flags={"test": message.is_test, "negative": message.is_negative, **flags},
            )
            self.counters[DECODE_ERRORS] += bool(codec.UNREADABLE & obs.details.keys())
            if obs.address in self.consumed:
                # Identity / settings state, re-read by every interrogation: not an event.
                with self._lock:
                    self.received += 1
                if self.on_consumed is not None:
                    self._in_loop(self.on_consumed, obs)
                self.batcher.add(None, key, message.number_of_objects)
                return
            self._remember(obs)
            self.batcher.add(obs, key, message.number_of_objects)
        except Exception as exc:  # an exception must never reach c104's thread
            # Cut the guard first: nothing c104 sends from now on reaches the relay, so the
            # frame that could not be stored is never acknowledged and the relay keeps it.
            detail = f"{type(exc).__name__}: {exc}"
            self.guard.cut(f"observation sink failed: {detail}")
            log.exception("device %s: could not store a received message", self.name)
            self._to_loop(_LinkEvent("sink_failed", detail=detail))

    def _release_c104_confirmed(self) -> None:
        """A worker thread: frames c104 confirmed whose ASDU reported no token (no
        callback). Anything still held in the batcher goes out first, then a barrier."""
        token = self.guard.c104_token()
        self.batcher.flush()
        self.acks.barrier(token)

    def _store_diverted(self, asdu: bytes, reason: str) -> None:
        """On the guard's thread: an ASDU c104 must not see, stored as raw data. Raises
        when the sink fails; the guard then ends the connection unacknowledged."""
        obs = diverted_observation(self.device.id, self.device.common_address, asdu, reason)
        self._remember(obs)
        try:
            self.sink.deliver_blocking([obs])
        except Exception as exc:
            self._to_loop(_LinkEvent("sink_failed", detail=f"{type(exc).__name__}: {exc}"))
            raise

    def _remember(self, obs: PointObservation) -> None:
        with self._lock:
            self.received += 1
            self.latest[obs.address] = obs
            if not obs.measurement:
                self.recent.append(obs)

    def _address(self, common_address: int, io_address: int) -> str:
        if common_address == self.device.common_address:
            return str(io_address)
        return f"{common_address}:{io_address}"
