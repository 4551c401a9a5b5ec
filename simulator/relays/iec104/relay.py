"""Simulated IEC 104 relays on c104's `Server`.

Scenario `link` keys (validated by `SimLink`):

    link = { port = 24041, common_address = 1 }                   # host defaults to 127.0.0.1
    link = { port = 24041, common_address = 1, types = { "1031" = "M_DP_TB_1" } }

Each profile point becomes one information object (IOA = the point's address), typed by
kind unless `types` says otherwise:

- trip: `M_EP_TD_1` (protection event with CP56 time; not part of a general interrogation);
- start, alarm, status, self_check: `M_SP_TB_1` (single point with CP56 time);
- measurement: `M_ME_TF_1` (short float with CP56 time).

When the profile has an `[iec104]` section, the relay also serves its identity and settings
at the IOAs it maps (`simulator.relays.iec104.inventory`); a `setting` step sends the new value
spontaneously and then toggles the `settings_signal` point (when mapped), a `firmware` step
sends the new version spontaneously. A relay that was offline answers the next general
interrogation with the current values.

Like a real relay, events emitted while no master is connected (or while the relay is
offline) wait in the relay's buffer and are sent when a master connects, and an event leaves
the buffer only when the master acknowledges the I-frame that carried it: events sent but
unacknowledged when the connection dies are sent again to the next master, first and in
order (`simulator.relays.iec104.acks`; c104's server alone would drop them). Sends are paced:
c104's server keeps only 100 queued messages and silently overwrites the oldest
(docs/domain.md, c104), so a burst would measure the simulator's losses, not the agent's.

Values become c104 information objects in `simulator.relays.iec104.values` (device times as the
naive local time c104 expects).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import c104
from pydantic import Field, ValidationError

from common.config import StrictModel
from profiles.model import PointSpec, Profile
from protocols.iec104.profile import Iec104ProfileSection
from simulator.relays.iec104 import inventory
from simulator.relays.iec104.acks import AckTracker, event_key, register
from simulator.relays.iec104.values import KIND_TYPES, SUPPORTED_TYPES, make_info
from simulator.scenario import RelaySpec

log = logging.getLogger(__name__)

# Pacing: after this many sends in a row, yield for one window (well under c104's 100).
BURST = 40
MAX_BACKLOG = 100_000  # a relay's event buffer; beyond it the oldest is overwritten (logged)


class SimLink(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(gt=0, lt=65536)
    common_address: int = Field(ge=1, le=65534)
    tick_rate_ms: int = Field(default=50, ge=50)  # c104 refuses less
    rate_per_s: float = Field(default=2000.0, gt=0, description="paced send rate")
    # Raw frame callbacks leak ~365 B per frame in c104 (docs/domain.md, c104): off for long soaks.
    track_acks: bool = Field(default=True, description="keep events until acknowledged")
    types: dict[str, str] = Field(default_factory=dict, description="address -> c104 type")


@dataclass(frozen=True)
class Sent:
    """What the relay put on the wire, for tests to compare against."""

    address: str
    value: Any
    quality: tuple[str, ...]
    device_time: datetime


# A buffered event: the c104 information to send and what the tests compare against.
_Event = tuple[c104.Information, Sent]


class Iec104Relay:
    """One simulated relay: a c104 `Server` with one station of the profile's points."""

    def __init__(self, spec: RelaySpec, profile: Profile) -> None:
        try:
            self.link = SimLink.model_validate(spec.link)
        except ValidationError as exc:
            raise ValueError(f"relay {spec.id}: link: {exc}") from exc
        unknown = set(self.link.types) - set(profile.by_address)
        bad = {a: t for a, t in self.link.types.items() if t not in SUPPORTED_TYPES}
        if unknown or bad:
            raise ValueError(f"relay {spec.id}: link.types: unknown {unknown or ''} bad {bad}")
        self.spec = spec
        self.profile = profile
        section = profile.section
        self.section = (
            section if isinstance(section, Iec104ProfileSection) else Iec104ProfileSection()
        )
        self.settings: dict[str, bool | int | float | str] = dict(spec.settings)
        self.firmware = spec.identity.firmware_version
        self.settings_signal = False
        try:  # a value that does not fit its points is a scenario error, found up front
            self._state_points()
        except ValueError as exc:
            raise ValueError(f"relay {spec.id}: {exc}") from exc
        self.online = True
        self.sent: list[Sent] = []  # every transmission, re-sends included
        self.overwritten = 0
        self._backlog: deque[_Event] = deque()
        self._acks: AckTracker[_Event] = AckTracker(spec.id)
        self._server: c104.Server | None = None
        self._points: dict[str, c104.Point] = {}
        self._send_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def connected_clients(self) -> int:
        server = self._server
        return server.active_connection_count if server is not None else 0

    @property
    def backlog(self) -> int:
        """Events waiting to be sent (not counting those sent and not yet acknowledged)."""
        return len(self._backlog)

    @property
    def unconfirmed(self) -> int:
        """Events handed to c104 or sent, that no master has acknowledged yet."""
        return self._acks.unconfirmed

    @property
    def acks(self) -> AckTracker[_Event]:
        return self._acks

    def type_of(self, address: str) -> str:
        spec = self.profile.by_address[address]
        return self.link.types.get(address, KIND_TYPES[spec.kind])

    def point(self, address: str) -> c104.Point:
        """The server-side c104 point (tests use it to change types or values directly)."""
        return self._points[address]

    @property
    def station(self) -> c104.Station:
        server = self._require_server()
        station = server.get_station(self.link.common_address)
        assert station is not None
        return station

    # --- SimulatedRelay ---------------------------------------------------------------------

    async def start(self) -> None:
        self._build()
        self._flusher = asyncio.create_task(self._flush_forever(), name=f"iec104-sim-{self.id}")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self._stop_server()

    async def emit(
        self,
        point: PointSpec,
        value: bool | int | float | str | None,
        quality: list[str],
        device_time: datetime,
    ) -> None:
        info = make_info(self.type_of(point.address), value, quality, device_time)
        sent = Sent(point.address, value, tuple(quality), device_time)
        if len(self._backlog) >= MAX_BACKLOG:
            self._backlog.popleft()
            self.overwritten += 1
            log.warning("relay %s: event buffer full, oldest event overwritten", self.id)
        self._backlog.append((info, sent))
        await self._flush()

    async def set_online(self, online: bool) -> None:
        if online == self.online:
            return
        self.online = online
        if online:
            self._build()
        else:
            await self._stop_server()
        log.info("relay %s: %s", self.id, "online" if online else "offline (vanished)")

    async def set_setting(self, name: str, value: bool | int | float | str) -> None:
        self.settings[name] = value
        item = next((s for s in self.section.settings if s.name == name), None)
        if item is None:
            log.info("relay %s: setting %s = %r (no point maps it)", self.id, name, value)
            return
        log.info("relay %s: setting %s = %r", self.id, name, value)
        await self._send_state(inventory.setting_points(item, value))
        if self.section.settings_signal is not None:
            self.settings_signal = not self.settings_signal
            await self._send_state(inventory.signal_point(self.section, self.settings_signal))

    async def set_firmware(self, version: str) -> None:
        self.firmware = version
        identity = self.section.identity
        if identity is None or identity.firmware_version is None:
            log.info("relay %s: firmware %s (no point maps it)", self.id, version)
            return
        log.info("relay %s: firmware %s", self.id, version)
        points = inventory.text_points(identity.firmware_version, version)
        await self._send_state(points)

    # --- internals --------------------------------------------------------------------------

    def _state_points(self) -> dict[str, inventory.StatePoint]:
        return inventory.all_points(
            self.section, self.spec.identity, self.firmware, self.settings, self.settings_signal
        )

    async def _send_state(self, points: dict[str, inventory.StatePoint]) -> None:
        """New identity / settings values: kept for the next interrogation, and sent
        spontaneously now when a master is connected (state, not buffered events)."""
        async with self._send_lock:
            for address, (_type_name, info) in points.items():
                c_point = self._points.get(address)
                if c_point is None:  # offline: the rebuilt server starts from the state
                    continue
                c_point.info = info
                server = self._server
                if server is not None and server.has_active_connections:
                    c_point.transmit(cause=c104.Cot.SPONTANEOUS)

    def _require_server(self) -> c104.Server:
        if self._server is None:
            raise RuntimeError(f"relay {self.id} is not running")
        return self._server

    def _build(self) -> None:
        """A fresh server with the points' current values (a restarted relay keeps state)."""
        previous = {a: p.info for a, p in self._points.items()}
        server = c104.Server(
            ip=self.link.host, port=self.link.port, tick_rate_ms=self.link.tick_rate_ms
        )
        station = server.add_station(common_address=self.link.common_address)
        if station is None:
            raise RuntimeError(f"relay {self.id}: c104 refused the station")
        points: dict[str, c104.Point] = {}
        for spec in self.profile.points:
            type_name = self.type_of(spec.address)
            c_point = station.add_point(
                io_address=int(spec.address), type=c104.Type.__members__[type_name]
            )
            if c_point is None:
                raise RuntimeError(f"relay {self.id}: c104 refused point {spec.address}")
            if spec.address in previous:
                c_point.info = previous[spec.address]
            points[spec.address] = c_point
        for address, (type_name, info) in self._state_points().items():
            c_point = station.add_point(
                io_address=int(address), type=c104.Type.__members__[type_name]
            )
            if c_point is None:
                raise RuntimeError(f"relay {self.id}: c104 refused point {address}")
            c_point.info = info
            points[address] = c_point
        if self.link.track_acks:
            register(server, self._acks)
        server.start()
        self._server, self._points = server, points
        log.info(
            "relay %s: IEC 104 server on %s:%d ca=%d (%d points)",
            self.id,
            self.link.host,
            self.link.port,
            self.link.common_address,
            len(points),
        )

    async def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)
        self._acks.connection_lost()  # a restarted relay sends them again

    def _reclaim(self) -> None:
        """Put events no master can acknowledge any more back at the front of the backlog."""
        server = self._server
        if server is None or server.open_connection_count == 0:
            self._acks.connection_lost()
        orphans = self._acks.take_orphans()
        if orphans:
            self._backlog.extendleft(reversed(orphans))

    async def _flush(self) -> None:
        """Send buffered events while a master is connected, paced below c104's queue."""
        async with self._send_lock:
            self._reclaim()
            in_row = 0
            while self._backlog:
                self._reclaim()  # a new master gets what the last one left unconfirmed first
                server = self._server
                if server is None or not server.has_active_connections:
                    return
                event = self._backlog[0]
                info, sent = event
                c_point = self._points[sent.address]
                c_point.info = info
                if self.link.track_acks:
                    type_id = c104.Type.__members__[self.type_of(sent.address)].value
                    key = event_key(type_id, int(sent.address), sent.device_time)
                    self._acks.queued(event, key)  # before: the frame may leave at once
                if not c_point.transmit(cause=c104.Cot.SPONTANEOUS):
                    self._acks.cancel(event)
                    return  # the master went away between the check and the send
                self._backlog.popleft()
                self.sent.append(sent)
                in_row += 1
                if in_row >= BURST:
                    in_row = 0
                    await asyncio.sleep(BURST / self.link.rate_per_s)

    async def _flush_forever(self) -> None:
        """Deliver what was buffered once a master (re)connects; reclaim what a lost
        connection left unacknowledged."""
        while True:
            await asyncio.sleep(0.05)
            if self._backlog or self._acks.unconfirmed:
                await self._flush()


def make_relay(spec: RelaySpec, profile: Profile) -> Iec104Relay:
    return Iec104Relay(spec, profile)


def describe(relay: Iec104Relay) -> dict[str, Any]:
    return {
        "id": relay.id,
        "endpoint": f"{relay.link.host}:{relay.link.port}",
        "common_address": relay.link.common_address,
        "points": {p.address: relay.type_of(p.address) for p in relay.profile.points},
        "sent_at": datetime.now(UTC).isoformat(),
    }
