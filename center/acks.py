"""End-to-end acknowledgements: after the commit, tell each gateway which of its records
the center has stored, so its agent may delete them (`wire.Ack`, docs/wire.md).

Called only once a batch is committed, and before the messages' PUBACKs: a center killed
in between gets the messages again and acknowledges them then. Every record id of every
message of the batch is acknowledged, stored, duplicate or kept as rejected: a re-send
would meet the same verdict, and an unacknowledged record would be re-sent forever.

Ids are read from the payload leniently (a message may be malformed; what is readable of
it is acknowledged), and only for the gateway its topic names: the broker's ACL lets a
gateway publish only under its own id, so an acknowledgement never reaches another one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from gateway import wire

log = logging.getLogger(__name__)

GatewayKey = tuple[str, str]  # site, gateway_id


class _Ids:
    __slots__ = ("chunks", "records")

    def __init__(self) -> None:
        self.records: set[tuple[int, int]] = set()
        self.chunks: set[tuple[int, int, int]] = set()


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def collect(messages: Sequence[tuple[str, bytes]]) -> list[wire.Ack]:
    """The acknowledgements a committed batch of (topic, payload) calls for, one per
    gateway."""
    found: dict[GatewayKey, _Ids] = {}
    for topic, payload in messages:
        try:
            site, gateway_id, kind, _ = wire.parse_topic(topic)
        except wire.WireError:
            continue
        if kind in wire.LIFECYCLE_KINDS:
            continue  # birth, death, health: not in the agent's outbox
        try:
            records = json.loads(payload).get("records")
        except (ValueError, AttributeError, RecursionError):
            continue
        if not isinstance(records, list):
            continue
        ids = found.setdefault((site, gateway_id), _Ids())
        for r in records:
            if not isinstance(r, dict) or r.get("gateway_id") != gateway_id:
                continue
            session, seq = _int(r.get("session")), _int(r.get("seq"))
            if session is None or seq is None:
                continue
            if r.get("kind") == "disturbance_chunk":
                index = _int(r.get("index"))
                if index is not None:
                    ids.chunks.add((session, seq, index))
            elif r.get("kind") not in wire.LIFECYCLE_KINDS:
                ids.records.add((session, seq))
    return [
        wire.Ack(
            site=site,
            gateway_id=gateway_id,
            ranges=wire.ranges_of(ids.records),
            chunks=[wire.AckChunk(session=a, seq=b, index=c) for a, b, c in sorted(ids.chunks)],
        )
        for (site, gateway_id), ids in sorted(found.items())
        if ids.records or ids.chunks
    ]


def encode(ack: wire.Ack) -> bytes:
    return ack.model_dump_json().encode()
