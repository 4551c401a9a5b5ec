"""The agent as a real process (`python -m agent.cli run`): the demo runs it so, and tests,
which can then SIGKILL it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulator.harness.agent_config import to_toml


class AgentProcess:
    def __init__(self, workdir: Path, config: dict[str, Any], tz: str | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "agent.toml"
        self.config_path.write_text(to_toml(config))
        self.log_path = workdir / "agent.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if tz is not None:
            self.env["TZ"] = tz
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f"--- start {self.starts} ---\n".encode())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(self.config_path),
             "--log-level", "info"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: no cleanup, no death record, whatever was in flight."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
