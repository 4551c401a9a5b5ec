"""The center's end-to-end acknowledgements and their topic.

Part of `gateway/wire.py`'s contract, which re-exports every name here: import them from
`gateway.wire`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gateway.wire_records import TOPIC_SAFE, WireError

# End-to-end acknowledgements, center to gateway, outside `relay/v1/#` so that ingest (and
# every collector of records) never sees them: `relay-ack/v1/{site}/{gateway_id}`.
ACK_ROOT = "relay-ack/v1"


class AckRange(BaseModel):
    """Records `first`..`last` (inclusive) of one agent session."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    session: int = Field(ge=0)
    first: int = Field(ge=0)
    last: int = Field(ge=0)


class AckChunk(BaseModel):
    """Part `index` of the disturbance record with id (session, seq)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    session: int = Field(ge=0)
    seq: int = Field(ge=0)
    index: int = Field(ge=0)


class Ack(BaseModel):
    """The center's end-to-end acknowledgement, published at QoS 1 to the gateway's
    `ack_topic` after the commit that stored (or kept as rejected) the records it names.
    The agent deletes a record from its outbox only on this, never on the broker's PUBACK:
    a broker that dies with its queue then costs nothing but a re-send."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    site: str = Field(pattern=TOPIC_SAFE)
    gateway_id: str = Field(pattern=TOPIC_SAFE)
    ranges: list[AckRange] = Field(default_factory=list)
    chunks: list[AckChunk] = Field(default_factory=list)


_ack = TypeAdapter(Ack)


def ack_topic(site: str, gateway_id: str) -> str:
    return f"{ACK_ROOT}/{site}/{gateway_id}"


def ranges_of(ids: set[tuple[int, int]]) -> list[AckRange]:
    """(session, seq) pairs as the fewest inclusive ranges, in order."""
    out: list[AckRange] = []
    for session, seq in sorted(ids):
        last = out[-1] if out else None
        if last is not None and last.session == session and last.last + 1 == seq:
            out[-1] = AckRange(session=session, first=last.first, last=seq)
        else:
            out.append(AckRange(session=session, first=seq, last=seq))
    return out


def decode_ack(payload: bytes) -> Ack:
    try:
        return _ack.validate_json(payload)
    except ValidationError as exc:
        raise WireError(f"not an acknowledgement: {exc.errors()[0]['msg']}") from None
