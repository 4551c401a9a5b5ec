"""docs/configuration.md's key tables are the models' own: regenerate them after a change."""

from __future__ import annotations

from agent import config_reference


def test_the_configuration_reference_is_current() -> None:
    doc = config_reference.DOC.read_text()
    assert config_reference.current(doc) == config_reference.render(), (
        "docs/configuration.md is stale: run .venv/bin/python -m agent.config_reference"
    )


def test_every_config_table_is_in_the_reference() -> None:
    text = config_reference.render()
    for table in ("[agent]", "[broker]", "[broker.tls]", "[remote]", "[[buses]]"):
        assert f"### `{table}`" in text
    assert "| `check_hostname` | bool | True |" in text
