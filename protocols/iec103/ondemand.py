"""Engineers' on-demand reads of one IEC 103 relay (`Driver.poll`) from what the driver
already holds: its identification, the changes it reported, the last state of each point
and the link counters. (A settings read is a bus procedure: the driver runs it.)"""

from __future__ import annotations

from collections.abc import Mapping

from protocols.driver import EventsResult, IdentityResult, PolledPoint, StatusResult
from protocols.errors import LinkError
from protocols.iec103.relay import Relay
from protocols.observations import ASKED_CAUSES


def events(relay: Relay) -> EventsResult:
    """What the bus received from the relay since it came up; general interrogation
    answers are state someone asked for, not changes."""
    changes = (o for o in relay.recent if o.cause not in ASKED_CAUSES)
    return EventsResult.in_time_order(
        map(PolledPoint.of, changes), source="received since the relay came up"
    )


def status(relay: Relay, bus: Mapping[str, int]) -> StatusResult:
    """The newest state of each point (the GI after reset, then every change) and the
    relay's and the bus's counters."""
    latest = {o.address: o for o in relay.recent}
    return StatusResult(
        points=tuple(PolledPoint.of(o) for _, o in sorted(latest.items())),
        counters={
            "up": relay.up,
            "link_address": relay.station.address,
            **(relay.counters + relay.station.counters),
            **{f"bus_{k}": v for k, v in bus.items()},
        },
    )


def identity(relay: Relay) -> IdentityResult:
    if not relay.up:
        raise LinkError(f"device {relay.id}: not answering")
    if relay.identity is None:
        raise LinkError(f"device {relay.id}: no identification (ASDU 5) received yet")
    return relay.identity
