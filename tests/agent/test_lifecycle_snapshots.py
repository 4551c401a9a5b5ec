"""Agent side of firmware and settings baselines: what a settings snapshot carries (profile
categories, why it was taken) and the agent-wide re-read intervals."""

from __future__ import annotations

import pytest

from agent.config import parse_config
from agent.normalize import DeviceContext, content_hash, settings_content
from agent.pipeline import Pipeline
from gateway import wire
from gateway.outbox import Outbox
from protocols.iec103.config import Iec103Device
from protocols.iec104.config import Iec104Device
from protocols.modbus.config import ModbusDevice
from protocols.observations import SettingsObservation, SettingValue
from protocols.profile_loader import load_named
from tests.agent.test_pipeline import records


def feeder_pipeline(box: Outbox) -> Pipeline:
    ctx = DeviceContext("north", "gw1", "feeder7", "modbus", load_named("feeder-protection-modbus"))
    return Pipeline(box, {"feeder7": ctx})


def observed(
    i_pickup: float, bay: str = "Feeder 7", signalled: bool = False
) -> SettingsObservation:
    values = (SettingValue("i_pickup", i_pickup, "A", "oc"), SettingValue("bay_name", bay, None,
              "oc"), SettingValue("vendor_extra", 7, None, "oc"))  # fmt: skip
    return SettingsObservation("feeder7", values, signalled=signalled)


def test_a_snapshot_carries_profile_categories_outside_its_hash(box: Outbox) -> None:
    pipeline = feeder_pipeline(box)
    first = observed(1.2)
    pipeline.deliver_blocking([first])
    pipeline.deliver_blocking([observed(1.5, "F7", signalled=True)])
    a, b = records(box)
    assert isinstance(a, wire.SettingsSnapshot)
    assert isinstance(b, wire.SettingsSnapshot)
    assert {k: v.category for k, v in a.settings.items()} == {
        "i_pickup": "protection",
        "bay_name": "benign",
        "vendor_extra": None,  # not in the profile: the center weighs it as protection
    }
    # the hash is of the device's content only: profile metadata never changes it
    assert a.hash == content_hash(settings_content(first))
    assert (a.reason, b.reason) == ("connect", "device_signalled")
    assert [(c.name, c.before, c.after, c.category) for c in b.diff] == [
        ("bay_name", "Feeder 7", "F7", "benign"),
        ("i_pickup", 1.2, 1.5, "protection"),
    ]


def test_an_unsignalled_later_read_is_periodic(box: Outbox) -> None:
    pipeline = feeder_pipeline(box)
    pipeline.deliver_blocking([observed(1.2)])
    pipeline.deliver_blocking([observed(1.3)])
    snapshots = records(box)
    assert all(isinstance(r, wire.SettingsSnapshot) for r in snapshots)
    assert [r.reason for r in snapshots if isinstance(r, wire.SettingsSnapshot)] == [
        "connect",
        "periodic",
    ]


def _config(snapshots: dict[str, float], **modbus: float) -> dict[str, object]:
    return {
        "agent": {"site": "north", "gateway_id": "gw1"},
        "snapshots": snapshots,
        "buses": [{"id": "rs485", "port": "/dev/null"}],
        "devices": [
            {"id": "f1", "protocol": "modbus", "profile": "feeder-protection-modbus",
             "host": "127.0.0.1", **modbus},
            {"id": "l1", "protocol": "iec103", "profile": "line-protection-103", "bus": "rs485",
             "link_address": 1, "common_address": 1},
            {"id": "l2", "protocol": "iec104", "profile": "line-protection", "host": "127.0.0.1",
             "common_address": 1},
        ],
    }  # fmt: skip


def test_agent_wide_intervals_fill_only_what_a_device_leaves_unset() -> None:
    config = parse_config(
        _config({"identity_interval_s": 60, "settings_interval_s": 120}, settings_interval_s=5),
        "agent.toml",
    )
    f1, l1, l2 = config.devices
    assert isinstance(f1, ModbusDevice)
    assert isinstance(l1, Iec103Device)
    assert (f1.identity_interval_s, f1.settings_interval_s) == (60, 5)
    assert l1.settings_interval_s == 120  # 103 has no identity interval: ASDU 5
    # IEC 104 re-reads the profile's [iec104] identity and settings points at both periods
    assert isinstance(l2, Iec104Device)
    assert (l2.identity_interval_s, l2.settings_interval_s) == (60, 120)

    default = parse_config(_config({}), "agent.toml").devices[0]
    assert isinstance(default, ModbusDevice)
    assert default.settings_interval_s == 600  # the protocol's default


def test_agent_wide_intervals_are_validated() -> None:
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match=r"snapshots\.settings_interval_s"):
        parse_config(_config({"settings_interval_s": 0}), "agent.toml")
