"""Registry entry for Modbus (TCP, RTU, RTU over TCP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from protocols.driver import Driver
from protocols.modbus.config import ModbusDevice
from protocols.modbus.profile import ADDRESS_PATTERN, ModbusProfile
from protocols.registry import LinkPlan, ProtocolSpec


def _make_driver(plan: LinkPlan) -> Driver:
    from protocols.modbus.driver import ModbusDriver

    return ModbusDriver(plan)


def _link_key(device: Any) -> str:
    assert isinstance(device, ModbusDevice)
    return device.link_key


def _check_devices(devices: Sequence[Any]) -> list[str]:
    from protocols.modbus.driver import check_devices

    return check_devices([d for d in devices if isinstance(d, ModbusDevice)])


SPEC = ProtocolSpec(
    name="modbus",
    device_model=ModbusDevice,
    make_driver=_make_driver,
    link_key=_link_key,
    profile_section=ModbusProfile,
    address_pattern=ADDRESS_PATTERN,
    # Cross-device rules per link (unit ids unique on a bus); see the README.
    check_link=_check_devices,
    requires=("pymodbus", "construct"),
)
