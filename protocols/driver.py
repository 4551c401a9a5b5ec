"""The common driver interface.

A driver owns one link: a TCP connection to one device, or one serial bus with several
devices on it. The supervisor (`agent/supervisor.py`) creates it, calls `run`, and when `run`
raises `LinkError` waits with backoff and calls `run` again on a fresh driver.

Durability contract: `sink.deliver(...)` and `sink.deliver_blocking(...)` return only once the
observations are durable in the outbox. A driver must not acknowledge anything to the
device (an IEC 104 N(R), 103 FCB toggle, Modbus read-pointer advance) before that. A sink
that commits in the background also offers `submit` (`BackgroundSink`): it returns at once
with a future that completes when the commit did, in submission order; a driver that uses
it holds the device's acknowledgement until then (`submitter` adapts any sink).

On-demand reads (`Driver.poll`) answer with one frozen result type per `PollKind`, the
same for every protocol, so that the agent, the CLIs and the center handle one shape and a
new protocol has a typed target. Results carry protocol addresses; the agent adds the
device profile's names (`agent/ondemand/service.py`).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from gateway.rpc import PollKind
from protocols.observations import (
    IdentityObservation,
    Observation,
    PointObservation,
    Scalar,
    SettingValue,
)

__all__ = [
    "BackgroundSink",
    "Driver",
    "EventsResult",
    "IdentityResult",
    "ObservationSink",
    "PollKind",
    "PollResult",
    "PolledPoint",
    "SettingsResult",
    "StatusResult",
    "result_type",
    "submitter",
]


@dataclass(frozen=True, slots=True)
class PolledPoint:
    """One point's value as a poll found it: an event, a status or a measured value."""

    address: str
    value: Scalar
    quality: tuple[str, ...] = ()
    device_time: datetime | None = None  # aware, UTC
    cause: str | None = None
    details: Mapping[str, Scalar] = field(default_factory=dict)

    @classmethod
    def of(cls, obs: PointObservation) -> PolledPoint:
        return cls(obs.address, obs.value, obs.quality, obs.device_time, obs.cause, obs.details)


# `PollKind.IDENTITY`: what the device says it is, the same frozen type the driver
# reports on its own (the agent drops `device_id`, which the answer already names).
IdentityResult = IdentityObservation


@dataclass(frozen=True, slots=True)
class EventsResult:
    """`PollKind.EVENTS`: recent events, oldest first (build it with `in_time_order`).
    `source` says where they come from: the relay's own event log, or what the link
    received since it connected."""

    events: tuple[PolledPoint, ...]
    source: str
    details: Mapping[str, Scalar] = field(default_factory=dict)

    @classmethod
    def in_time_order(
        cls, events: Iterable[PolledPoint], source: str, details: Mapping[str, Scalar] | None = None
    ) -> EventsResult:
        """Oldest device time first; events without a device time last, in the order they
        arrived (the sort is stable)."""
        ordered = sorted(events, key=lambda e: (e.device_time is None, e.device_time or _EPOCH))
        return cls(tuple(ordered), source, details or {})


@dataclass(frozen=True, slots=True)
class SettingsResult:
    """`PollKind.SETTINGS`: every setting read in one pass."""

    settings: tuple[SettingValue, ...]
    source: str


@dataclass(frozen=True, slots=True)
class StatusResult:
    """`PollKind.STATUS`: the device's state now (status points, measured values) and the
    link's counters for it."""

    points: tuple[PolledPoint, ...] = ()
    measurements: tuple[PolledPoint, ...] = ()
    counters: Mapping[str, Scalar] = field(default_factory=dict)


PollResult = IdentityResult | EventsResult | SettingsResult | StatusResult

_RESULT_TYPES: dict[PollKind, type[PollResult]] = {
    PollKind.IDENTITY: IdentityResult,
    PollKind.EVENTS: EventsResult,
    PollKind.SETTINGS: SettingsResult,
    PollKind.STATUS: StatusResult,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def result_type(kind: PollKind) -> type[PollResult]:
    """The one result type a driver returns for `kind`."""
    return _RESULT_TYPES[kind]


# The counters every driver reports for each of its devices (`device_counters()`), under
# these names whatever the protocol calls them, so that one alert rule fits every relay:
DECODE_ERRORS = "decode_errors"  # answers that could not be decoded (dropped, counted)
TIMEOUTS = "timeouts"  # requests the device left unanswered
RESTARTS = "restarts"  # the device alone started afresh while its link ran on (a shared bus)
STANDARD_COUNTERS = (DECODE_ERRORS, TIMEOUTS, RESTARTS)
DeviceCounters = Mapping[str, Mapping[str, int]]  # device id -> counter name -> count


class ObservationSink(Protocol):
    async def deliver(self, observations: Sequence[Observation]) -> None:
        """Store observations durably; returns once they are committed. Event-loop side."""

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        """Same as `deliver`, for a foreign (library) thread; blocks until committed."""


@runtime_checkable
class BackgroundSink(ObservationSink, Protocol):
    def submit(self, observations: Sequence[Observation]) -> concurrent.futures.Future[None]:
        """Queue observations for the next commit and return at once; the future completes
        (or fails) with that commit. Commits happen in submission order, so a completed
        future means everything submitted before it is durable too. An empty submission is
        a barrier: it completes once everything before it is committed."""


def submitter(
    sink: ObservationSink,
) -> Callable[[Sequence[Observation]], concurrent.futures.Future[None]]:
    """`sink.submit`, or for a sink without it, `deliver_blocking` as a completed future."""
    if isinstance(sink, BackgroundSink):
        return sink.submit

    def blocking(observations: Sequence[Observation]) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            if observations:
                sink.deliver_blocking(observations)
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        else:
            future.set_result(None)
        return future

    return blocking


class Driver(Protocol):
    """One link's driver. Drivers never decide what a point means and never reconnect
    themselves: they raise `LinkError` and the supervisor restarts them. A driver may also
    offer `device_counters() -> DeviceCounters` (the standard counters above and its own),
    which the agent exports as metrics."""

    @property
    def device_ids(self) -> Sequence[str]:
        """The devices this link serves."""

    async def run(self, sink: ObservationSink) -> None:
        """Run until cancelled; raise `LinkError` when the link is lost."""

    async def poll(self, device_id: str, kind: PollKind) -> PollResult:
        """On-demand read for engineers, read-only: returns `result_type(kind)`.
        Raises `LinkError` when the device does not answer, `KeyError` for an unknown
        device, `ValueError` for a kind this device cannot serve (its profile maps
        nothing for it, or the protocol has no such data)."""
