"""Turn a driver's typed poll results into the contract's answer (`gateway.rpc.PollAnswer`).

Drivers answer in protocol addresses (`protocols.driver`); engineers read profile names.
This is where the one becomes the other, for the daemon's polls (local and remote) and
`--direct` alike, so every protocol's answer reads the same: events by point name in
device-time order, settings and status as name/value rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

from gateway import rpc, wire
from gateway.rpc import PartError, PollFailed, PollKind
from protocols.driver import (
    EventsResult,
    IdentityResult,
    PolledPoint,
    PollResult,
    SettingsResult,
    StatusResult,
    result_type,
)
from protocols.errors import LinkError

if TYPE_CHECKING:
    from profiles.model import Profile
    from protocols.driver import Driver

log = logging.getLogger(__name__)


def _row(point: PolledPoint, profile: Profile | None) -> rpc.PointRow:
    spec = profile.point(point.address) if profile is not None else None
    details = dict(point.details)
    unit = spec.unit if spec is not None and spec.unit else details.pop("unit", None)
    return rpc.PointRow(
        address=point.address,
        name=spec.name if spec is not None else None,
        label=(spec.label or None) if spec is not None else None,
        value=point.value,
        unit=unit if isinstance(unit, str) else None,
        quality=list(point.quality),
        device_time=point.device_time,
        cause=point.cause,
        details=details,
    )


def _rows(points: Iterable[PolledPoint], profile: Profile | None) -> list[rpc.PointRow]:
    return [_row(p, profile) for p in points]


def _setting_units(profile: Profile | None) -> Mapping[str, str | None]:
    return {s.name: s.unit for s in profile.settings} if profile is not None else {}


def to_results(results: Mapping[PollKind, PollResult], profile: Profile | None) -> rpc.PollResults:
    """The contract's parts, with the profile's names beside the addresses."""
    parts: dict[str, object] = {}
    for kind, result in results.items():
        if isinstance(result, IdentityResult):
            parts[kind] = rpc.IdentityPart(
                manufacturer=result.manufacturer,
                model=result.model,
                serial=result.serial,
                firmware_version=result.firmware_version,
                checksum=result.checksum,
                details=dict(result.details),
            )
        elif isinstance(result, EventsResult):
            parts[kind] = rpc.EventsPart(
                events=_rows(result.events, profile),
                source=result.source,
                details=dict(result.details),
            )
        elif isinstance(result, SettingsResult):
            units = _setting_units(profile)
            parts[kind] = rpc.SettingsPart(
                settings=[
                    rpc.SettingRow(
                        name=s.name, value=s.value, unit=s.unit or units.get(s.name), group=s.group
                    )
                    for s in result.settings
                ],
                source=result.source,
            )
        elif isinstance(result, StatusResult):
            parts[kind] = rpc.StatusPart(
                points=_rows(result.points, profile),
                measurements=_rows(result.measurements, profile),
                counters=dict(result.counters),
            )
    return rpc.PollResults.model_validate(parts)


async def _read_one(driver: Driver, protocol: str, device: str, kind: PollKind) -> PollResult:
    try:
        result = await driver.poll(device, kind)
    except LinkError as exc:
        raise PollFailed("link", f"device {device} did not answer: {exc}") from None
    except KeyError:
        raise PollFailed("unknown_device", f"the driver does not know {device}") from None
    except ValueError as exc:
        raise PollFailed("unsupported", f"{protocol} cannot read {kind}: {exc}") from None
    except TimeoutError:
        raise PollFailed("link", f"device {device} did not answer in time") from None
    except Exception as exc:  # a driver bug: answer it, keep serving
        log.exception("device %s: driver failed on an on-demand %s", device, kind)
        raise PollFailed("driver_error", f"{type(exc).__name__}: {exc}") from None
    expected = result_type(kind)
    if not isinstance(result, expected):  # the contract, checked where it is relied on
        log.error("device %s: driver answered %s with %s", device, kind, type(result).__name__)
        raise PollFailed(
            "driver_error",
            f"{protocol} driver answered {kind} with {type(result).__name__}, "
            f"not {expected.__name__}",
        )
    return result


async def read_kinds(
    driver: Driver, protocol: str, device: str, kinds: tuple[PollKind, ...]
) -> tuple[dict[PollKind, PollResult], dict[PollKind, PartError]]:
    """Ask a running driver for each kind. For one kind a failure raises `PollFailed`;
    for several (`all`) each failure is kept beside the parts that worked."""
    results: dict[PollKind, PollResult] = {}
    errors: dict[PollKind, PartError] = {}
    for kind in kinds:
        log.info("device %s: on-demand poll of %s", device, kind)
        try:
            results[kind] = await _read_one(driver, protocol, device, kind)
        except PollFailed as exc:
            if len(kinds) == 1:
                raise
            log.warning("device %s: on-demand %s failed: %s", device, kind, exc.message)
            errors[kind] = PartError(code=exc.code, error=exc.message)
    if not results and errors:  # every part failed: one clear failure
        first = next(iter(errors.values()))
        raise PollFailed(first.code, first.error)
    return results, errors


def make_answer(
    *,
    site: str,
    gateway_id: str,
    device: str,
    what: str,
    started: float,
    link_up: bool | None,
    results: Mapping[PollKind, PollResult],
    errors: Mapping[PollKind, PartError],
    profile: Profile | None,
) -> rpc.PollAnswer:
    """The answer's one shape, for the socket, remote replies and `--direct`."""
    return rpc.PollAnswer.model_validate(
        {
            "site": site,
            "gateway_id": gateway_id,
            "device": device,
            "what": what,
            "polled_at": wire.utcnow(),
            "duration_s": round(time.monotonic() - started, 3),
            "link_up": link_up,
            "result": to_results(results, profile),
            "errors": dict(errors),
        }
    )


def audit_outcome(answer: rpc.PollAnswer) -> tuple[Literal["ok", "error"], str | None]:
    """(`result`, `error`) of the audit record of an answered poll."""
    error = "; ".join(f"{k}: {e.error}" for k, e in answer.errors.items()) or None
    if answer.link_up is False:
        error = "; ".join(filter(None, ["link down", error]))
    return ("ok" if answer.ok else "error"), error
