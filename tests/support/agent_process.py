"""The agent as a real process, in a non-UTC zone on purpose: c104 treats naive datetimes
as local time, and the tests must show that nothing here depends on the gateway's zone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.harness.agent_process import AgentProcess as _AgentProcess


class AgentProcess(_AgentProcess):
    def __init__(self, workdir: Path, config: dict[str, Any], tz: str = "Asia/Shanghai") -> None:
        super().__init__(workdir, config, tz)
