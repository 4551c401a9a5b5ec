from __future__ import annotations

from pathlib import Path

import pytest

from center.config import load_config
from common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid():
    cfg = load_config(ROOT / "config" / "center.example.toml")
    assert cfg.mqtt.host == "127.0.0.1"
    assert cfg.mqtt.port == 1883
    assert cfg.database_url.startswith("sqlite:///")
    assert cfg.routing.route("north-220kv") == ("north", "sp-north")


def test_errors_name_file_key_and_expectation(tmp_path):
    path = tmp_path / "center.toml"
    path.write_text(
        '[mqtt]\nport = "x"\nhostname = "a"\n[tickets]\nflap_low_pct = 60\n'
        '[[webhooks]]\nname = "z"\nurl = "ftp://x"\nsecret = "0123456789abcdef"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert f"{path}: mqtt.port: Input should be a valid integer" in text
    assert f"{path}: mqtt.hostname: unknown key" in text
    assert "tickets: flap_low_pct must be below flap_high_pct" in text
    assert "webhooks[0].url: String should match pattern" in text


def test_shared_subscription():
    from center.config import parse_config

    cfg = parse_config({"mqtt": {"shared_group": "center"}})
    assert cfg.mqtt.subscription == "$share/center/relay/v1/#"
