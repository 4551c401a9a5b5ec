"""check-config catches a certificate that is not this gateway's before the broker does."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import check_tls, parse_config
from tests.support.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ("gw-a",))


def config_with(pki: Pki, gateway_id: str, key: Path | None = None) -> object:
    cert = pki.client("gw-a")
    tls = {"ca_file": str(pki.ca), "cert_file": str(cert.cert), "key_file": str(key or cert.key)}
    return parse_config(
        {"agent": {"site": "north", "gateway_id": gateway_id}, "broker": {"tls": tls}}, "a.toml"
    )


def test_the_gateways_own_certificate_passes(pki: Pki) -> None:
    assert check_tls(config_with(pki, "gw-a")) == []  # type: ignore[arg-type]


def test_a_certificate_for_another_gateway_is_named(pki: Pki) -> None:
    assert check_tls(config_with(pki, "gw-b")) == [  # type: ignore[arg-type]
        "broker.tls.cert_file: expected a certificate for CN 'gw-b' (agent.gateway_id) "
        "(found: CN 'gw-a')"
    ]


def test_a_missing_key_file_is_named(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    assert check_tls(config_with(pki, "gw-a", missing)) == [  # type: ignore[arg-type]
        f"broker.tls.key_file: file not found (found: {str(missing)!r})"
    ]
