"""The `[broker.tls]` / `[mqtt.tls]` table both daemons read: one model, so that the agent
and the center spell and mean every key the same way.

`check_hostname` (default true) checks that the broker's certificate names the host
connected to. `false` is insecure: any certificate the CA signed is accepted, whoever
presents it; use it only for a broker reached by an address its certificate does not
name, and fix the certificate. The agent once spelled the opposite as
`insecure_skip_hostname_check`; that key is refused with an error naming its
replacement, because a silently ignored security key is worse than a failed start.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from common.config import StrictModel

RENAMED = {
    "insecure_skip_hostname_check": (
        "insecure_skip_hostname_check is no longer read: use check_hostname, which says the "
        "opposite (insecure_skip_hostname_check = true is check_hostname = false)"
    ),
}


class BrokerTls(StrictModel):
    """TLS to the broker: the CA that signed the broker's certificate, and this client's
    own certificate and key (the broker's ACL keys on the certificate's CN)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    check_hostname: bool = Field(
        default=True,
        description="the broker's certificate must name the host connected to; false is insecure",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            problems = [message for key, message in RENAMED.items() if key in data]
            if problems:
                raise ValueError("; ".join(problems))
        return data


def client_context(
    ca_file: Path,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    *,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """The TLS context of every MQTT client of the product (uplink, center, remote poll):
    trust only the given CA, present this client's certificate when there is one (the
    broker's ACL keys on its CN), check the broker's host name unless told not to."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.check_hostname = check_hostname
    return ctx
