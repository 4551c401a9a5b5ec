"""Every registered protocol is complete: its package imports, its spec names it and its
device model, it has the same file roles as the others (a pure codec, link, driver, config,
spec, README, sample config, golden codec cases), its README has the sections a user needs
and lists every module, and its sample config validates with a device of it (profile and
point addresses included)."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

import pytest

from agent.config import load_config
from protocols import registry

ROOT = Path(__file__).resolve().parents[2]
# Headings a protocol's README starts with (docs/contributing.md, "Adding a protocol").
README_SECTIONS = ("Files", "Config", "Addresses", "Tests")
# The files every protocol package has (docs/contributing.md, "Adding a protocol"); the
# codec is a module or, when it has several, a package.
ROLES = ("link.py", "driver.py", "config.py", "spec.py", "README.md", "sample.toml")
# What a codec never imports: it is bytes to values and back, testable without I/O.
IMPURE = {"asyncio", "socket", "selectors", "serial", "threading", "time", "pymodbus"}


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


def codec_files(package: Path) -> list[Path]:
    if (package / "codec.py").exists():
        return [package / "codec.py"]
    return sorted((package / "codec").glob("*.py"))


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_package_has_every_file_role(name: str) -> None:
    package = ROOT / "protocols" / name
    missing = [role for role in ROLES if not (package / role).exists()]
    assert missing == [], f"protocols/{name} lacks {missing}"
    assert codec_files(package), f"protocols/{name}: no codec.py nor codec/"
    assert (ROOT / "tests" / "protocols" / name / "test_codec.py").exists(), "golden codec cases"


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_codec_is_pure(name: str) -> None:
    package = ROOT / "protocols" / name
    for path in codec_files(package):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            else:
                continue
            for module in imported:
                top = module.split(".")[0]
                assert top not in IMPURE, f"{path.relative_to(ROOT)} imports {module}"
                assert not module.startswith((f"protocols.{name}.link", f"protocols.{name}.driver"))


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_readme_lists_every_module(name: str) -> None:
    """The README's Files table has a row for each module of the package, and only those."""
    package = ROOT / "protocols" / name
    text = (package / "README.md").read_text()
    section = re.search(r"^## Files\n(.*?)^## ", text, re.M | re.S)
    assert section is not None, "README: no ## Files section"
    rows = set(re.findall(r"^\| `([^`]+)` \|", section[1], re.M))
    files = {p.name for p in package.glob("*.py")} - {"__init__.py"} | {"sample.toml"}
    if (package / "codec").is_dir():
        files.add("codec/")
        codec_row = re.search(r"^\| `codec/` \|(.*)$", section[1], re.M)
        assert codec_row is not None
        inside = {p.name for p in (package / "codec").glob("*.py")} - {"__init__.py"}
        assert set(re.findall(r"`(\w+\.py)`", codec_row[1])) == inside, "codec/ row"
    assert rows == files, "README's ## Files rows against the package's files"


@pytest.mark.parametrize("name", sorted(registry.protocols()))
def test_sample_config_validates_with_a_device_of_it(name: str) -> None:
    loaded = load_config(ROOT / "protocols" / name / "sample.toml")
    spec = registry.protocols()[name]
    devices = [d for d in loaded.config.devices if isinstance(d, spec.device_model)]
    assert devices, f"sample.toml has no {name} device"
    for device in devices:
        assert loaded.profiles[device.id].protocol == name
