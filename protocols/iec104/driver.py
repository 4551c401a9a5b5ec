"""`Driver` for one IEC 104 relay (one TCP connection, one common address).

The link does the work; the driver adds the on-demand reads engineers ask for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from protocols.driver import ObservationSink
from protocols.errors import LinkError
from protocols.iec104.config import Iec104Device
from protocols.iec104.link import Iec104Link
from protocols.observations import PointObservation
from protocols.registry import LinkPlan

log = logging.getLogger(__name__)

POLL_KINDS = ("status", "measurements", "events")


class Iec104Driver:
    def __init__(self, plan: LinkPlan) -> None:
        if len(plan.devices) != 1:
            raise ValueError(f"{plan.key}: an IEC 104 link serves one device")
        planned = plan.devices[0]
        if not isinstance(planned.config, Iec104Device):
            raise TypeError(f"{plan.key}: not an IEC 104 device: {type(planned.config).__name__}")
        self.plan = plan
        self.device: Iec104Device = planned.config
        self.known_addresses = frozenset(planned.addresses)
        self._link: Iec104Link | None = None

    @property
    def device_ids(self) -> Sequence[str]:
        return (self.device.id,)

    @property
    def received(self) -> int:
        return self._link.received if self._link is not None else 0

    async def run(self, sink: ObservationSink) -> None:
        link = Iec104Link(self.device, self.known_addresses, sink)
        self._link = link
        try:
            await link.run()
        finally:
            self._link = None

    async def poll(self, device_id: str, what: str) -> dict[str, Any]:
        """`status`: a fresh general interrogation, then the current value of every point;
        `measurements`: the last measured values; `events`: the last events received.
        IEC 104 carries no identity or settings, so those raise `ValueError`."""
        if device_id != self.device.id:
            raise KeyError(device_id)
        if what not in POLL_KINDS:
            raise ValueError(
                f"cannot poll {what!r} over IEC 104 (no identity or settings ASDUs); "
                f"can poll {', '.join(POLL_KINDS)}"
            )
        link = self._link
        if link is None:
            raise LinkError(f"{self.plan.key}: link not running")
        if what == "status":
            await link.interrogate()
            points = {a: o for a, o in link.latest.items() if not o.measurement}
            return {"points": {a: _describe(o) for a, o in sorted(points.items())}}
        if what == "measurements":
            points = {a: o for a, o in link.latest.items() if o.measurement}
            return {"measurements": {a: _describe(o) for a, o in sorted(points.items())}}
        return {"recent": [dict(address=o.address, **_describe(o)) for o in list(link.recent)]}


def _describe(obs: PointObservation) -> dict[str, Any]:
    return {
        "value": obs.value,
        "quality": list(obs.quality),
        "device_time": obs.device_time.isoformat() if obs.device_time else None,
        "device_time_flags": list(obs.device_time_flags),
        "cause": obs.cause,
        "type": obs.details.get("type"),
    }
