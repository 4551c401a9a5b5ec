"""A PostgreSQL server for the tests, wherever the README's test command runs.

`RELAY_TEST_PG` names a server to use (`throwaway` forces a cluster of the tests' own).
Otherwise the tests use the one on
127.0.0.1:5432 when it answers, and where none does they start a throwaway cluster of
their own (initdb in a temporary folder, a free loopback port, trust auth) from the
distribution's server binaries, which scripts/setup installs. So the PostgreSQL tests run
on every machine, and nothing is skipped for want of a server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def server_binaries() -> Path:
    """The newest installed PostgreSQL server's bin folder (Debian keeps them off PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "no PostgreSQL server binaries (initdb) found: run scripts/setup, which installs "
        "the postgresql package"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayCluster:
    """initdb + pg_ctl in a temporary folder; removed on stop.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` system
    user that the Debian package creates."""

    def __init__(self) -> None:
        self.bin = server_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="relay-test-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.root.chmod(0o700)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not _answers("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"throwaway PostgreSQL did not answer on port {self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_admin_url() -> Iterator[str]:
    """A URL of a server database the tests may create databases from."""
    named = os.environ.get("RELAY_TEST_PG", "")
    if named and named != "throwaway":
        yield named
        return
    if not named and _answers("127.0.0.1", 5432):
        yield DEFAULT_URL
        return
    cluster = ThrowawayCluster()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()
