"""The interface every protocol's simulated relay implements, and its registry."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from profiles.model import PointSpec, Profile
from simulator.scenario import RelaySpec


class SimulatedRelay(Protocol):
    spec: RelaySpec
    profile: Profile

    async def start(self) -> None:
        """Open the relay's endpoint (TCP server, pty, serial)."""

    async def stop(self) -> None: ...

    async def emit(
        self,
        point: PointSpec,
        value: bool | int | float | str | None,
        quality: list[str],
        device_time: datetime,
    ) -> None:
        """Send (or queue for the master's next poll) a change of one point."""

    async def set_online(self, online: bool) -> None:
        """Vanish (stop answering, drop connections) or come back."""

    async def set_setting(self, name: str, value: bool | int | float | str) -> None: ...

    async def set_firmware(self, version: str) -> None: ...
