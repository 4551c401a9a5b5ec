"""A gateway's `relay-agent run` loads the daemon and nothing else: no simulator, demo or
center module, whatever its config names.

The agent runs as a real process with one device of every protocol (against closed
loopback ports: the drivers start, fail to connect and retry), remote polls and the
metrics endpoint on, until it has published its birth record; then it is stopped with
SIGUSR1 (it reports its tasks and goes on) and then SIGTERM, and writes the modules it
had loaded on its way out."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from simulator.harness.broker import Mosquitto, free_port
from tests.support.collector import Collector

# The run path, exactly as the console script enters it; the list is written at exit.
CHILD = """
import atexit, sys
atexit.register(lambda: open(sys.argv[1], "w").write("\\n".join(sorted(sys.modules))))
from agent.cli import main
sys.exit(main(["run", "--config", sys.argv[2]]))
"""

FORBIDDEN = ("simulator", "demo", "center")


def _config(tmp_path: Path, broker: Mosquitto) -> Path:
    tokens = tmp_path / "tokens"
    tokens.write_text("engineer:" + "t" * 32 + "\n")
    path = tmp_path / "agent.toml"
    path.write_text(f"""
[agent]
site = "north"
gateway_id = "gw-imports"
state_dir = "{tmp_path / "state"}"

[broker]
host = "{broker.host}"
port = {broker.port}

[remote]
enabled = true
tokens_file = "{tokens}"

[metrics]
listen = "127.0.0.1:{free_port()}"

[[buses]]
id = "bus1"
port = "socket://127.0.0.1:{free_port()}"
parity = "N"

[[devices]]
id = "line1"
protocol = "iec104"
profile = "line-protection"
host = "127.0.0.1"
port = {free_port()}
common_address = 1

[[devices]]
id = "feeder7"
protocol = "modbus"
profile = "feeder-protection-modbus"
transport = "tcp"
host = "127.0.0.1"
port = {free_port()}
unit_id = 1

[[devices]]
id = "line3"
protocol = "iec103"
profile = "line-protection-103"
bus = "bus1"
link_address = 1
common_address = 1
""")
    return path


async def _report_then_stop(proc: asyncio.subprocess.Process, log_path: Path) -> None:
    """SIGUSR1 (what it is doing, and it goes on; also what a stalled start waits on),
    then SIGTERM; never left behind to hold ports."""
    try:
        proc.send_signal(signal.SIGUSR1)
        async with asyncio.timeout(10):
            while "--- end of report ---" not in log_path.read_text():  # noqa: ASYNC110, ASYNC240
                await asyncio.sleep(0.1)  # a file to read, no event to wait on
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_relay_agent_run_imports_no_simulator_demo_or_center(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = _config(tmp_path, mosquitto)
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.cli", "check-config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await check.communicate()
    assert check.returncode == 0, output.decode()
    modules = tmp_path / "modules.txt"
    log_path = tmp_path / "agent.log"
    async with Collector(mosquitto.host, mosquitto.port) as collector:
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, str(modules), str(config),
                stdout=log, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                while not collector.of_kind("birth"):
                    assert proc.returncode is None, log_path.read_text()
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # the drivers have had their first connection attempt
        finally:
            if proc.returncode is None:
                await _report_then_stop(proc, log_path)
    logged = log_path.read_text()
    assert proc.returncode == 0, logged
    links = ("link iec104:line1", "link modbus:tcp:", "link iec103:bus1")
    for task in ("uplink", *links, "metrics", "remote polls"):
        assert f"task '{task}" in logged, f"{task} missing from the SIGUSR1 report:\n{logged}"
    loaded = modules.read_text().split()
    assert "agent.daemon" in loaded
    assert "protocols.iec103.driver" in loaded
    leaked = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert leaked == [], f"relay-agent run imported {leaked}"
