"""Registry entry for IEC 103: one driver per serial bus."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from protocols.driver import Driver
from protocols.iec103.config import Iec103Device, Iec103ProfileSection
from protocols.registry import LinkPlan, ProtocolSpec


def _make_driver(plan: LinkPlan) -> Driver:
    from protocols.iec103.driver import Iec103Driver

    return Iec103Driver(plan)


def _link_key(device: Any) -> str:
    return f"iec103:{device.bus}"


def _check_link(devices: Sequence[Any]) -> list[str]:
    """Link addresses are unique on a bus."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for device in devices:
        if device.link_address in seen:
            problems.append(
                f"device {device.id!r}: link_address {device.link_address} is already used by "
                f"{seen[device.link_address]!r} on bus {device.bus!r}"
            )
        seen.setdefault(device.link_address, device.id)
    return problems


SPEC = ProtocolSpec(
    name="iec103",
    device_model=Iec103Device,
    make_driver=_make_driver,
    link_key=_link_key,
    profile_section=Iec103ProfileSection,
    # "<fun>/<inf>" for messages, "<fun>/<inf>.<n>" for the n-th value of a measurand ASDU.
    address_pattern=r"\d{1,3}/\d{1,3}(\.\d{1,2})?",
    check_link=_check_link,
    requires=("serial", "construct"),
)
