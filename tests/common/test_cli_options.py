"""What every command line shares: `--version`, and `check-config FILE` or
`check-config --config FILE` in both daemons' CLIs."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIS = {
    "relay-agent": "agent.cli",
    "relay-center": "center.cli",
    "relay-sim": "simulator.cli",
    "relay-demo": "demo",
}
EXAMPLES = {
    "agent.cli": ROOT / "config" / "agent.example.toml",
    "center.cli": ROOT / "config" / "center.example.toml",
}


def run(module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("prog", sorted(CLIS))
def test_version(prog: str) -> None:
    done = run(CLIS[prog], "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{prog} {metadata.version('relay-service')} (relay-service)"


@pytest.mark.parametrize("module", sorted(EXAMPLES))
def test_check_config_takes_a_file_either_way(module: str) -> None:
    example = str(EXAMPLES[module])
    positional = run(module, "check-config", example)
    option = run(module, "check-config", "--config", example)
    assert positional.returncode == option.returncode == 0, positional.stderr + option.stderr
    assert positional.stdout == option.stdout
    assert f"{example}: " in positional.stdout
    both_same = run(module, "check-config", example, "--config", example)
    assert both_same.returncode == 0
    two = run(module, "check-config", example, "--config", "other.toml")
    none = run(module, "check-config")
    assert (two.returncode, none.returncode) == (2, 2)
    assert "two different configs given" in two.stderr
    assert "which config? pass FILE or --config FILE" in none.stderr
