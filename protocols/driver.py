"""The common driver interface.

A driver owns one link: a TCP connection to one device, or one serial bus with several
devices on it. The supervisor (`agent/supervisor.py`) creates it, calls `run`, and when `run`
raises `LinkError` waits with backoff and calls `run` again on a fresh driver.

Durability contract: `sink.deliver(...)` and `sink.deliver_blocking(...)` return only once the
observations are durable in the outbox. A driver must not acknowledge anything to the
device (c104 callback return, 103 FCB toggle, Modbus read-pointer advance) before that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from protocols.observations import Observation


class ObservationSink(Protocol):
    async def deliver(self, observations: Sequence[Observation]) -> None:
        """Store observations durably; returns once they are committed. Event-loop side."""

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        """Same as `deliver`, for a foreign (library) thread; blocks until committed."""


class Driver(Protocol):
    """One link's driver. Drivers never decide what a point means and never reconnect
    themselves: they raise `LinkError` and the supervisor restarts them."""

    @property
    def device_ids(self) -> Sequence[str]:
        """The devices this link serves."""

    async def run(self, sink: ObservationSink) -> None:
        """Run until cancelled; raise `LinkError` when the link is lost."""

    async def poll(self, device_id: str, what: str) -> dict[str, Any]:
        """On-demand read for engineers: `what` is identity, events, settings or status.
        Raises `LinkError` when the device does not answer, `KeyError` for an unknown
        device, `ValueError` for a `what` this driver cannot serve."""
