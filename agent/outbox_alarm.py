"""The gateway's outbox alarms: `outbox_near_cap`, the outbox filling before the cap makes
it evict, and `outbox_evicted`, the exact count of what the cap evicted.

`outbox_near_cap` is raised (a gateway-level `Alarm`) when the outbox holds 90 % of either
cap (`outbox.max_records` rows or `outbox.max_bytes` bytes), cleared once it is down to
70 % of both: the gap keeps a level that hovers near one threshold from raising and
clearing on every commit.

`outbox_evicted` is raised at the first eviction of an episode, with what was evicted so
far, and cleared when `outbox_near_cap` clears, with exactly what the episode evicted, by
kind. The outbox counts evictions in the same transaction that makes them
(gateway/outbox_retention.py), so the count is exact across crashes.

Each alarm's state is committed with its record, so an agent restarted after the outbox
drained still sends the clear it owes, and one restarted near the cap does not raise twice.

The record goes through the outbox like any other: the center gets it in order, after what
was queued before it (a broker outage is what fills the outbox, and nothing leaves before
the broker is back). Health records, published directly, carry the live depth meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Literal

from agent.pipeline import Pipeline
from gateway import wire
from gateway.outbox import NEAR_CAP_FRACTION, Outbox, OutboxFull, StateUpdate

log = logging.getLogger(__name__)

# Raised at NEAR_CAP_FRACTION (90 %) of the cap, cleared only once down to this share.
CLEAR_FRACTION = 0.7
CODE = "outbox_near_cap"
STATE_KEY = ("@gateway", CODE)  # in the outbox's device_state table
EVICTED_CODE = "outbox_evicted"
# {"raised": …, "base": eviction totals by kind before the episode}
EVICTED_KEY = ("@gateway", EVICTED_CODE)

AlarmState = Literal["raised", "cleared"]


def transition(raised: bool, outbox: Outbox) -> AlarmState | None:
    """The change the outbox's depth calls for, with hysteresis; None for none."""
    if not raised and outbox.near_cap:
        return "raised"
    if raised and outbox.fill <= CLEAR_FRACTION:
        return "cleared"
    return None


class OutboxCapAlarm:
    def __init__(self, outbox: Outbox, pipeline: Pipeline, site: str, gateway_id: str) -> None:
        self.outbox = outbox
        self.pipeline = pipeline
        self.site = site
        self.gateway_id = gateway_id
        saved = outbox.device_state()
        self.raised = saved.get(STATE_KEY) == "raised"
        # Eviction totals by kind before the current (or next) episode; all of them for an
        # outbox that never reported one.
        evicted = json.loads(saved.get(EVICTED_KEY, '{"raised": false, "base": {}}'))
        self.evicting: bool = evicted["raised"]
        self.evicted_base: dict[str, int] = evicted["base"]

    def _alarm(
        self, code: str, state: AlarmState, message: str, details: dict[str, wire.Scalar]
    ) -> wire.Alarm:
        return wire.Alarm(
            site=self.site,
            gateway_id=self.gateway_id,
            session=self.outbox.session,
            seq=0,  # assigned by the outbox
            gateway_time=wire.utcnow(),
            code=code,
            state=state,
            severity="major",
            message=message,
            details=details,
        )

    def record(self, state: AlarmState) -> wire.Alarm:
        box = self.outbox
        depth, cap = box.depth, box.max_records
        share = (
            f"{depth} of {cap} records, {box.size_bytes} of {box.max_bytes} bytes "
            f"({100 * box.fill:.0f} %)"
        )
        if state == "raised":
            message = f"outbox near its cap: {share}; at the cap the least important are evicted"
        else:
            message = f"outbox drained: {share}"
        details: dict[str, wire.Scalar] = {
            "depth": depth,
            "max_records": cap,
            "bytes": box.size_bytes,
            "max_bytes": box.max_bytes,
            "raise_at": int(cap * NEAR_CAP_FRACTION),
            "clear_at": int(cap * CLEAR_FRACTION),
            "evicted": box.evicted,
        }
        return self._alarm(CODE, state, message, details)

    def eviction_record(self, state: AlarmState, base: dict[str, int]) -> wire.Alarm:
        """What was evicted since `base` (totals by kind), exactly."""
        totals = self.outbox.evicted_by_kind
        episode = {k: n - base.get(k, 0) for k, n in sorted(totals.items()) if n > base.get(k, 0)}
        count = sum(episode.values())
        listed = ", ".join(f"{n} {kind}" for kind, n in episode.items()) or "nothing"
        verb = "evicting" if state == "raised" else "evicted"
        message = f"outbox over its cap: {verb} records to make room ({listed})"
        details: dict[str, wire.Scalar] = {"evicted": count}
        details.update({f"evicted_{kind}": n for kind, n in episode.items()})
        return self._alarm(EVICTED_CODE, state, message, details)

    async def check_evictions(self) -> AlarmState | None:
        """Raise `outbox_evicted` at the first eviction; clear it, with the episode's exact
        count, once the near-cap alarm has cleared. Returns the change sent, if any."""
        totals = dict(self.outbox.evicted_by_kind)
        if not self.evicting and totals != self.evicted_base:
            change: AlarmState = "raised"
        elif self.evicting and not self.raised:
            change = "cleared"
        else:
            return None
        record = self.eviction_record(change, self.evicted_base)
        # Evictions after this snapshot belong to the next episode.
        base = self.evicted_base if change == "raised" else totals
        saved = json.dumps({"raised": change == "raised", "base": base})
        await self.pipeline.append_record(
            record, state=[StateUpdate(EVICTED_KEY[0], EVICTED_KEY[1], saved)]
        )
        self.evicting, self.evicted_base = change == "raised", base
        log.log(logging.WARNING if self.evicting else logging.INFO, "%s", record.message)
        return change

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
                await self.check_evictions()
            except OutboxFull as exc:  # said by /healthz and the metrics; retried
                log.debug("outbox alarms: not recorded: %s", exc)
            except Exception:  # an outbox that cannot commit: the next round retries
                log.exception("outbox alarms: could not record a change")
            await asyncio.sleep(interval_s)
