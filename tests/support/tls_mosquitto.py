"""A real Mosquitto with the shipped TLS config (config/mosquitto/mosquitto-tls.conf) and ACL
(config/mosquitto/acl), on a free loopback port, with certificates from tests/support/certs.

The shipped config is used as is; only its install paths and port are pointed at the test's
directory, and every such substitution must match (so an edit to the shipped file that the
test no longer covers fails loudly instead of testing something else)."""

from __future__ import annotations

import getpass
from pathlib import Path

from tests.support.certs import Pki
from tests.support.mosquitto import Mosquitto

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "mosquitto"
SHIPPED_CONF = CONFIG_DIR / "mosquitto-tls.conf"
SHIPPED_ACL = CONFIG_DIR / "acl"


def render_config(pki: Pki, workdir: Path, port: int, log: Path, extra_conf: str = "") -> str:
    text = SHIPPED_CONF.read_text()
    substitutions = {
        "listener 8883\n": f"listener {port} 127.0.0.1\n",
        "acl_file /etc/mosquitto/relay-service.acl\n": f"acl_file {SHIPPED_ACL}\n",
        "persistence_location /var/lib/mosquitto/\n": f"persistence_location {workdir}/\n",
        "cafile /etc/mosquitto/certs/ca.crt\n": f"cafile {pki.ca}\n",
        "certfile /etc/mosquitto/certs/broker.crt\n": f"certfile {pki.server_cert}\n",
        "keyfile /etc/mosquitto/certs/broker.key\n": f"keyfile {pki.server_key}\n",
        "crlfile /etc/mosquitto/certs/crl.pem\n": f"crlfile {pki.crl}\n",
    }
    for old, new in substitutions.items():
        if text.count(old) != 1:
            raise AssertionError(f"{SHIPPED_CONF}: expected exactly one line {old.strip()!r}")
        text = text.replace(old, new)
    # As root, mosquitto would drop to its own user and could not read the test's keys.
    header = f"user {getpass.getuser()}\nlog_dest file {log}\nset_tcp_nodelay true\n"
    return header + text + extra_conf


class TlsMosquitto(Mosquitto):
    """`Mosquitto` (start, stop, restart, log) running the shipped TLS config.

    Mosquitto 2.0 logs a denied PUBLISH ("Denied PUBLISH from gw-a (… 'topic' …)") only at
    `log_type debug`; tests that look for that line pass `extra_conf="log_type debug\\n"`.
    """

    def __init__(
        self, workdir: Path, pki: Pki, port: int | None = None, extra_conf: str = ""
    ) -> None:
        super().__init__(workdir, port)
        self.pki = pki
        self.conf.write_text(render_config(pki, workdir, self.port, self.log, extra_conf))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
