"""Registry entry for IEC 104."""

from __future__ import annotations

from typing import Any

from protocols.driver import Driver
from protocols.iec104.config import Iec104Device
from protocols.iec104.profile import Iec104ProfileSection
from protocols.registry import LinkPlan, ProtocolSpec


def _make_driver(plan: LinkPlan) -> Driver:
    from protocols.iec104.driver import Iec104Driver

    return Iec104Driver(plan)


def _link_key(device: Any) -> str:
    return f"iec104:{device.id}"


SPEC = ProtocolSpec(
    name="iec104",
    device_model=Iec104Device,
    make_driver=_make_driver,
    link_key=_link_key,
    # Optional: the points that carry identity and settings (see README.md).
    profile_section=Iec104ProfileSection,
    address_pattern=r"\d{1,8}",  # the information object address (IOA)
    requires=("c104",),
)
