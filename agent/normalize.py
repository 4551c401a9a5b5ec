"""Observations to records: pure functions, no I/O.

The profile gives a point its meaning (name, kind, severity, phase); the observation gives
value, quality, device time and cause (why it was reported, and the protocol's own cause of
transmission), which are copied as received, never cleaned. Where the device's own record
names the phase or says raised/cleared (a Modbus ring record's phase and state fields),
that wins over the profile's fixed reading.
An address the profile does not know still becomes an event (signal "unknown"), so
nothing a relay says is dropped.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from gateway import wire
from profiles.model import PointSpec, Profile
from protocols.observations import (
    ConditionObservation,
    IdentityObservation,
    PointObservation,
    SettingsObservation,
)


@dataclass(frozen=True)
class DeviceContext:
    site: str
    gateway_id: str
    device_id: str
    protocol: str
    profile: Profile


def record_ids(ctx: DeviceContext, now: datetime) -> dict[str, Any]:
    """The fields every record of one device starts with (session and seq: the outbox's)."""
    return {
        "site": ctx.site,
        "gateway_id": ctx.gateway_id,
        "device_id": ctx.device_id,
        "session": 0,  # assigned by the outbox
        "seq": 0,
        "gateway_time": now,
    }


def point_record(
    ctx: DeviceContext, obs: PointObservation, now: datetime
) -> wire.Event | wire.Measurement:
    spec = ctx.profile.point(obs.address)
    if obs.measurement or (spec is not None and spec.kind == "measurement"):
        return wire.Measurement(
            **record_ids(ctx, now),
            address=obs.address,
            point=spec.name if spec else None,
            value=obs.value,
            unit=spec.unit if spec else None,
            quality=list(obs.quality),
            device_time=obs.device_time,
            device_time_flags=list(obs.device_time_flags),
            cause=obs.cause,
            cause_raw=obs.cause_raw,
        )
    return wire.Event(
        **record_ids(ctx, now),
        address=obs.address,
        point=spec.name if spec else None,
        label=spec.label or spec.name if spec else None,
        signal=spec.kind if spec else "unknown",
        severity=spec.severity if spec else "info",
        phase=_phase(obs, spec),
        value=obs.value,
        quality=list(obs.quality),
        device_time=obs.device_time,
        device_time_flags=list(obs.device_time_flags),
        cause=obs.cause,
        cause_raw=obs.cause_raw,
        details=dict(obs.details),
        raised=_raised(obs, spec),
    )


_PHASES: dict[str | None, wire.Phase] = {p: p for p in get_args(wire.Phase)}


def _phase(obs: PointObservation, spec: PointSpec | None) -> wire.Phase | None:
    """The phase the device's record names (a Modbus ring's phase field), else the
    profile's."""
    return _PHASES.get(obs.phase) or (spec.phase if spec else None)


def _raised(obs: PointObservation, spec: PointSpec | None) -> bool | None:
    """The device's own raised/cleared when it gave one, else the value's truth; a point
    whose set state is the normal one (`inverted`) reads the other way round."""
    said = obs.raised if obs.raised is not None else wire.value_raised(obs.value)
    if spec is None:
        return obs.raised
    return said != spec.inverted


# --- the hot path: a point record's body without building the pydantic model ------------
#
# Validating and dumping a `wire.Event` cost about as much as everything else an event
# does in the agent. Every field of a point record comes from the agent's own code (the
# profile and the ids were validated when the config loaded, the observation was made by
# a driver), so `point_body` writes the JSON directly, with pydantic's own serialiser, in
# the model's field order: byte for byte what `encode_body(point_record(...))` gives
# (tests/agent/test_fast_records.py holds the two together). Anything the model would
# change or refuse (a legacy cause, a naive time, a value of another type) returns None,
# and the caller takes the validated path.

# kind, JSON without session/seq, the event's signal, the profile's point name
Body = tuple[str, bytes, str | None, str | None]

_SCALARS = frozenset({bool, int, float, str, type(None)})
_SIGNALS = frozenset(get_args(wire.Signal))
_SEVERITIES = frozenset(get_args(wire.Severity))
_FLAGS = frozenset({bool, type(None)})
_STR = frozenset({str})
_SEQUENCES = frozenset({tuple, list})
_PHASE_OR_NONE = frozenset({*get_args(wire.Phase), None})


@functools.lru_cache(maxsize=4096)
def ids_valid(site: str, gateway_id: str, device_id: str) -> bool:
    """Whether the model takes these ids (checked once per device)."""
    try:
        wire.Alarm(
            site=site,
            gateway_id=gateway_id,
            device_id=device_id,
            session=0,
            seq=0,
            gateway_time=datetime.now(UTC),
            code="c",
            state="raised",
            message="",
        )
    except ValidationError:
        return False
    return True


def _plain(obs: PointObservation, now: datetime) -> bool:
    """True when the model would take the observation's fields exactly as they are."""
    if type(obs.value) not in _SCALARS or type(obs.address) is not str:
        return False
    if type(obs.details) is not dict or type(obs.raised) not in _FLAGS:
        return False
    if obs.cause is not None and obs.cause not in wire.CAUSES:
        return False  # the model reads a legacy cause into `cause_raw`
    for when in (now, obs.device_time):
        if when is not None and (type(when) is not datetime or when.tzinfo is not UTC):
            return False
    details = obs.details  # a dict (checked above)
    if not (
        _STR.issuperset(map(type, details)) and _SCALARS.issuperset(map(type, details.values()))
    ):
        return False
    quality, flags = obs.quality, obs.device_time_flags
    if type(quality) not in _SEQUENCES or type(flags) not in _SEQUENCES:
        return False
    strings = (*quality, *flags, obs.cause_raw or "")
    return _STR.issuperset(map(type, strings))


def point_body(ctx: DeviceContext, obs: PointObservation, now: datetime) -> Body | None:
    """`encode_body(point_record(ctx, obs, now))` without the model, or None where only
    the model can say (see above)."""
    if not (_plain(obs, now) and ids_valid(ctx.site, ctx.gateway_id, ctx.device_id)):
        return None
    spec = ctx.profile.point(obs.address)
    if obs.measurement or (spec is not None and spec.kind == "measurement"):
        fields: dict[str, Any] = {
            "site": ctx.site, "gateway_id": ctx.gateway_id, "device_id": ctx.device_id,
            "gateway_time": now, "kind": "measurement", "address": obs.address,
            "point": spec.name if spec else None, "value": obs.value,
            "unit": spec.unit if spec else None, "quality": obs.quality,
            "device_time": obs.device_time, "device_time_flags": obs.device_time_flags,
            "cause": obs.cause, "cause_raw": obs.cause_raw,
        }  # fmt: skip
        return "measurement", to_json(fields, inf_nan_mode="null"), None, fields["point"]
    signal = spec.kind if spec else "unknown"
    severity = spec.severity if spec else "info"
    phase = _phase(obs, spec)
    if signal not in _SIGNALS or severity not in _SEVERITIES or phase not in _PHASE_OR_NONE:
        return None
    fields = {
        "site": ctx.site, "gateway_id": ctx.gateway_id, "device_id": ctx.device_id,
        "gateway_time": now, "kind": "event", "address": obs.address,
        "point": spec.name if spec else None,
        "label": spec.label or spec.name if spec else None,
        "signal": signal, "severity": severity, "phase": phase,
        "value": obs.value, "quality": obs.quality, "device_time": obs.device_time,
        "device_time_flags": obs.device_time_flags, "cause": obs.cause,
        "cause_raw": obs.cause_raw, "details": obs.details, "raised": _raised(obs, spec),
    }  # fmt: skip
    return "event", to_json(fields, inf_nan_mode="null"), signal, fields["point"]


def condition_record(ctx: DeviceContext, obs: ConditionObservation, now: datetime) -> wire.Alarm:
    return wire.Alarm(
        **record_ids(ctx, now),
        code=obs.code,
        state=obs.state,
        severity=obs.severity,
        message=obs.message,
        details=dict(obs.details),
    )


def too_large_alarm(record: BaseModel, kind: str, size: int, limit: int) -> wire.Alarm:
    """The alarm that stands for a record of `size` bytes over the `limit` of one record."""
    return wire.Alarm(
        site=str(getattr(record, "site")),  # noqa: B009
        gateway_id=str(getattr(record, "gateway_id")),  # noqa: B009
        device_id=getattr(record, "device_id", None),
        session=0,
        seq=0,
        gateway_time=wire.utcnow(),
        code="record_too_large",
        state="raised",
        severity="major",
        message=f"{kind} record of {size} bytes refused: over the {limit}-byte limit of one "
        "record (broker.max_message_bytes)",
        details={"kind": kind, "bytes": size, "limit": limit},
    )


def comms_alarm(ctx: DeviceContext, up: bool, reason: str, now: datetime) -> wire.Alarm:
    if up:
        message = f"comms restored with device {ctx.device_id}"
    else:
        message = f"comms lost with device {ctx.device_id}: {reason}"
    return wire.Alarm(
        **record_ids(ctx, now),
        code="comms_lost",
        state="cleared" if up else "raised",
        severity="major",
        message=message,
        details={"reason": reason} if reason else {},
    )


def content_hash(content: Any) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def identity_content(obs: IdentityObservation) -> dict[str, Any]:
    return {
        "manufacturer": obs.manufacturer,
        "model": obs.model,
        "serial": obs.serial,
        "firmware_version": obs.firmware_version,
        "checksum": obs.checksum,
        "details": dict(sorted(obs.details.items())),
    }


def firmware_record(
    ctx: DeviceContext, obs: IdentityObservation, now: datetime
) -> wire.FirmwareReport:
    content = identity_content(obs)
    return wire.FirmwareReport(**record_ids(ctx, now), **content, hash=content_hash(content))


def settings_content(obs: SettingsObservation) -> dict[str, dict[str, Any]]:
    return {
        s.name: {"value": s.value, "unit": s.unit, "group": s.group}
        for s in sorted(obs.settings, key=lambda s: s.name)
    }


def setting_categories(profile: Profile) -> dict[str, wire.SettingCategory]:
    """The profile's settings metadata: how a change of each listed setting weighs."""
    return {spec.name: spec.category for spec in profile.settings}


def settings_diff(
    before: dict[str, dict[str, Any]] | None,
    after: dict[str, dict[str, Any]],
    categories: Mapping[str, wire.SettingCategory] | None = None,
) -> list[wire.SettingChange]:
    """As-found changes: every setting added, removed or changed since the last snapshot,
    each with its category from the profile (None when the profile does not list it)."""
    if before is None:
        return []
    weigh = categories or {}
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        category = weigh.get(name)
        if old is None and new is not None:
            changes.append(
                wire.SettingChange(name=name, after=new["value"], change="added", category=category)
            )
        elif new is None and old is not None:
            changes.append(
                wire.SettingChange(
                    name=name, before=old["value"], change="removed", category=category
                )
            )
        elif old is not None and new is not None and old["value"] != new["value"]:
            changes.append(
                wire.SettingChange(
                    name=name,
                    before=old["value"],
                    after=new["value"],
                    change="changed",
                    category=category,
                )
            )
    return changes


def snapshot_reason(first: bool, signalled: bool) -> str:
    """Why a settings snapshot was taken: the first one this agent keeps for the device
    (`connect`), one the device asked for (`device_signalled`), or the timer's (`periodic`)."""
    if first:
        return "connect"
    return "device_signalled" if signalled else "periodic"


def settings_record(
    ctx: DeviceContext,
    content: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]] | None,
    reason: str,
    now: datetime,
) -> wire.SettingsSnapshot:
    """The hash covers the device's content only; categories (and the units the device does
    not report) are the profile's metadata, so editing a profile never makes every relay
    look changed."""
    categories = setting_categories(ctx.profile)
    units = {spec.name: spec.unit for spec in ctx.profile.settings if spec.unit}
    return wire.SettingsSnapshot(
        **record_ids(ctx, now),
        settings={
            k: wire.SettingEntry(
                **{**v, "unit": v["unit"] or units.get(k)}, category=categories.get(k)
            )
            for k, v in content.items()
        },
        hash=content_hash(content),
        previous_hash=content_hash(previous) if previous is not None else None,
        diff=settings_diff(previous, content, categories),
        reason=reason,
    )
