"""The driver's sample config validates, and its README documents what a user needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agent.config import parse_config
from common.errors import ConfigError
from protocols.iec104.config import Iec104Device

HERE = Path(__file__).resolve().parents[3] / "protocols" / "iec104"


def test_sample_validates() -> None:
    path = HERE / "sample.toml"
    config = parse_config(tomllib.loads(path.read_text()), str(path))
    (dev,) = config.devices
    assert isinstance(dev, Iec104Device)
    assert (dev.host, dev.port, dev.common_address) == ("10.0.0.11", 2404, 1)


def test_clock_sync_requires_allow_commands() -> None:
    data = tomllib.loads((HERE / "sample.toml").read_text())
    data["devices"][0]["clock_sync"] = True
    with pytest.raises(ConfigError, match="allow_commands"):
        parse_config(data, "sample.toml")


def test_readme_covers_addresses_values_and_sample() -> None:
    text = (HERE / "README.md").read_text()
    for needle in ("## Config", "## Addresses", "INTERROGATED_BY_STATION", "sample.toml"):
        assert needle in text
