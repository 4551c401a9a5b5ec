"""One relay on an IEC 103 bus as the driver sees it: its link station, where it is in
its initialisation, its schedules and counters."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from protocols.driver import STANDARD_COUNTERS
from protocols.iec103.codec.asdu_base import FUN_GLOBAL
from protocols.iec103.config import Iec103Device
from protocols.iec103.link import Station
from protocols.iec103.records import RecordQueue
from protocols.observations import IdentityObservation, Observation, PointObservation

STEP_TIME_SYNC = "time_sync"
STEP_GI = "gi"
STEP_RECORD_LIST = "record_list"  # ask for the list of recorded disturbances (ASDU 24 TOO 24)


class DataFlowWait(Exception):
    """User data cannot go to the relay now: its last answer had DFC=1 (buffer full), or it
    refused the send with NACK and DFC=1. The step is run again once DFC clears."""


@dataclass
class Relay:
    """One relay as the driver sees it."""

    config: Iec103Device
    station: Station
    scale: dict[str, float]
    up: bool | None = None  # None: never reached yet
    next_attempt: float = 0.0
    next_poll: float = 0.0
    next_settings: float = 0.0
    settings_due: bool = False  # set once the initialisation steps are done
    settings_signalled: bool = False  # the due read answers the relay's INF 22
    identity: IdentityObservation | None = None
    identity_due: float = float("inf")  # warn if no ASDU 5 has come by then
    recent: deque[PointObservation] = field(default_factory=lambda: deque(maxlen=50))
    disturbances: set[int] = field(default_factory=set)
    last_measurand: dict[str, float] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    settings_waiters: list[asyncio.Future[dict[str, Any]]] = field(default_factory=list)
    scn: int = 0
    steps: deque[str] = field(default_factory=deque)  # initialisation steps still to run
    dfc_since: float | None = None  # user data has waited for DFC since then
    records: RecordQueue | None = None  # None: disturbance records are not fetched
    record_fun: int = FUN_GLOBAL  # the FUN the relay's ASDU 23 carries

    @property
    def id(self) -> str:
        return self.config.id

    def all_counters(self) -> dict[str, int]:
        """Its driver counters and its link station's (timeouts, retries, resets, NACKs),
        with the standard names every driver reports."""
        counters = {**self.station.counters, **self.counters}
        for name in STANDARD_COUNTERS:
            counters.setdefault(name, 0)
        return counters

    def user_data_due(self, now: float) -> bool:
        """Whether a step that sends user data is waiting for this relay."""
        return bool(
            self.steps
            or self.settings_read_due(now)
            or (self.records is not None and self.records.due(now) is not None)
        )

    def settings_read_due(self, now: float) -> bool:
        """Whether a settings read is due: asked for, or its interval has passed."""
        return bool(
            self.settings_due
            or (
                self.config.read_settings
                and self.config.settings_interval_s
                and now >= self.next_settings
            )
        )

    def throttle(self, obs: list[Observation], now: float) -> list[Observation]:
        """Measurands come with every class-2 poll: forward them at most every
        `measurand_interval_s` per address. Events always pass (and are kept in `recent`)."""
        out: list[Observation] = []
        for o in obs:
            if isinstance(o, PointObservation):
                if o.measurement:
                    last = self.last_measurand.get(o.address)
                    if last is not None and now - last < self.config.measurand_interval_s:
                        continue
                    self.last_measurand[o.address] = now
                else:
                    self.recent.append(o)
            out.append(o)
        return out
