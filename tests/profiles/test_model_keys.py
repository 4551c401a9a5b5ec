"""Profile keys that would never be read are refused where the profile loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from protocols.profile_loader import load_profile


def _load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    return str(caught.value)


def test_an_iec103_scale_for_a_non_measurand_address_is_refused(tmp_path: Path) -> None:
    # "128/148" names the ASDU, not one of its values: the factor would never apply.
    error = _load(tmp_path, '[profile]\nname = "r"\nprotocol = "iec103"\n\n'
                  '[iec103.scale]\n"128/148" = 1200.0\n')  # fmt: skip
    assert "iec103: scale: expected measurand addresses <fun>/<inf>.<n>" in error
    assert "'128/148'" in error


def test_a_measurement_point_with_a_severity_is_refused(tmp_path: Path) -> None:
    point = 'address = "2001"\nname = "i_a"\nkind = "measurement"\nseverity = "major"\n'
    error = _load(tmp_path, f'[profile]\nname = "r"\nprotocol = "iec104"\n\n[[points]]\n{point}')
    assert "relay.toml: points[0]: severity: not used by a measurement" in error


def test_a_modbus_point_the_section_cannot_produce_is_refused(tmp_path: Path) -> None:
    points = "".join(
        f'[[points]]\naddress = "{a}"\nname = "{n}"\nkind = "{k}"\n\n'
        for a, n, k in (("status:breaker", "breaker", "status"),
                        ("measurement:ia", "ia", "measurement"), ("event:7", "trip", "trip"))
    )  # fmt: skip
    section = '[[modbus.status]]\naddress = 40\nbits = { 0 = "breaker_closed" }\n'
    error = _load(tmp_path, f'[profile]\nname = "r"\nprotocol = "modbus"\n\n{points}{section}')
    assert "points: 'status:breaker': no such status in the [modbus] section" in error
    assert "points: 'measurement:ia': no such measurement in the [modbus] section" in error
    assert "points: 'event:7': events need a [modbus.event_log]" in error
