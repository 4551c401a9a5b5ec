"""The explicit registry of protocols. Adding a protocol means one name in `_PACKAGES` and a
`spec.py` in its package (a `SPEC`, with the third-party modules its driver `requires`).

A protocol whose package or stack does not import is not dropped silently: it is listed by
`unavailable()` with the reason, and a config or profile naming it gets that reason."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from protocols.config import DeviceBase, SerialBusConfig
from protocols.driver import Driver


@dataclass(frozen=True)
class PlannedDevice:
    """A device as its driver sees it: config, the protocol's section of its profile, and
    the addresses the profile knows (drivers report unknown ones too)."""

    config: DeviceBase
    profile_section: BaseModel | None
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkPlan:
    """One link: the devices a single driver serves (one TCP peer, or one serial bus)."""

    key: str
    protocol: str
    devices: tuple[PlannedDevice, ...]
    bus: SerialBusConfig | None = None
    # The agent's state directory, for driver state that must survive restarts.
    state_dir: Path | None = None


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    device_model: type[DeviceBase]
    make_driver: Callable[[LinkPlan], Driver]
    # Devices whose key is equal share one driver (a serial bus, a Modbus TCP gateway).
    link_key: Callable[[Any], str]
    # The model of the `[<name>]` section of a profile, when the protocol needs one.
    profile_section: type[BaseModel] | None = None
    # A regex every profile point address must match.
    address_pattern: str = r".+"
    # Rules across the devices of one link (e.g. unit ids unique on a bus), checked with the
    # config so that a clash is a config error before any port opens. Returns problems.
    check_link: Callable[[Sequence[Any]], list[str]] | None = None
    # Third-party modules the driver needs (imported lazily by the driver): the registry
    # imports them up front, so that a missing stack shows at check-config, by name.
    requires: tuple[str, ...] = ()


# The protocol packages, in the order they are offered. A package whose import fails (its
# third-party stack is missing from a broken install) is recorded as unavailable with the
# reason, so that a config naming it says so instead of "unknown protocol".
_PACKAGES = ("iec104", "modbus", "iec103")


def _load() -> tuple[dict[str, ProtocolSpec], dict[str, str]]:
    specs: dict[str, ProtocolSpec] = {}
    missing: dict[str, str] = {}
    for package in _PACKAGES:
        module_name = f"protocols.{package}.spec"
        try:
            spec: ProtocolSpec = importlib.import_module(module_name).SPEC
            for requirement in spec.requires:
                importlib.import_module(requirement)
        except ImportError as exc:
            if (exc.name or "").startswith("protocols."):
                raise  # our own code is broken: that is a bug, not an install problem
            missing[package] = _reason(exc)
            continue
        specs[spec.name] = spec
    return specs, missing


def _reason(exc: ImportError) -> str:
    if exc.name:
        return f"its Python module {exc.name!r} cannot be imported ({exc})"
    return f"importing it failed ({exc})"


_SPECS: dict[str, ProtocolSpec] | None = None
_MISSING: dict[str, str] = {}


def protocols() -> dict[str, ProtocolSpec]:
    """The protocols this install can run."""
    global _SPECS, _MISSING
    if _SPECS is None:
        _SPECS, _MISSING = _load()
    return _SPECS


def unavailable() -> dict[str, str]:
    """Protocols this product offers whose package failed to import, with the reason."""
    protocols()
    return dict(_MISSING)


def unavailable_message(name: str) -> str | None:
    """What to tell a user whose config names protocol `name`, if this install lacks it."""
    reason = unavailable().get(name)
    if reason is None:
        return None
    return (
        f"protocol {name!r} is not available in this install: {reason}; "
        "reinstall the agent with its dependencies (pip install relay-service)"
    )


def get(name: str) -> ProtocolSpec:
    spec = protocols().get(name)
    if spec is None:
        raise KeyError(unavailable_message(name) or f"unknown protocol {name!r}")
    return spec
