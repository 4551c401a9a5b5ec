"""Bad configs give clear errors: golden cases (file, key path, expected vs found)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from common.errors import ConfigError

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.toml"))


@pytest.mark.parametrize("case", CASES)
def test_golden_config_errors(case: str) -> None:
    path = GOLDEN / f"{case}.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    expected = (GOLDEN / f"{case}.expected").read_text().replace("FILE", str(path)).strip()
    assert str(info.value) == expected


def test_check_config_command_prints_the_problems(tmp_path: Path) -> None:
    path = GOLDEN / "unknown_key.toml"
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert f"{path}: agent.colour: unknown key (found: 'blue')" in done.stderr
    assert "INVALID (2 problem(s))" in done.stderr


def test_example_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    loaded = load_config(root / "config" / "agent.example.toml")
    assert loaded.config.devices
    assert not any(d.allow_commands for d in loaded.config.devices)
