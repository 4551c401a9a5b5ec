"""One device's poll loop: jobs on their own intervals, per-unit backoff, overruns counted.

Jobs (identity, settings, status, measurements, events, fault report) each have an
interval from the device config; its periods fall on one grid per interval, shared by
every poller in the process (schedule.py). When a job cannot run on time (the bus is busy,
the unit is slow) the missed periods are *counted* as overruns and the job moves on to its
next period after now: polls are never silently merged or queued without bound.

A unit that stops answering is marked down (a `LinkStateObservation`) after `retries + 1`
failed attempts and then retried with exponential backoff, so on a shared bus it costs the
others one timeout per backoff period, not one per poll. When it answers again it is marked
up and its identity, settings and status are read afresh.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from protocols.driver import ObservationSink
from protocols.errors import DecodeError
from protocols.modbus.config import ModbusDevice
from protocols.modbus.eventlog import PositionStore
from protocols.modbus.events import EventLogReader
from protocols.modbus.faultreport import FaultReportReader
from protocols.modbus.link import ModbusExceptionResponse, ModbusLink, UnitNoResponse
from protocols.modbus.profile import ModbusProfile
from protocols.modbus.readers import DeviceReader, ProfileReads
from protocols.modbus.schedule import Job, ticker
from protocols.observations import (
    IdentityObservation,
    LinkStateObservation,
    MeasurementsObservation,
    Observation,
    PointObservation,
    SettingsObservation,
)

log = logging.getLogger(__name__)

UnitFailure = (UnitNoResponse, DecodeError)
# A poll's measurements may wait this long, and at most a quarter of their period, for
# other polls to share their outbox commit (gateway/outbox_writer.py): the poll's record
# is still durable before it is sent, and before the poll returns.
COMMIT_WITHIN_S = 0.1


@dataclass
class PollerState:
    up: bool | None = None
    failures: int = 0
    status: dict[str, bool] = field(default_factory=dict)
    identity: IdentityObservation | None = None
    settings: SettingsObservation | None = None
    settings_count: int | None = None  # the relay's settings change counter, last read
    settings_signalled: bool = False  # the due settings read answers a counter change
    exceptions: int = 0


class DevicePoller:
    def __init__(
        self,
        device: ModbusDevice,
        profile: ModbusProfile | None,
        link: ModbusLink,
        default_timeout_s: float,
        manufacturer: str | None = None,
    ) -> None:
        self.device = device
        self.id = device.id
        self.profile = profile or ModbusProfile()
        self.manufacturer = manufacturer
        timeout = device.timeout_ms / 1000 if device.timeout_ms else default_timeout_s
        self.reader = DeviceReader(device.id, device.unit_id, link, timeout)
        self.reads = ProfileReads(self.profile, self.reader)
        self.events: EventLogReader | None = None
        if self.profile.event_log is not None:
            store = PositionStore(device.id, device.state_file)
            self.events = EventLogReader(
                self.reader,
                self.profile.event_log,
                store,
                device.initial_events,
                device.near_full_ratio,
            )
        self.faults: FaultReportReader | None = None
        if self.profile.fault_report is not None:
            self.faults = FaultReportReader(
                self.reader,
                self.profile.fault_report,
                _beside(device.state_file, "fault_report"),
                device.initial_events,
            )
        self.state = PollerState()
        self.jobs = self._jobs()
        # Built once: every measurement's address, and the units the profile gives.
        self._measurement_addresses = [f"measurement:{m.name}" for m in self.profile.measurements]
        self._measurement_units: Mapping[str, str] = MappingProxyType(
            {f"measurement:{m.name}": m.unit for m in self.profile.measurements if m.unit}
        )
        self._last_overrun_log = 0.0
        self._commit_within_s = min(COMMIT_WITHIN_S, device.measurements_interval_s / 4)
        self._handlers: dict[str, Callable[[], Awaitable[list[Observation]]]] = {
            "identity": self._identity,
            "settings": self._settings,
            "settings_signal": self._settings_signal,
            "status": self._status,
            "measurements": self._measurements,
        }

    def _jobs(self) -> list[Job]:
        d, p = self.device, self.profile
        jobs = [Job("identity", d.identity_interval_s)]
        if p.settings_groups:
            jobs.append(Job("settings", d.settings_interval_s))
        if p.settings_change_counter is not None:
            jobs.append(Job("settings_signal", d.status_interval_s))
        if p.status:
            jobs.append(Job("status", d.status_interval_s))
        if p.measurements:
            jobs.append(Job("measurements", d.measurements_interval_s))
        if p.event_log is not None:
            jobs.append(Job("events", d.events_interval_s))
        if p.fault_report is not None:
            jobs.append(Job("fault_report", d.events_interval_s))
        return jobs

    def counters(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "up": self.state.up,
            "overruns": sum(j.overruns for j in self.jobs),
            "polls": sum(j.runs for j in self.jobs),
            "exception_jobs": self.state.exceptions,
        }
        out.update({f"overruns_{j.name}": j.overruns for j in self.jobs})
        if self.events is not None:
            c = self.events.counters
            out.update(
                events_delivered=c.delivered,
                events_lost=c.lost,
                events_undecodable=c.undecodable,
                event_log_resets=c.resets,
            )
        if self.faults is not None:
            out.update(fault_reports=self.faults.reports, fault_reports_torn=self.faults.torn)
        return out

    # --- the loop -----------------------------------------------------------------------------

    async def run(self, sink: ObservationSink) -> None:
        """Poll until cancelled. Unit failures are handled here; LinkError propagates."""
        d = self.device
        delay = d.backoff_min_s
        start = time.monotonic()
        for job in self.jobs:
            job.next_due = start
        me = asyncio.current_task()
        wake = ticker()
        while True:
            if me is not None and me.cancelling():
                # Python 3.11's wait_for (inside pymodbus) can swallow a cancellation that
                # races a response; the request is still recorded on the task, so honour it.
                raise asyncio.CancelledError
            now = time.monotonic()
            due = [j for j in self.jobs if j.next_due <= now]
            if not due:
                await wake.at(min(j.next_due for j in self.jobs))  # shared with other pollers
                continue
            try:
                # Jobs run one by one: a garbled answer costs one job, not the whole cycle.
                for job in due if len(due) == 1 else sorted(due, key=lambda j: j.next_due):
                    await self._run_job(job, sink)
                    self.state.failures = 0
                    delay = d.backoff_min_s
                    self._reschedule(job)
            except UnitFailure as exc:
                self.state.failures += 1
                if self.state.failures <= d.retries:
                    continue  # re-ask at once: one lost frame is not a dead unit
                if self.state.up is not False:
                    log.warning("%s: unit %d down: %s", self.id, d.unit_id, exc)
                    self.state.up = False
                    await sink.deliver([LinkStateObservation(self.id, False, str(exc))])
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, d.backoff_max_s)
                # Periods missed while the unit was down are failures, not overruns.
                resumed = time.monotonic()
                for job in self.jobs:
                    job.next_due = min(job.next_due, resumed)

    def _reschedule(self, job: Job) -> None:
        done = time.monotonic()
        missed = job.reschedule(done)
        if missed and done - self._last_overrun_log > 60:
            self._last_overrun_log = done
            log.warning("%s: %s poll overran %d period(s) (counted)", self.id, job.name, missed)

    async def _run_job(self, job: Job, sink: ObservationSink) -> None:
        handlers = self._handlers
        if self.state.up is not True:
            self._forget()
        if job.name in ("events", "fault_report"):
            if self.state.up is not True:
                await self._came_up(sink, [])
            source = self.events if job.name == "events" else self.faults
            assert source is not None
            await self._durable(job.name, source, sink)
            return
        try:
            out = await handlers[job.name]()
        except ModbusExceptionResponse as exc:
            self._refused(job.name, exc)
            out = []
        if self.state.up is not True:
            await self._came_up(sink, out)
        elif out:
            await sink.deliver(out)

    def _refused(self, job: str, exc: ModbusExceptionResponse) -> None:
        """A Modbus exception answer means the unit is alive but refuses this job's read
        (usually a profile that does not match the firmware): count it, keep the unit up."""
        self.state.exceptions += 1
        log.warning("%s: %s job refused: %s", self.id, job, exc)

    def _forget(self) -> None:
        """Before the first answer after contact (or a failure): what we knew may be stale,
        so identity, settings and status are read and reported afresh, right away."""
        self.state.identity = self.state.settings = None
        self.state.settings_count = None
        self.state.status = {}
        now = time.monotonic()
        for job in self.jobs:
            if job.name in ("identity", "settings", "status"):
                job.next_due = min(job.next_due, now)

    async def _came_up(self, sink: ObservationSink, out: list[Observation]) -> None:
        await sink.deliver([LinkStateObservation(self.id, True, "answering"), *out])
        self.state.up = True
        log.info("%s: unit %d up", self.id, self.device.unit_id)

    # --- jobs -----------------------------------------------------------------------------------

    async def _identity(self) -> list[Observation]:
        identity = await self.reads.identity(self.manufacturer)
        if identity == self.state.identity:
            return []
        self.state.identity = identity
        return [identity]

    async def _settings(self) -> list[Observation]:
        signalled, self.state.settings_signalled = self.state.settings_signalled, False
        # The counter first: a change from here on shows as a new count, so none is missed
        # between this read and the next counter poll.
        count = await self.reads.settings_change_count()
        if count is not None:
            self.state.settings_count = count
        settings = SettingsObservation(
            self.id, await self.reads.settings(), source="modbus holding registers"
        )
        if settings == self.state.settings:
            return []
        self.state.settings = settings
        return [dataclasses.replace(settings, signalled=signalled)]

    async def _settings_signal(self) -> list[Observation]:
        """The relay counts its settings changes: a new count makes the settings job due
        now, instead of at the end of its (long) period."""
        count = await self.reads.settings_change_count()
        previous, self.state.settings_count = self.state.settings_count, count
        if previous is not None and count != previous:
            log.info("%s: settings change counter %s -> %s: reading settings", self.id,
                     previous, count)  # fmt: skip
            self.state.settings_signalled = True
            for job in self.jobs:
                if job.name == "settings":
                    job.next_due = time.monotonic()
        return []

    async def _status(self) -> list[Observation]:
        """The first read after contact reports every status as found ("interrogated": a
        state, not a change); later reads report only what changed since the last one."""
        values = await self.reads.status()
        first = not self.state.status
        changed = [
            PointObservation(
                self.id,
                f"status:{name}",
                value,
                cause="interrogated" if first else "spontaneous",
                cause_raw="status_read" if first else "status_change",
            )
            for name, value in values.items()
            if first or self.state.status.get(name) != value
        ]
        self.state.status = values
        return list(changed)

    async def _measurements(self) -> list[Observation]:
        """One observation (and one record) per poll, carrying every measurand read."""
        values = await self.reads.measurement_values()
        return [
            MeasurementsObservation(
                self.id,
                dict(zip(self._measurement_addresses, values, strict=True)),
                cause="periodic",
                cause_raw="measurement_read",
                units=self._measurement_units,
                commit_within_s=self._commit_within_s,
            )
        ]

    async def _durable(self, job: str, source: DurableSource[Any], sink: ObservationSink) -> None:
        """Deliver what a record reader found, and only then let it move on (its position or
        counter is saved after the observations are durable, never before)."""
        try:
            batch = await source.collect()
        except ModbusExceptionResponse as exc:
            self._refused(job, exc)
            return
        if batch is None:
            return
        if batch.observations:
            await sink.deliver(batch.observations)
        source.committed(batch)


class _HasObservations(Protocol):
    @property
    def observations(self) -> Sequence[Observation]: ...


B = TypeVar("B", bound=_HasObservations)


class DurableSource(Protocol[B]):
    """The event ring and the fault report readers: what they found, then `committed`."""

    async def collect(self) -> B | None: ...

    def committed(self, batch: B) -> None: ...


def _beside(state_file: Path | None, what: str) -> Path | None:
    """Another state file of the device, next to its event position file."""
    if state_file is None:
        return None
    return state_file.with_name(f"{state_file.stem}.{what}.json")
