"""The explicit registry of protocols. Adding a protocol means one line in `_load` and a
`spec.py` in its package; `tests/protocols/test_registry.py` checks every entry obeys the
convention (README, sample config that validates)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class CrossCheckedSection(Protocol):
    """A profile section that must agree with the rest of its profile (e.g. its addresses
    are not also ordinary points); `agent/profiles.py` calls it when the profile loads."""

    def cross_check(
        self, point_addresses: frozenset[str], setting_names: frozenset[str]
    ) -> list[str]: ...


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
    uses_bus: bool = False
    # Rules across the devices of one link (e.g. unit ids unique on a bus), checked with the
    # config so that a clash is a config error before any port opens. Returns problems.
    check_link: Callable[[Sequence[Any]], list[str]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def _load() -> dict[str, ProtocolSpec]:
    specs: list[ProtocolSpec] = []
    # One line per protocol (explicit on purpose):
    from protocols.iec104.spec import SPEC as IEC104

    specs.append(IEC104)
    try:
        from protocols.modbus.spec import SPEC as MODBUS

        specs.append(MODBUS)
    except ModuleNotFoundError:  # pragma: no cover - while the package is being written
        pass
    try:
        from protocols.iec103.spec import SPEC as IEC103

        specs.append(IEC103)
    except ModuleNotFoundError:  # pragma: no cover
        pass
    return {s.name: s for s in specs}


_SPECS: dict[str, ProtocolSpec] | None = None


def protocols() -> dict[str, ProtocolSpec]:
    global _SPECS
    if _SPECS is None:
        _SPECS = _load()
    return _SPECS


def get(name: str) -> ProtocolSpec:
    return protocols()[name]
