"""sd_notify without libsystemd: tell systemd we are ready, alive, or stopping.

A `Type=notify` unit (systemd/relay-agent.service) waits for `READY=1`, and with
`WatchdogSec=` kills and restarts the service unless `WATCHDOG=1` arrives in time. The
protocol is one datagram of newline-separated `KEY=value` lines to the AF_UNIX socket
named in `$NOTIFY_SOCKET` (a leading `@` means the abstract namespace). Outside systemd
the variable is unset and every call is a no-op, so the daemon calls these
unconditionally:

    notifier = SystemdNotifier.from_environment()
    notifier.ready(status="3 devices, broker connected")
    interval = watchdog_interval()          # None when no watchdog is configured
    ...every `interval` seconds, from the event loop: notifier.watchdog()
    notifier.stopping()

Ping the watchdog from the asyncio loop itself (a task that sleeps `interval`), not from
a thread: the point is to prove the loop is not stuck.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends notifications to one `$NOTIFY_SOCKET` address; inert when there is none.

    Send failures are logged (once per kind of error) and swallowed: a notification is
    advisory, and a daemon must never stop forwarding records because systemd went away.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._sock: socket.socket | None = None
        self._logged_errors: set[str] = set()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def _target(self) -> str:
        assert self.address is not None
        if self.address.startswith("@"):
            return "\0" + self.address[1:]
        return self.address

    def notify(self, *fields: str) -> bool:
        """Send `fields` (each `KEY=value`) in one datagram. True if it was sent."""
        if self.address is None:
            return False
        for item in fields:
            if "=" not in item or "\n" in item:
                raise ValueError(f"not a KEY=value notification field: {item!r}")
        payload = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self._target())
        except OSError as exc:
            kind = type(exc).__name__
            if kind not in self._logged_errors:
                self._logged_errors.add(kind)
                log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1"]
        if status is not None:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        """Free text shown by `systemctl status`."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        fields = ["STOPPING=1"]
        if status is not None:
            fields.append(f"STATUS={_one_line(status)}")
        return self.notify(*fields)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between `WATCHDOG=1` pings, or None when no watchdog applies to us.

    systemd sets `WATCHDOG_USEC` (the timeout) and `WATCHDOG_PID` (whom it is for). Ping
    at half the timeout, as sd_watchdog_enabled(3) advises. A `WATCHDOG_PID` naming
    another process (the variable leaked into a child) means: not ours, no watchdog.
    """
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC")
    if not usec_text:
        return None
    try:
        usec = int(usec_text)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec_text)
        return None
    if usec <= 0:
        return None
    pid_text = env.get("WATCHDOG_PID")
    if pid_text:
        try:
            if int(pid_text) != os.getpid():
                return None
        except ValueError:
            log.warning("ignoring WATCHDOG_PID=%r: not an integer", pid_text)
            return None
    return usec / 1_000_000 / 2
