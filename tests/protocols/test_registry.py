"""Every registered protocol is complete: its package imports, its spec names it and its
device model, its README has the sections a user needs, and its sample config validates
with a device of it (profile and point addresses included)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from agent.config import load_config
from protocols import registry

ROOT = Path(__file__).resolve().parents[2]
# Headings a protocol's README starts with (docs/contributing.md, "Adding a protocol").
README_SECTIONS = ("Config", "Addresses", "Tests")


def test_every_protocol_package_is_registered_and_imports() -> None:
    assert registry.unavailable() == {}
    packages = {p.parent.name for p in (ROOT / "protocols").glob("*/spec.py")}
    assert set(registry.protocols()) == packages


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_spec_names_its_protocol(name: str) -> None:
    spec = registry.protocols()[name]
    tag = spec.device_model.model_fields["protocol"].annotation
    assert typing.get_args(tag) == (name,), f"{spec.device_model.__name__}.protocol"
    assert spec.address_pattern != r".+", "a profile address form of its own"
    assert spec.make_driver.__module__.startswith(f"protocols.{name}.")


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_readme_has_the_expected_sections(name: str) -> None:
    text = (ROOT / "protocols" / name / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    for section in README_SECTIONS:
        assert any(h.startswith(section) for h in headings), f"README: no ## {section}"
    assert "sample.toml" in text


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_sample_config_validates_with_a_device_of_it(name: str) -> None:
    loaded = load_config(ROOT / "protocols" / name / "sample.toml")
    spec = registry.protocols()[name]
    devices = [d for d in loaded.config.devices if isinstance(d, spec.device_model)]
    assert devices, f"sample.toml has no {name} device"
    for device in devices:
        assert loaded.profiles[device.id].protocol == name
