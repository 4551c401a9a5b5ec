"""The audit trail of on-demand requests (IEC 62351 / NERC CIP: who read what, when).

Every engineer's request that reaches a device, local or remote, allowed or refused,
ends here exactly once: a line on the `agent.audit` logger (journald keeps it on the
gateway) and an `Audit` record appended to the durable outbox, so the center gets it
even when the broker is down at the time.

Reading the agent's own state (`relay-agent status`) touches no device and is not
audited.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel

from gateway import wire

# A fixed name, not the module path: operators filter the journal on it (docs/polling.md).
log = logging.getLogger("agent.audit")

AuditResult = Literal["ok", "error", "refused"]
AppendRecord = Callable[[BaseModel, str | None], Awaitable[None]]

_TOPIC_SAFE = re.compile(wire.TOPIC_SAFE)
MAX_TEXT = 200  # actor and error strings come from outside: keep records small


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Printable, bounded text: a remote request can carry anything."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


class Auditor:
    """Writes audit records for one gateway.

    `append` is `Pipeline.append_record` in the daemon (the record then shares the
    outbox's durability and order with everything else the gateway sends)."""

    def __init__(self, site: str, gateway_id: str, append: AppendRecord) -> None:
        self.site = site
        self.gateway_id = gateway_id
        self._append = append

    async def record(
        self,
        *,
        actor: str,
        origin: Literal["local", "remote"],
        action: str,
        device: str | None,
        what: str | None,
        result: AuditResult,
        error: str | None = None,
    ) -> wire.Audit:
        # An unconfigured device name may be anything; it is kept in the error text
        # rather than in `device_id`, which becomes part of a topic.
        device_id = device if device is not None and _TOPIC_SAFE.match(device) else None
        record = wire.Audit(
            site=self.site,
            gateway_id=self.gateway_id,
            device_id=device_id,
            session=0,  # assigned by the outbox
            seq=0,
            gateway_time=wire.utcnow(),
            actor=clip(actor),
            origin=origin,
            action=action,
            what=clip(what) if what is not None else None,
            result=result,
            error=clip(error) if error is not None else None,
        )
        log.info(
            "audit: actor=%r origin=%s action=%s device=%r what=%s result=%s%s",
            record.actor,
            origin,
            action,
            clip(device) if device is not None else None,
            record.what,
            result,
            f" error={record.error!r}" if record.error else "",
        )
        try:
            await self._append(record, device_id)
        except Exception:  # the answer still goes out; the log line above keeps the trail
            log.exception("audit: could not append the record for device %r to the outbox", device)
        return record
