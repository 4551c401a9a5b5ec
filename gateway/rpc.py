"""The on-demand poll contract: poll kinds, requests, answers, replies and their errors.

One definition for every party that asks a relay for data now: the agent's control
socket and `relay-agent poll` (agent/ondemand/control_socket.py, agent/cli/poll.py,
agent/ondemand/direct.py), remote requests from the center (agent/ondemand/remote.py,
center/remote_poll.py). Like `gateway/wire.py` for records, both the agent and the center
import this module and nothing of each other.

Remote requests and replies are *not* records: they live under their own topic root, so
the center's record ingest (`relay/v1/#`) never sees them:

    relay-rpc/v1/{site}/{gateway_id}/request                 center -> agent
    relay-rpc/v1/{site}/{gateway_id}/reply/{request_id}      agent  -> center

An answer holds one typed part per poll kind asked for (`PollResults`), the same shape
for every protocol, with the device profile's names beside the protocol addresses.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RPC_ROOT = "relay-rpc/v1"
VERSION: Literal[1] = 1
REQUEST_ID = r"^[A-Za-z0-9_-]{8,64}$"
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 600.0

# Exit codes of `relay-agent poll|status|snapshot` and `relay-center poll`.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

Scalar = bool | int | float | str | None


class PollKind(enum.StrEnum):
    """What an engineer can read from a relay on demand. Every kind is a read."""

    IDENTITY = "identity"
    EVENTS = "events"
    SETTINGS = "settings"
    STATUS = "status"


ALL = "all"
What = Literal["identity", "events", "settings", "status", "all"]
WHAT_CHOICES: tuple[str, ...] = (*(k.value for k in PollKind), ALL)

# The one error vocabulary of local and remote polls.
ErrorCode = Literal[
    "bad_request",  # the request itself is wrong (unknown kind, bad field, wrong reply_to)
    "unknown_device",  # the gateway has no such device
    "disabled",  # the device is disabled in the agent's config
    "unsupported",  # this device's protocol or profile cannot serve that kind
    "link",  # the device cannot be reached (link down, no answer)
    "timeout",  # the device did not answer within the time allowed
    "refused",  # the token is not accepted, or the request is not a read
    "busy",  # the agent's queue of remote requests is full
    "driver_error",  # the driver failed (a bug): logged on the gateway
    "no_reply",  # the agent did not answer at all (offline?); center side only
    "broker",  # the broker could not be reached; center side only
    "incompatible",  # the agent's reply is not in this contract's shape; center side only
]


class PollFailed(Exception):
    """An on-demand request that produced no answer; `code` says why (the CLIs map it to
    exit codes and messages)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


def expand_what(what: str) -> tuple[PollKind, ...]:
    """The kinds `what` asks for; `PollFailed("bad_request")` for anything else."""
    if what == ALL:
        return tuple(PollKind)
    try:
        return (PollKind(what),)
    except ValueError:
        raise PollFailed(
            "bad_request", f"what must be one of {', '.join(WHAT_CHOICES)} (got {what!r})"
        ) from None


def request_topic(site: str, gateway_id: str) -> str:
    return f"{RPC_ROOT}/{site}/{gateway_id}/request"


def reply_topic(site: str, gateway_id: str, request_id: str) -> str:
    return f"{RPC_ROOT}/{site}/{gateway_id}/reply/{request_id}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the parts of an answer ----------------------------------------------------------------


class PointRow(_Model):
    """One point's value: an event, or a status or measured value read now. `name` and
    `label` come from the device profile; None when the profile does not know the address."""

    address: str
    name: str | None = None
    label: str | None = None
    value: Scalar = None
    unit: str | None = None
    quality: list[str] = Field(default_factory=list)
    device_time: datetime | None = None
    cause: str | None = None
    details: dict[str, Scalar] = Field(default_factory=dict)


class IdentityPart(_Model):
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware_version: str | None = None
    checksum: str | None = None
    details: dict[str, Scalar] = Field(default_factory=dict)


class EventsPart(_Model):
    """The device's recent events, oldest first (by device time; events without one last).
    `source` says where they come from (the relay's own event log, or what the link
    received since it connected)."""

    events: list[PointRow] = Field(default_factory=list)
    source: str = ""
    details: dict[str, Scalar] = Field(default_factory=dict)


class SettingRow(_Model):
    name: str
    value: Scalar = None
    unit: str | None = None
    group: str | None = None


class SettingsPart(_Model):
    settings: list[SettingRow] = Field(default_factory=list)
    source: str = ""


class StatusPart(_Model):
    """The device's state now: status points, measured values, and link counters."""

    points: list[PointRow] = Field(default_factory=list)
    measurements: list[PointRow] = Field(default_factory=list)
    counters: dict[str, Scalar] = Field(default_factory=dict)


class PollResults(_Model):
    identity: IdentityPart | None = None
    events: EventsPart | None = None
    settings: SettingsPart | None = None
    status: StatusPart | None = None


class PartError(_Model):
    code: ErrorCode
    error: str


class PollAnswer(_Model):
    """What a poll read from one device: a part per kind that worked, an error per kind
    that did not."""

    site: str
    gateway_id: str
    device: str
    what: What
    polled_at: datetime
    duration_s: float
    link_up: bool | None
    result: PollResults = Field(default_factory=PollResults)
    errors: dict[PollKind, PartError] = Field(default_factory=dict)

    def failures(self) -> dict[PollKind, PartError]:
        """The parts that make this poll a failure. With `all`, a kind the device cannot
        serve at all (`unsupported`) is reported but is no failure: `all` means every kind
        this device has. A kind asked for by name must work."""
        if self.what != ALL:
            return dict(self.errors)
        return {k: e for k, e in self.errors.items() if e.code != "unsupported"}

    @property
    def ok(self) -> bool:
        return self.link_up is not False and not self.failures()


# --- replies and requests ------------------------------------------------------------------


class PollReply(_Model):
    """The control socket's answer to one poll, and the body of a remote reply: an answer,
    or why there is none."""

    ok: bool
    answer: PollAnswer | None = None
    code: ErrorCode | None = None
    error: str | None = None

    @classmethod
    def failed(cls, exc: PollFailed) -> PollReply:
        return cls(ok=False, code=exc.code, error=exc.message)

    @classmethod
    def answered(cls, answer: PollAnswer) -> PollReply:
        return cls(ok=True, answer=answer)


class RemoteReply(PollReply):
    """A `PollReply` in its envelope, on `reply_topic(site, gateway_id, request_id)`."""

    v: Literal[1] = VERSION
    request_id: str
    site: str
    gateway_id: str


class RemoteRequest(_Model):
    """The center's request, on `request_topic(site, gateway_id)`. `what` is checked by the
    agent (and refused, audited, when it is no read) rather than by this model, so that
    a write attempt is answered and seen instead of dropped as malformed."""

    v: Literal[1] = VERSION
    request_id: str = Field(pattern=REQUEST_ID)
    actor: str = Field(min_length=1, max_length=128)
    token: str = Field(min_length=1, max_length=1024)
    device: str = Field(min_length=1, max_length=128)
    what: str = Field(min_length=1, max_length=32)
    reply_to: str
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S)
