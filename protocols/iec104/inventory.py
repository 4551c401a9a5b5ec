"""Identity and settings of one IEC 104 relay, from the points its profile maps.

The link hands every object at a mapped address (`Iec104ProfileSection.consumed_addresses`)
to `Iec104Inventory.receive` on the event loop; nothing here runs on c104's threads. The
inventory builds `IdentityObservation` / `SettingsObservation` from the latest values:

- on connect, once the connect interrogation answered every mapped point;
- periodically (`identity_interval_s`, `settings_interval_s`), after a fresh general
  interrogation, waiting for its answers to every mapped point;
- when the `settings_signal` point changes value: a fresh interrogation, then settings with
  `signalled=True`. The first value after connect is the reference, not a change.

A part (identity or settings) is reported only when every point it needs answered with a
usable value; otherwise nothing is reported for it and a warning names the IOAs: half a
snapshot would read as settings "removed". The pipeline sends only what changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from protocols.driver import ObservationSink
from protocols.errors import DecodeError
from protocols.iec104.config import Iec104Device
from protocols.iec104.profile import (
    IdentityPoints,
    Iec104ProfileSection,
    SettingPoint,
    TextPoints,
    decode_text,
)
from protocols.observations import (
    IdentityObservation,
    Observation,
    PointObservation,
    Scalar,
    SettingsObservation,
    SettingValue,
)

log = logging.getLogger(__name__)

SOURCE = "iec104 profile points"
_DOUBLE = {"on": True, "off": False}


def _usable(obs: PointObservation | None, address: str) -> PointObservation:
    if obs is None:
        raise DecodeError(f"IOA {address} has not answered")
    if "IV" in obs.quality:
        raise DecodeError(f"IOA {address} is flagged invalid (IV)")
    return obs


def _text(points: TextPoints, values: Mapping[str, PointObservation]) -> str:
    words: list[int] = []
    for address in points.addresses():
        value = _usable(values.get(address), address).value
        if not isinstance(value, int) or isinstance(value, bool):
            raise DecodeError(f"IOA {address}: text needs a bitstring (found {value!r})")
        words.append(value)
    return decode_text(words)


def setting_value(item: SettingPoint, values: Mapping[str, PointObservation]) -> Scalar:
    """The value of one setting as its profile types it."""
    if item.type == "text":
        return _text(TextPoints(ioa=item.ioa, words=item.words), values)
    address = str(item.ioa)
    value = _usable(values.get(address), address).value
    if item.type == "bool":
        if isinstance(value, str) and value in _DOUBLE:
            return _DOUBLE[value]
        if isinstance(value, bool | int):
            return bool(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if item.type == "int":
            return round(value)
        # Short floats carry ~7 significant digits: 4.2 arrives as 4.199999809...
        return float(f"{value:.7g}")
    raise DecodeError(f"IOA {address}: setting {item.name!r} ({item.type}) from {value!r}")


def build_identity(
    device_id: str, identity: IdentityPoints, values: Mapping[str, PointObservation]
) -> IdentityObservation:
    found = {name: _text(points, values) for name, points in identity.fields().items()}
    if isinstance(identity.manufacturer, str):
        found["manufacturer"] = identity.manufacturer
    return IdentityObservation(
        device_id,
        manufacturer=found.get("manufacturer"),
        model=found.get("model"),
        serial=found.get("serial"),
        firmware_version=found.get("firmware_version"),
        checksum=found.get("checksum"),
    )


def build_settings(
    device_id: str,
    settings: list[SettingPoint],
    values: Mapping[str, PointObservation],
    signalled: bool,
) -> SettingsObservation:
    read = tuple(SettingValue(s.name, setting_value(s, values), s.unit, s.group) for s in settings)
    return SettingsObservation(device_id, read, source=SOURCE, signalled=signalled)


class Iec104Inventory:
    """The mapped points' latest values, and when to report them."""

    def __init__(self, device: Iec104Device, section: Iec104ProfileSection) -> None:
        self.device = device
        self.section = section
        self.consumed = section.consumed_addresses()
        self.values: dict[str, PointObservation] = {}
        self.signal = asyncio.Event()
        self._signal_address = (
            str(section.settings_signal) if section.settings_signal is not None else None
        )
        self._expected = frozenset(section.identity_addresses() + section.settings_addresses())
        self._waiting = set(self._expected)  # a fresh link: everything is still to come
        self._fresh = asyncio.Event()
        self.reports = 0
        self.incomplete = 0

    @property
    def maps_anything(self) -> bool:
        return self.section.identity is not None or bool(self.section.settings)

    def receive(self, obs: PointObservation) -> None:
        """One object at a mapped address (event loop side, from the link)."""
        previous = self.values.get(obs.address)
        self.values[obs.address] = obs
        is_signal = obs.address == self._signal_address
        if is_signal and previous is not None and previous.value != obs.value:
            log.info("device %s: settings signal %r -> %r", self.device.id,
                     previous.value, obs.value)  # fmt: skip
            self.signal.set()
        self._waiting.discard(obs.address)
        if not self._waiting:
            self._fresh.set()

    async def refresh(self, interrogate: Callable[[], Awaitable[None]]) -> None:
        """A general interrogation, then wait until it answered every mapped point."""
        self._waiting = set(self._expected)
        self._fresh.clear()
        await interrogate()
        await self.answered()

    async def answered(self) -> None:
        """Wait (bounded by the interrogation timeout) for every point still expected."""
        if not self._waiting:
            return
        try:
            async with asyncio.timeout(self.device.interrogation_timeout_s):
                await self._fresh.wait()
        except TimeoutError:
            pass  # reported by `observations`, per part

    def observations(
        self, identity: bool, settings: bool, signalled: bool = False
    ) -> list[Observation]:
        out: list[Observation] = []
        parts: list[tuple[str, Callable[[], Observation]]] = []
        section, device_id = self.section, self.device.id
        if identity and section.identity is not None:
            points = section.identity
            parts.append(("identity", lambda: build_identity(device_id, points, self.values)))
        if settings and section.settings:
            parts.append(
                (
                    "settings",
                    lambda: build_settings(device_id, section.settings, self.values, signalled),
                )
            )
        for part, build in parts:
            try:
                out.append(build())
            except DecodeError as exc:
                self.incomplete += 1
                log.warning("device %s: %s not reported: %s", device_id, part, exc)
        self.reports += len(out)
        return out

    async def run(
        self,
        ready: asyncio.Event,
        interrogate: Callable[[], Awaitable[None]],
        sink: ObservationSink,
    ) -> None:
        """Report on connect, then on the relay's signal and the periodic timers, until
        cancelled. `interrogate` raising `LinkError` ends it (the link is gone)."""
        if not self.maps_anything:
            return
        await ready.wait()
        await self.answered()
        await self._deliver(sink, self.observations(identity=True, settings=True))
        device = self.device
        now = time.monotonic()
        due: dict[str, float] = {}
        if self.section.identity is not None:
            due["identity"] = now + device.identity_interval_s
        if self.section.settings:
            due["settings"] = now + device.settings_interval_s
        while True:
            signalled = False
            try:
                async with asyncio.timeout(max(min(due.values()) - time.monotonic(), 0)):
                    await self.signal.wait()
                signalled = True
            except TimeoutError:
                pass
            self.signal.clear()
            now = time.monotonic()
            identity = "identity" in due and due["identity"] <= now
            settings = signalled or ("settings" in due and due["settings"] <= now)
            await self.refresh(interrogate)
            await self._deliver(sink, self.observations(identity, settings, signalled))
            now = time.monotonic()
            if identity:
                due["identity"] = now + device.identity_interval_s
            if settings:
                due["settings"] = now + device.settings_interval_s

    @staticmethod
    async def _deliver(sink: ObservationSink, observations: list[Observation]) -> None:
        if observations:
            await sink.deliver(observations)
