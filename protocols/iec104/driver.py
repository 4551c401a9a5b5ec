"""`Driver` for one IEC 104 relay (one TCP connection, one common address).

The link does the work; the driver adds the inventory (identity and settings from the
points the profile's `[iec104]` section maps, `inventory.py`) and the on-demand reads
engineers ask for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from protocols.driver import (
    DECODE_ERRORS,
    STANDARD_COUNTERS,
    EventsResult,
    IdentityResult,
    ObservationSink,
    PolledPoint,
    PollKind,
    PollResult,
    SettingsResult,
    StatusResult,
)
from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.inventory import Iec104Inventory
from protocols.iec104.link import Iec104Link
from protocols.iec104.profile import Iec104ProfileSection
from protocols.observations import ASKED_CAUSES, IdentityObservation, SettingsObservation
from protocols.registry import LinkPlan

log = logging.getLogger(__name__)


class Iec104Driver:
    def __init__(self, plan: LinkPlan) -> None:
        if len(plan.devices) != 1:
            raise ValueError(f"{plan.key}: an IEC 104 link serves one device")
        planned = plan.devices[0]
        if not isinstance(planned.config, Iec104Device):
            raise TypeError(f"{plan.key}: not an IEC 104 device: {type(planned.config).__name__}")
        section = planned.profile_section or Iec104ProfileSection()
        if not isinstance(section, Iec104ProfileSection):
            raise TypeError(f"{plan.key}: profile section is not an [iec104] section")
        self.plan = plan
        self.device: Iec104Device = planned.config
        self.section = section
        self.known_addresses = frozenset(planned.addresses) | section.consumed_addresses()
        self._link: Iec104Link | None = None
        self._guard_totals = dict.fromkeys(
            ("asdus_received", "asdus_passed", "asdus_diverted", "framing_errors"), 0
        )
        self._inventory: Iec104Inventory | None = None
        self._counted: Iec104Link | None = None

    @property
    def device_ids(self) -> Sequence[str]:
        return (self.device.id,)

    @property
    def ready(self) -> bool:
        """Connected, and the general interrogation after connecting was confirmed."""
        return self._link is not None and self._link.ready.is_set()

    @property
    def received(self) -> int:
        return self._link.received if self._link is not None else 0

    @property
    def counters(self) -> dict[str, int]:
        """The APDU guard's counts since the driver was made (all connections), exported
        as metrics: monitoring ASDUs taken for the outbox, frames passed on to c104, ASDUs
        stored as raw data for failing the check, connections ended for broken framing."""
        guard = self._link.guard if self._link is not None else None
        live = guard.counts() if guard is not None else {}
        return {k: v + live.get(k, 0) for k, v in self._guard_totals.items()}

    def device_counters(self) -> dict[str, dict[str, int]]:
        """The guard's counts and the last link's (objects received, ASDUs stored, decode
        errors, timeouts), with the standard names every driver reports; broken framing
        is a decode error too."""
        link = self._counted
        counters = {**self.counters, **(link.counters if link is not None else {})}
        if link is not None:
            counters.update(objects_received=link.received, asdus=link.asdus)
        counters[DECODE_ERRORS] = counters.get(DECODE_ERRORS, 0) + counters["framing_errors"]
        for name in STANDARD_COUNTERS:
            counters.setdefault(name, 0)
        return {self.device.id: counters}

    async def run(self, sink: ObservationSink) -> None:
        inventory = Iec104Inventory(self.device, self.section)
        link = Iec104Link(
            self.device,
            self.known_addresses,
            sink,
            consumed=inventory.consumed,
            on_consumed=inventory.receive,
        )
        self._link, self._inventory = link, inventory
        self._counted = link  # kept after the run ends: the supervisor adds up its counts
        try:
            if not inventory.maps_anything:
                await link.run()
                return
            async with asyncio.TaskGroup() as group:
                group.create_task(link.run(), name=f"{self.plan.key}:link")
                group.create_task(
                    inventory.run(link.ready, link.interrogate, sink),
                    name=f"{self.plan.key}:inventory",
                )
        except* LinkError as errors:
            raise errors.exceptions[0] from None
        finally:
            for key, value in link.guard.counts().items():
                self._guard_totals[key] += value
            self._link = self._inventory = None

    async def poll(self, device_id: str, kind: PollKind) -> PollResult:
        """`status`: a fresh general interrogation, then the current value of every point;
        `events`: what the link received since it connected (a 104 relay keeps no event
        log to read back); `identity`, `settings`: a fresh interrogation, then what the
        profile's points say (only when the profile's `[iec104]` section maps them)."""
        if device_id != self.device.id:
            raise KeyError(device_id)
        if kind in (PollKind.IDENTITY, PollKind.SETTINGS):
            return await self._poll_inventory(kind)
        link = self._require_link()
        if kind == PollKind.STATUS:
            await link.interrogate()
            latest = [o for _, o in sorted(link.latest.items(), key=lambda i: _ioa_key(i[0]))]
            return StatusResult(
                points=tuple(PolledPoint.of(o) for o in latest if not o.measurement),
                measurements=tuple(PolledPoint.of(o) for o in latest if o.measurement),
                counters={"objects_received": link.received},
            )
        if kind == PollKind.EVENTS:
            # Interrogation answers are state someone asked for, not changes: not events.
            changes = [o for o in list(link.recent) if o.cause not in ASKED_CAUSES]
            return EventsResult.in_time_order(
                (PolledPoint.of(o) for o in changes), source="received since connect"
            )
        raise ValueError(f"cannot poll {kind!r}")

    async def _poll_inventory(self, kind: PollKind) -> IdentityResult | SettingsResult:
        identity = kind == PollKind.IDENTITY
        mapped = self.section.identity is not None if identity else self.section.settings
        if not mapped:
            raise ValueError(
                f"IEC 104 has no {kind} ASDUs and the profile's [iec104] section maps no "
                f"points for it"
            )
        link = self._require_link()
        inventory = self._inventory
        assert inventory is not None  # set with the link
        await inventory.refresh(link.interrogate)
        for obs in inventory.observations(identity=identity, settings=not identity):
            if isinstance(obs, IdentityObservation):
                return obs
            if isinstance(obs, SettingsObservation):
                return SettingsResult(obs.settings, obs.source)
        raise LinkError(f"{self.device.id}: the relay did not answer every {kind} point")

    def _require_link(self) -> Iec104Link:
        link = self._link
        if link is None:
            raise LinkError(f"{self.plan.key}: link not running")
        return link


def _ioa_key(address: str) -> tuple[int, str]:
    return (int(address), address) if address.isdigit() else (1 << 24, address)
