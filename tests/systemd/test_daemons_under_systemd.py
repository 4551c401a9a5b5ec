"""Both daemons speak sd_notify as their units (Type=notify, WatchdogSec=) expect: READY
once serving, watchdog pings, STOPPING on SIGTERM. A real datagram socket stands in for
systemd's; the daemons are real processes against a real Mosquitto."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.harness.agent_config import to_toml
from tests.support.mosquitto import Mosquitto, free_port


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    address = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(30)
    try:
        yield sock, address
    finally:
        sock.close()


def center_command(tmp_path: Path, broker: Mosquitto) -> list[str]:
    config = {
        "center": {"state_dir": str(tmp_path / "center")},
        "mqtt": {"host": broker.host, "port": broker.port},
        "api": {"port": free_port()},
    }
    path = tmp_path / "center.toml"
    path.write_text(to_toml(config))
    return [sys.executable, "-m", "center.cli", "serve", "--config", str(path)]


def agent_command(tmp_path: Path, broker: Mosquitto) -> list[str]:
    config = {
        "agent": {"site": "north", "gateway_id": "gw-1", "state_dir": str(tmp_path / "agent")},
        "broker": {"host": broker.host, "port": broker.port},
        # a relay that is not there: the daemon must serve (and say so) regardless
        "devices": [{"id": "line1", "protocol": "iec104", "profile": "line-protection",
                     "host": "127.0.0.1", "port": free_port(), "common_address": 1}],
    }  # fmt: skip
    path = tmp_path / "agent.toml"
    path.write_text(to_toml(config))
    return [sys.executable, "-m", "agent.cli", "run", "--config", str(path)]


def messages(sock: socket.socket, until: str) -> list[str]:
    """Datagrams' fields, up to and including the first holding `until`."""
    seen: list[str] = []
    while True:
        fields = sock.recv(4096).decode().split("\n")
        seen += fields
        if until in fields:
            return seen


@pytest.mark.parametrize("daemon", ["center", "agent"])
def test_ready_then_watchdog_then_stopping(
    tmp_path: Path,
    mosquitto: Mosquitto,
    notify_socket: tuple[socket.socket, str],
    daemon: str,
) -> None:
    sock, address = notify_socket
    command = (center_command if daemon == "center" else agent_command)(tmp_path, mosquitto)
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}  # ping 0.5 s
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        before_ready = messages(sock, "READY=1")
        assert "WATCHDOG=1" not in before_ready
        assert any(f.startswith("STATUS=") for f in before_ready)
        messages(sock, "WATCHDOG=1")
        messages(sock, "WATCHDOG=1")  # again: it is fed, not pinged once
        proc.send_signal(signal.SIGTERM)
        messages(sock, "STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print((tmp_path / "daemon.log").read_text(errors="replace")[-3000:])
