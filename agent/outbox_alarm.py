"""The `outbox_near_cap` alarm: the agent says that its outbox is filling before the cap
makes it evict measurements.

Raised (a gateway-level `Alarm`) when the depth reaches 90 % of `outbox.max_records`,
cleared once it is down to 70 %: the gap keeps a depth that hovers near one threshold from
raising and clearing on every commit. The alarm's state is committed with its record, so
an agent restarted after the outbox drained still sends the clear it owes, and one
restarted near the cap does not raise twice.

The record goes through the outbox like any other: the center gets it in order, after what
was queued before it (a broker outage is what fills the outbox, and nothing leaves before
the broker is back). Health records, published directly, carry the live depth meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from agent.pipeline import Pipeline
from gateway import wire
from gateway.outbox import NEAR_CAP_FRACTION, Outbox, StateUpdate

log = logging.getLogger(__name__)

# Raised at NEAR_CAP_FRACTION (90 %) of the cap, cleared only once down to this share.
CLEAR_FRACTION = 0.7
CODE = "outbox_near_cap"
STATE_KEY = ("@gateway", CODE)  # in the outbox's device_state table

AlarmState = Literal["raised", "cleared"]


def transition(raised: bool, outbox: Outbox) -> AlarmState | None:
    """The change the outbox's depth calls for, with hysteresis; None for none."""
    if not raised and outbox.near_cap:
        return "raised"
    if raised and outbox.depth <= outbox.max_records * CLEAR_FRACTION:
        return "cleared"
    return None


class OutboxCapAlarm:
    def __init__(self, outbox: Outbox, pipeline: Pipeline, site: str, gateway_id: str) -> None:
        self.outbox = outbox
        self.pipeline = pipeline
        self.site = site
        self.gateway_id = gateway_id
        self.raised = outbox.device_state().get(STATE_KEY) == "raised"

    def record(self, state: AlarmState) -> wire.Alarm:
        depth, cap = self.outbox.depth, self.outbox.max_records
        share = f"{depth} of {cap} records ({100 * depth / cap:.0f} %)"
        if state == "raised":
            message = f"outbox near its cap: {share}; at the cap measurements are evicted"
        else:
            message = f"outbox drained: {share}"
        return wire.Alarm(
            site=self.site,
            gateway_id=self.gateway_id,
            session=self.outbox.session,
            seq=0,  # assigned by the outbox
            gateway_time=wire.utcnow(),
            code=CODE,
            state=state,
            severity="major",
            message=message,
            details={
                "depth": depth,
                "max_records": cap,
                "raise_at": int(cap * NEAR_CAP_FRACTION),
                "clear_at": int(cap * CLEAR_FRACTION),
                "evicted": self.outbox.evicted,
            },
        )

    async def check(self) -> AlarmState | None:
        """Send the alarm's change, if the depth calls for one; returns it."""
        change = transition(self.raised, self.outbox)
        if change is None:
            return None
        record = self.record(change)
        state = StateUpdate(STATE_KEY[0], STATE_KEY[1], change)
        await self.pipeline.append_record(record, state=[state])
        self.raised = change == "raised"  # only once committed: a failed append retries
        log.log(logging.WARNING if self.raised else logging.INFO, "%s", record.message)
        return change

    async def run(self, interval_s: float = 1.0) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # an outbox that cannot commit: the next round retries
                log.exception("outbox near-cap alarm: could not record its change")
            await asyncio.sleep(interval_s)
