"""Test certificates, made by the shipped `scripts/make-certs` (openssl CLI), so the tests
exercise the same tool an operator uses."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MAKE_CERTS = Path(__file__).resolve().parents[2] / "scripts" / "make-certs"


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


@dataclass(frozen=True)
class ClientCert:
    cn: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """A CA in `dir`, a broker certificate for localhost/127.0.0.1, and client certs."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def crl(self) -> Path:
        return self.dir / "crl.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "broker.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "broker.key"

    def client(self, cn: str) -> ClientCert:
        cert, key = self.dir / f"{cn}.crt", self.dir / f"{cn}.key"
        if not cert.exists():
            make_certs("client", str(self.dir), cn)
        return ClientCert(cn, cert, key)

    def revoke(self, cn: str) -> None:
        make_certs("revoke", str(self.dir), cn)


def make_certs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run scripts/make-certs; raises with its stderr when it fails."""
    result = subprocess.run(
        ["bash", str(MAKE_CERTS), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"make-certs {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def make_pki(directory: Path, clients: tuple[str, ...] = ("center",)) -> Pki:
    """A fresh CA with the broker certificate and `clients` (CNs)."""
    make_certs("init", str(directory))
    make_certs("server", str(directory), "broker", "localhost", "127.0.0.1")
    pki = Pki(directory)
    for cn in clients:
        pki.client(cn)
    return pki
