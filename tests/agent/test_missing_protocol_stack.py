"""A broken install (a protocol's stack missing) reads as such, not as a config error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The agent's CLI with pymodbus made unimportable, as on an install that lacks it.
BLOCK_PYMODBUS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pymodbus":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_PYMODBUS, "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_modbus_device_without_pymodbus_names_the_protocol_and_module() -> None:
    done = _check_config(Path("protocols/modbus/sample.toml"))
    assert done.returncode != 0
    assert "devices[0].protocol: protocol 'modbus' is not available" in done.stderr
    assert "'pymodbus'" in done.stderr
    assert "expected one of" not in done.stderr


def test_a_modbus_profile_without_pymodbus_names_the_protocol_and_module(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        "[agent]\nsite = 's'\ngateway_id = 'g'\n\n"
        "[[devices]]\nid = 'line1'\nprotocol = 'iec104'\n"
        "profile = 'feeder-protection-modbus'\nhost = '127.0.0.1'\ncommon_address = 1\n"
    )
    done = _check_config(config)
    assert done.returncode != 0
    assert "profile.protocol: protocol 'modbus' is not available" in done.stderr
    assert "'pymodbus'" in done.stderr


def test_other_protocols_still_check_without_pymodbus() -> None:
    done = _check_config(Path("config/agent.example.toml"))
    assert done.returncode == 0, done.stderr
