"""The agent's CLI works on a gateway installed without the center's extra."""

from __future__ import annotations

import subprocess
import sys

BLOCK_CENTER_DEPS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sqlalchemy", "alembic", "fastapi", "uvicorn", "psycopg"):
            raise ImportError(f"{name} is blocked (not installed on a gateway)")
        return None
sys.meta_path.insert(0, Block())
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_check_config_needs_no_center_dependency() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_CENTER_DEPS, "check-config", "config/agent.example.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout
