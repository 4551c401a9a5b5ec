"""A poll's measurands as one `measurements` record (docs/wire.md), on every poll of every
Modbus device: the agent's hottest path after the register read itself.

The record's body is written straight from plain values (`pending`), byte for byte what
the model would dump (tests/agent/test_measurement_sets.py compares them), and the labels
of a poll (each address's point name and unit) are worked out once per device and set of
addresses, not on every poll. `record` is the model, for anything the fast path does not
take.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from pydantic_core import to_json

from agent.normalize import DeviceContext, ids_valid, record_ids
from gateway import outbox_retention as retention
from gateway import wire
from gateway.outbox_rows import Pending
from profiles.model import Profile
from protocols.observations import MeasurementsObservation, Observation

KIND = "measurements"
_PRIORITY = retention.priority(KIND)
_SCALARS = frozenset({bool, int, float, str, type(None)})
# address -> point name, address -> unit, and both as they are written in the body
Labels = tuple[dict[str, str], dict[str, str], bytes]
# Per profile (by identity; the entry holds the profile, so its id is not reused while
# cached): (addresses, the driver's units) -> labels.
_LABELS: dict[int, tuple[Profile, dict[tuple[object, ...], Labels]]] = {}


def labels(profile: Profile, obs: MeasurementsObservation) -> Labels:
    """The point name and the unit of each address read (the profile's point wins, the
    driver's unit fills in)."""
    key = (*obs.values, *obs.units.items())
    entry = _LABELS.get(id(profile))
    if entry is None or entry[0] is not profile:
        if len(_LABELS) > 1024:
            _LABELS.clear()  # profiles made over and over (tests): no unbounded cache
        entry = _LABELS[id(profile)] = (profile, {})
    known = entry[1]
    found = known.get(key)
    if found is None:
        if len(known) > 64:
            known.clear()  # a driver whose units keep changing: no unbounded cache
        found = known[key] = _labels(profile, obs.values, obs.units)
    return found


def _labels(profile: Profile, values: Mapping[str, object], units: Mapping[str, str]) -> Labels:
    points: dict[str, str] = {}
    found: dict[str, str] = {}
    for address in values:
        spec = profile.point(address)
        unit = spec.unit if spec is not None and spec.unit else units.get(address)
        if spec is not None:
            points[address] = spec.name
        if unit:
            found[address] = unit
    return points, found, to_json({"points": points, "units": found})[1:-1]


def record(ctx: DeviceContext, obs: MeasurementsObservation, now: datetime) -> wire.MeasurementSet:
    """The model of the record. Built without validation: every field is a plain value
    made here (the tests decode its body with the contract)."""
    points, units, _ = labels(ctx.profile, obs)
    return wire.MeasurementSet.model_construct(
        **record_ids(ctx, now),
        values=dict(obs.values),
        points=dict(points),
        units=dict(units),
        quality=[],
        device_time=None,
        device_time_flags=[],
        cause=obs.cause,
        cause_raw=obs.cause_raw,
    )


def pending(
    ctx: DeviceContext, obs: MeasurementsObservation, now: datetime, max_body_bytes: int
) -> Pending | None:
    """The record ready for the outbox, its body written without the model; None where
    only the model can say (then `record`)."""
    if type(now) is not datetime or now.tzinfo is not UTC or type(obs.values) is not dict:
        return None
    if not _SCALARS.issuperset(map(type, obs.values.values())):
        return None
    head = _head(ctx.site, ctx.gateway_id, ctx.device_id)
    if head is None:
        return None
    # The body is the model's JSON: its fields in order, each written as `to_json` writes
    # it; what is the same on every poll of a device is written once (tests compare).
    body = b"".join((
        head, to_json(now), b',"kind":"measurements","values":',
        to_json(obs.values, inf_nan_mode="null"), b",", labels(ctx.profile, obs)[2],
        _tail(obs.cause, obs.cause_raw),
    ))  # fmt: skip
    if len(body) > max_body_bytes:
        return None
    topic = wire.topic(ctx.site, ctx.gateway_id, KIND, ctx.device_id)
    return Pending(topic, KIND, body, False, _PRIORITY)


def alone(
    contexts: Mapping[str, DeviceContext], observations: Sequence[Observation], max_body: int
) -> tuple[Pending, MeasurementsObservation] | None:
    """The record of a delivery that is one poll's measurements and nothing else, for the
    pipeline's shortcut (such a delivery has no replays and no state to commit); None:
    the pipeline's general path."""
    if len(observations) != 1 or type(obs := observations[0]) is not MeasurementsObservation:
        return None
    ctx = contexts.get(obs.device_id)
    found = None if ctx is None else pending(ctx, obs, wire.utcnow(), max_body)
    return None if found is None else (found, obs)


@functools.lru_cache(maxsize=4096)
def _head(site: str, gateway_id: str, device_id: str) -> bytes | None:
    """The body up to the gateway time, or None for ids the model would refuse."""
    if not ids_valid(site, gateway_id, device_id):
        return None
    ids = to_json({"site": site, "gateway_id": gateway_id, "device_id": device_id})
    return ids[:-1] + b',"gateway_time":'


@functools.lru_cache(maxsize=64)
def _tail(cause: str | None, cause_raw: str | None) -> bytes:
    """The body after the labels."""
    rest: dict[str, object] = {"quality": [], "device_time": None, "device_time_flags": [],
                               "cause": cause, "cause_raw": cause_raw}  # fmt: skip
    return b"," + to_json(rest)[1:]


def commit_within(observations: Sequence[Observation]) -> float:
    """How long the records of these observations may wait to share a commit: only
    periodic measurements may (the shortest wait among them), anything else commits at
    once."""
    within = 0.0
    for obs in observations:
        if not isinstance(obs, MeasurementsObservation) or obs.commit_within_s <= 0:
            return 0.0
        within = obs.commit_within_s if within == 0 else min(within, obs.commit_within_s)
    return within
