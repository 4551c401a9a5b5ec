"""What an IEC 103 relay's answer means: the ASDU decoded, the observations it makes, and
what it changes in the driver's picture of the relay (its identity, its directory of
recorded disturbances, a settings read the relay asked for by INF 22).

Pure, apart from logging: no bus and no sink. The driver (`driver.py`) owns the order of
the I/O around it: the observations are made durable before the answer is acknowledged.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from protocols.errors import DecodeError
from protocols.iec103.codec.asdu import decode_asdu
from protocols.iec103.codec.asdu_base import Asdu, UnknownAsdu
from protocols.iec103.codec.asdu_disturbance import DisturbanceList
from protocols.iec103.codec.asdu_messages import Identification, TimeTaggedMessage
from protocols.iec103.observe import (
    INF_LOCAL_SETTING,
    disturbance_observations,
    observations,
    undecodable,
)
from protocols.iec103.relay import Relay
from protocols.observations import IdentityObservation, Observation

log = logging.getLogger(__name__)


def read_answer(relay: Relay, raw: bytes | None) -> tuple[Asdu | None, list[Observation]]:
    """The ASDU of an answer (None: none, or undecodable) and the observations to deliver."""
    if raw is None:
        return None, []
    try:
        asdu = decode_asdu(raw)
    except DecodeError as exc:
        relay.counters["decode_errors"] += 1
        log.warning("device %s: undecodable ASDU %s: %s", relay.id, raw.hex(" "), exc)
        return None, [undecodable(relay.id, raw, str(exc))]
    return asdu, observe(relay, asdu)


def observe(relay: Relay, asdu: Asdu) -> list[Observation]:
    relay.counters["asdus"] += 1
    if isinstance(asdu, UnknownAsdu):
        relay.counters["unknown_asdus"] += 1
        log.warning("device %s: unknown ASDU type %d (%s)", relay.id, asdu.type_id, asdu.address)
    if isinstance(asdu, DisturbanceList):
        relay.record_fun = asdu.fun
        known = set(relay.disturbances)
        if relay.records is not None:
            known |= {r.fault_number for r in asdu.records if relay.records.was_fetched(r)}
            relay.records.offer(asdu.records)
        relay.disturbances.update(r.fault_number for r in asdu.records)
        return disturbance_observations(relay.id, asdu, known)
    if isinstance(asdu, TimeTaggedMessage) and asdu.inf == INF_LOCAL_SETTING:
        relay.settings_due = relay.config.read_settings  # settings changed on the relay
        relay.settings_signalled = relay.settings_due
    obs = observations(relay.id, asdu, datetime.now(UTC), relay.scale)
    if isinstance(asdu, Identification):
        relay.identity = obs[0] if isinstance(obs[0], IdentityObservation) else None
    return relay.throttle(obs, time.monotonic())
