"""Registry entry for IEC 103: one driver per serial bus."""

from __future__ import annotations

from typing import Any

from protocols.driver import Driver
from protocols.iec103.config import Iec103Device, Iec103ProfileSection
from protocols.registry import LinkPlan, ProtocolSpec


def _make_driver(plan: LinkPlan) -> Driver:
    from protocols.iec103.driver import Iec103Driver

    return Iec103Driver(plan)


def _link_key(device: Any) -> str:
    return f"iec103:{device.bus}"


SPEC = ProtocolSpec(
    name="iec103",
    device_model=Iec103Device,
    make_driver=_make_driver,
    link_key=_link_key,
    profile_section=Iec103ProfileSection,
    # "<fun>/<inf>" for messages, "<fun>/<inf>.<n>" for the n-th value of a measurand ASDU.
    address_pattern=r"\d{1,3}/\d{1,3}(\.\d{1,2})?",
    uses_bus=True,
)
