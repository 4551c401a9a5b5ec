"""A local MQTT broker for the demo, the tests and the benchmarks, on a free loopback port.

`Mosquitto` runs the real broker as a child process (persistence on, so QoS 1 sessions
survive `restart()`); `EmbeddedBroker` runs amqtt in this process, for machines without
Mosquitto. amqtt speaks MQTT 3.1.1 only, so agents talking to it set
`broker.mqtt_version = "3.1.1"` (`mqtt_version` says which a broker needs).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Literal, Protocol

BrokerKind = Literal["auto", "mosquitto", "embedded"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str | None:
    """Mosquitto's path, or None. Debian installs it in /usr/sbin, often not on PATH."""
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        found = "/usr/sbin/mosquitto"
    return found


class LocalBroker(Protocol):
    name: str
    host: str
    port: int
    mqtt_version: str

    async def astart(self) -> None: ...
    async def astop(self) -> None: ...


class Mosquitto:
    """`start()`, `stop()`, `restart()`, `kill()`; persistence on, so QoS 1 sessions
    survive restarts."""

    name = "mosquitto"
    mqtt_version = "5"

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would drop to its own user
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n" + extra_conf
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed: run scripts/setup")
        with self.log.open("ab") as out:  # its own startup warnings (e.g. "run as root")
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log.read_text()}") from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, nothing saved that was not saved already."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    async def astart(self) -> None:
        self.start()

    async def astop(self) -> None:
        self.stop()


class EmbeddedBroker:
    """amqtt in this process's event loop: anonymous, loopback only, no persistence."""

    name = "embedded (amqtt)"
    mqtt_version = "3.1.1"

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._broker: Any = None

    async def astart(self) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise RuntimeError(
                "no broker: Mosquitto is not installed and amqtt is missing "
                "(pip install 'relay-service[demo]')"
            ) from None
        # amqtt logs every connect at INFO and every client error with a traceback
        logging.getLogger("amqtt").setLevel(logging.ERROR)
        plugin = "amqtt.plugins.authentication.AnonymousAuthPlugin"
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                "plugins": {plugin: {"allow_anonymous": True}},
            }
        )
        await self._broker.start()

    async def astop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):  # amqtt's shutdown races its own clients
                await self._broker.shutdown()
            self._broker = None


def local_broker(workdir: Path, kind: BrokerKind = "auto") -> LocalBroker:
    """Mosquitto when asked for or when installed, else the embedded broker."""
    if kind == "mosquitto" or (kind == "auto" and mosquitto_binary() is not None):
        return Mosquitto(workdir)
    return EmbeddedBroker()
