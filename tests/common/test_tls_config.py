"""The broker TLS table: one key for the hostname check, with one meaning, in the agent's
and the center's config; the agent's old inverted key is refused with a clear error."""

from __future__ import annotations

import pytest

from agent.config import parse_config as parse_agent
from center.config import parse_config as parse_center
from common.errors import ConfigError

FILES = {"ca_file": "/etc/ca.pem", "cert_file": "/etc/me.pem", "key_file": "/etc/me.key"}
AGENT = {"site": "north", "gateway_id": "gw-a"}


def test_check_hostname_means_the_same_in_both_configs() -> None:
    for check in (True, False):
        tls = {**FILES, "check_hostname": check}
        agent = parse_agent({"agent": AGENT, "broker": {"tls": tls}}, "agent.toml")
        center = parse_center({"mqtt": {"tls": tls}}, "center.toml")
        assert agent.broker.tls is not None
        assert center.mqtt.tls is not None
        assert agent.broker.tls.check_hostname is center.mqtt.tls.check_hostname is check
    default = parse_agent({"agent": AGENT, "broker": {"tls": FILES}}, "agent.toml")
    assert default.broker.tls is not None
    assert default.broker.tls.check_hostname is True


def test_the_old_inverted_key_is_refused_naming_the_new_one() -> None:
    tls = {**FILES, "insecure_skip_hostname_check": True}
    expected = (
        "insecure_skip_hostname_check is no longer read: use check_hostname, which says the "
        "opposite (insecure_skip_hostname_check = true is check_hostname = false)"
    )
    with pytest.raises(ConfigError) as agent:
        parse_agent({"agent": AGENT, "broker": {"tls": tls}}, "agent.toml")
    assert str(agent.value).splitlines() == [f"agent.toml: broker.tls: {expected}"]
    with pytest.raises(ConfigError) as center:
        parse_center({"mqtt": {"tls": tls}}, "center.toml")
    assert str(center.value).splitlines() == [f"center.toml: mqtt.tls: {expected}"]
