"""sd_notify against a real AF_UNIX datagram socket, as systemd would listen."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.systemd_notify import SystemdNotifier, watchdog_interval


def _receive(sock: socket.socket) -> list[str]:
    sock.settimeout(10)
    return sock.recv(4096).decode().split("\n")


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    address = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    try:
        yield sock, address
    finally:
        sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"relay-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        yield sock, "@" + name
    finally:
        sock.close()


def test_ready_status_watchdog_stopping_over_a_path_socket(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, address = path_socket
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    try:
        assert notifier.ready(status="3 devices\nbroker up")
        assert _receive(sock) == ["READY=1", "STATUS=3 devices broker up"]
        assert notifier.status("outbox 12 records")
        assert _receive(sock) == ["STATUS=outbox 12 records"]
        assert notifier.watchdog()
        assert _receive(sock) == ["WATCHDOG=1"]
        assert notifier.stopping()
        assert _receive(sock) == ["STOPPING=1"]
    finally:
        notifier.close()


def test_abstract_namespace_address(abstract_socket: tuple[socket.socket, str]) -> None:
    sock, address = abstract_socket
    assert address.startswith("@")
    notifier = SystemdNotifier(address)
    try:
        assert notifier.watchdog()
        assert _receive(sock) == ["WATCHDOG=1"]
    finally:
        notifier.close()


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SystemdNotifier(str(tmp_path / "nobody-listens"))
    try:
        assert notifier.watchdog() is False
        assert notifier.watchdog() is False
    finally:
        notifier.close()
    warnings = [r for r in caplog.records if "sd_notify" in r.getMessage()]
    assert len(warnings) == 1  # once per kind of failure, not once per ping


def test_a_malformed_field_is_a_programming_error(path_socket: tuple[socket.socket, str]) -> None:
    _, address = path_socket
    notifier = SystemdNotifier(address)
    with pytest.raises(ValueError, match="KEY=value"):
        notifier.notify("READY")
    with pytest.raises(ValueError, match="KEY=value"):
        notifier.notify("STATUS=a\nREADY=1")
    notifier.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "500000"}, 0.25),
    ],
)
def test_watchdog_interval_is_half_the_timeout(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected
