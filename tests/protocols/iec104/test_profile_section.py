"""The `[iec104]` profile section: validation against the profile, the text format, and
building identity and settings from point values (pure, no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from common.errors import ConfigError
from protocols.errors import DecodeError
from protocols.iec104.inventory import build_identity, build_settings, setting_value
from protocols.iec104.profile import (
    Iec104ProfileSection,
    SettingPoint,
    decode_text,
    encode_text,
)
from protocols.observations import PointObservation, Scalar, SettingValue
from protocols.profile_loader import load_named, load_profile

PROFILE = """
[profile]
name = "t"
protocol = "iec104"

[[points]]
address = "1001"
name = "start"
kind = "start"

[[settings]]
name = "zone1_reach"
category = "protection"
"""


def section_of(profile_name: str) -> Iec104ProfileSection:
    section = load_named(profile_name).section
    assert isinstance(section, Iec104ProfileSection)
    return section


def values(by_address: dict[str, Scalar]) -> dict[str, PointObservation]:
    """Latest observations by IOA, as the link hands them to the inventory."""
    return {a: PointObservation("r", a, v) for a, v in by_address.items()}


@pytest.mark.parametrize("name", ["line-protection", "busbar-protection"])
def test_seed_profiles_map_every_listed_setting_and_no_point(name: str) -> None:
    profile = load_named(name)
    section = section_of(name)
    assert {s.name for s in section.settings} == {s.name for s in profile.settings}
    assert not section.consumed_addresses() & set(profile.by_address)
    assert section.identity is not None
    assert section.identity.firmware_version is not None


def test_an_ioa_that_is_also_a_point_and_an_unlisted_setting_are_config_errors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        PROFILE
        + """
[iec104]
settings = [
  { name = "zone1_reach", ioa = 1001 },
  { name = "zone9_reach", ioa = 5002 },
]
"""
    )
    with pytest.raises(ConfigError) as error:
        load_profile(path)
    text = str(error.value)
    assert "IOA 1001 is also a [[points]] address" in text
    assert "iec104.settings[1].name" in text
    assert "zone9_reach" in text


def test_an_ioa_mapped_twice_is_rejected() -> None:
    with pytest.raises(ValidationError, match="5002 mapped more than once"):
        Iec104ProfileSection.model_validate(
            {
                "identity": {"model": {"ioa": 5001, "words": 2}},
                "settings": [{"name": "a", "ioa": 5002}],
            }
        )
    with pytest.raises(ValidationError, match="settings_signal needs settings"):
        Iec104ProfileSection.model_validate({"settings_signal": 7})


def test_text_round_trip_and_limits() -> None:
    words = encode_text("LP-900", 2)
    assert words == [int.from_bytes(b"LP-9", "big"), int.from_bytes(b"00\0\0", "big")]
    assert decode_text(words) == "LP-900"
    with pytest.raises(ValueError, match="more than 1 words"):
        encode_text("12345", 1)
    with pytest.raises(DecodeError):
        decode_text([0xFF000000])


def test_setting_values_as_the_profile_types_them() -> None:
    float_item = SettingPoint(name="reach", ioa=1, type="float")
    # a short float as received: 4.2 in 32 bits
    assert setting_value(float_item, values({"1": 4.199999809265137})) == 4.2
    assert setting_value(SettingPoint(name="n", ioa=1, type="int"), values({"1": 1200.0})) == 1200
    flag = SettingPoint(name="ar", ioa=1, type="bool")
    assert setting_value(flag, values({"1": True})) is True
    assert setting_value(flag, values({"1": "off"})) is False
    text = SettingPoint(name="s", ioa=1, type="text", words=2)
    north = encode_text("North", 2)
    assert setting_value(text, values({"1": north[0], "2": north[1]})) == "North"
    with pytest.raises(DecodeError, match="text needs a bitstring"):
        setting_value(text, values({"1": 1.5, "2": 0}))
    with pytest.raises(DecodeError, match="reach"):
        setting_value(float_item, values({"1": "on"}))


def test_an_invalid_or_missing_point_reports_no_settings() -> None:
    items = [SettingPoint(name="a", ioa=1), SettingPoint(name="b", ioa=2)]
    invalid = {"1": PointObservation("r", "1", 1.0, quality=("IV",))} | values({"2": 2.0})
    with pytest.raises(DecodeError, match="IV"):
        build_settings("r", items, invalid, signalled=False)
    with pytest.raises(DecodeError, match="IOA 2 has not answered"):
        build_settings("r", items, values({"1": 1.0}), signalled=False)
    built = build_settings("r", items, values({"1": 1.0, "2": 2.0}), signalled=True)
    assert built.settings == (SettingValue("a", 1.0), SettingValue("b", 2.0))
    assert built.signalled


def test_identity_from_text_points_and_a_fixed_manufacturer() -> None:
    section = Iec104ProfileSection.model_validate(
        {"identity": {"manufacturer": "ACME", "firmware_version": {"ioa": 10, "words": 2}}}
    )
    assert section.identity is not None
    v = encode_text("2.4.1", 2)
    identity = build_identity("r", section.identity, values({"10": v[0], "11": v[1]}))
    assert (identity.manufacturer, identity.firmware_version, identity.model) == (
        "ACME",
        "2.4.1",
        None,
    )
