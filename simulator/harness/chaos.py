"""A substation under fault: simulated IEC 104 relays, the agent, Mosquitto and the
service center, each a real process (the relays in this one), and the faults a field
brings: the agent, the broker or the center SIGKILLed, the agent's disk filled.

The relays keep every event until the agent's acknowledgement covers it and send the
unacknowledged ones again after a reconnect (`simulator/relays/iec104/acks.py`), as a real relay
does, so an event the rig counts as sent is one the relay gave up only once the agent had
confirmed it. The proof is at the far end: every event played must be in the center's
store exactly once (`ChaosRig.tally`).

Used by `tests/chaos/` (short runs, one fault each) and `bench/chaos.py` (long runs with
faults in turn, figures printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.harness.agent_config import agent_config
from simulator.harness.agent_process import AgentProcess
from simulator.harness.broker import Mosquitto, free_port
from simulator.runner import ScenarioRunner, on_free_ports
from simulator.scenario import SEED_SCENARIO, Scenario, ScenarioFile, load_scenario

SITE, GATEWAY = "north", "gw-chaos"
# A point per seed relay that the agent turns into events (each step toggles it).
POINTS = {"line1": "start", "line2": "start", "busbar": "bf_init_phase_a"}

EventKey = tuple[str, str, str]  # device, address, device time (ISO, ms)


def event_scenario(rate_per_relay: float, duration_s: float) -> Scenario:
    """The seed's three IEC 104 relays, each toggling one point `rate_per_relay` times a
    second for `duration_s` (distinct device times per relay: at least 2 ms apart)."""
    seed = load_scenario(SEED_SCENARIO)
    interval_ms = max(2, round(1000 / rate_per_relay))
    steps: list[dict[str, Any]] = []
    for offset, relay in enumerate(POINTS):
        at, n = 500 + offset, 0
        while at < duration_s * 1000:
            steps.append({"at_ms": at, "relay": relay, "point": POINTS[relay], "value": n % 2 == 0})
            at, n = at + interval_ms, n + 1
    data = {
        "scenario": {**seed.header.model_dump(), "name": "chaos"},
        "relays": [r.model_dump() for r in seed.relays],
        "steps": steps,
    }
    return on_free_ports(Scenario(ScenarioFile.model_validate(data), seed.source))


@dataclass
class Tally:
    sent: int
    stored: int  # distinct events stored
    lost: int  # sent, never stored
    duplicated: int  # stored more than once (extra copies)
    records: int  # every event record stored, interrogations included

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, stored {self.stored}, lost {self.lost}, "
            f"duplicated {self.duplicated}"
        )


class CenterProcess:
    """`relay-center serve` on SQLite, as a process that can be SIGKILLed."""

    def __init__(self, workdir: Path, broker: Mosquitto) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.db = workdir / "center.sqlite"
        self.api_port = free_port()
        self.config = workdir / "center.toml"
        self.config.write_text(
            f'[center]\nstate_dir = "{workdir}"\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id = "center-chaos"\n'
            f'[api]\nport = {self.api_port}\ntokens = [{{ name = "t", token = "{"c" * 32}" }}]\n'
        )
        self.log = workdir / "center.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "center.cli", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def subscribed(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.api_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(json.load(r)["mqtt"]["subscribed"])
        except (OSError, ValueError, KeyError):
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def event_rows(self) -> list[str]:
        """The body of every event record stored; empty before the schema exists."""
        try:
            with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
                rows = conn.execute("SELECT body FROM records WHERE kind = 'event'").fetchall()
        except sqlite3.OperationalError:
            return []
        return [str(r[0]) for r in rows]


class DiskFiller:
    """The agent's state directory on a small tmpfs of its own, so the test can fill it.
    Needs root (mount); `available()` says whether this machine allows it."""

    def __init__(self, path: Path, size_mb: int = 64) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False
        self.filler = path / "filler.bin"

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)],
            check=True,
        )
        self.mounted = True

    def fill(self) -> int:
        """Write until the file system refuses (ENOSPC); returns the bytes written."""
        written = 0
        chunk = b"\0" * (1 << 20)
        with self.filler.open("wb", buffering=0) as f:
            while True:
                try:
                    written += f.write(chunk) or 0
                except OSError:
                    break
            for size in (4096, 512, 1):  # the last pages too
                with contextlib.suppress(OSError):
                    while True:
                        written += f.write(b"\0" * size) or 0
        return written

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)
            self.mounted = False


class ChaosRig:
    def __init__(
        self,
        workdir: Path,
        scenario: Scenario,
        *,
        disk: bool = False,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.workdir = workdir
        self.scenario = scenario
        self.progress = progress
        self.broker = Mosquitto(workdir / "broker")
        self.center = CenterProcess(workdir / "center", self.broker)
        self.runner = ScenarioRunner(scenario, progress=lambda line: None)
        state = workdir / "agent-state"
        self.disk = DiskFiller(state) if disk else None
        self.state_dir = state
        self.agent: AgentProcess | None = None
        self.faults: Counter[str] = Counter()

    async def start(self) -> None:
        if self.disk is not None:
            self.disk.mount()
        self.broker.start()
        self.center.start()
        await self.until(self.center.subscribed, "the center subscribed", 60)
        await self.runner.start()
        config = agent_config(
            self.scenario, self.runner.relays, site=SITE, gateway_id=GATEWAY,
            state_dir=self.state_dir, broker=(self.broker.host, self.broker.port),
            # ack_timeout_s: what the center did not confirm is sent again this soon (a
            # broker that lost its queue, or a center not yet subscribed again after it).
            extra={"broker": {"keepalive_s": 5, "reconnect_max_s": 2.0, "ack_timeout_s": 2.0}},
        )  # fmt: skip
        self.agent = AgentProcess(self.workdir / "agent", config)
        self.agent.start()
        await self.runner.wait_for_clients(len(self.scenario.relays), timeout_s=60)

    async def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        self.center.stop()
        self.broker.stop()
        await self.runner.stop()
        if self.disk is not None:
            self.disk.free()
            self.disk.unmount()

    # --- faults -------------------------------------------------------------------------------

    async def kill_agent(self, down_s: float) -> None:
        assert self.agent is not None
        self.agent.kill()
        self.faults["agent SIGKILL"] += 1
        await asyncio.sleep(down_s)
        self.agent.start()

    async def kill_broker(self, down_s: float) -> None:
        self.broker.kill()
        self.faults["broker SIGKILL"] += 1
        await asyncio.sleep(down_s)
        self.broker.start()

    async def kill_center(self, down_s: float) -> None:
        self.center.kill()
        self.faults["center SIGKILL"] += 1
        await asyncio.sleep(down_s)
        self.center.start()

    async def fill_disk(self, full_s: float) -> None:
        assert self.disk is not None, "the rig was made without its own disk"
        written = await asyncio.to_thread(self.disk.fill)
        self.faults["disk full"] += 1
        self.progress(f"disk full ({written >> 20} MiB of filler)")
        await asyncio.sleep(full_s)
        self.disk.free()

    # --- the proof ----------------------------------------------------------------------------

    def sent(self) -> set[EventKey]:
        return {
            (p.relay, p.address or "", p.device_time.isoformat(timespec="milliseconds"))
            for p in self.runner.played
            if p.step.action == "point"
        }

    def stored(self) -> Counter[EventKey]:
        """Spontaneous events in the center's store, by device, address and device time."""
        found: Counter[EventKey] = Counter()
        for body in self.center.event_rows():
            record = json.loads(body)
            if record.get("cause") != "spontaneous" or not record.get("device_time"):
                continue
            when = _iso_ms(str(record["device_time"]))
            found[(str(record["device_id"]), str(record["address"]), when)] += 1
        return found

    def tally(self) -> Tally:
        sent, stored = self.sent(), self.stored()
        return Tally(
            sent=len(sent),
            stored=len(stored),
            lost=len(sent - set(stored)),
            duplicated=sum(n - 1 for n in stored.values() if n > 1),
            records=sum(stored.values()),
        )

    async def drain(self, timeout_s: float, quiet_s: float = 30.0) -> Tally:
        """Wait until every event sent is stored, or nothing more was stored for `quiet_s`
        (the rest is lost), or `timeout_s` passed; then the tally."""
        sent = self.sent()
        deadline = time.monotonic() + timeout_s
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
            stored = await asyncio.to_thread(self.stored)
            if sent <= set(stored):
                break
            if sum(stored.values()) != last:
                last, since = sum(stored.values()), time.monotonic()
            await asyncio.sleep(0.5)
        return await asyncio.to_thread(self.tally)

    async def until(self, check: Callable[[], bool], what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not await asyncio.to_thread(check):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)

    def logs(self) -> str:
        agent = self.agent.log() if self.agent is not None else ""
        center = self.center.log.read_text(errors="replace") if self.center.log.exists() else ""
        return f"--- agent ---\n{agent[-4000:]}\n--- center ---\n{center[-3000:]}"


def _iso_ms(text: str) -> str:
    """A wire time ('…Z' or '+00:00', any sub-second digits) as ISO to the millisecond."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat(timespec="milliseconds")
