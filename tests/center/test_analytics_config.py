"""The `[analytics]` section: wrong keys and values are named with file, key and what was
expected, like the rest of the center's config."""

from __future__ import annotations

import pytest

from center.config import load_config
from common.errors import ConfigError


def test_analytics_errors_name_file_key_and_expectation(tmp_path):
    path = tmp_path / "center.toml"
    path.write_text(
        "[analytics.clock]\nthreshold_ms = -5\nwindow = 3\n"
        "[analytics.ageing]\ndesign_life_years = { FP-300 = 0 }\n"
        '[[analytics.ageing.wear]]\npoint = "breaker_operations"\n'
        '[[devices]]\nsite = "n"\ndevice_id = "d"\ncommissioned = "last spring"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    above_zero = "Input should be greater than 0"
    lines = text.splitlines()
    assert f"{path}: analytics.clock.threshold_ms: {above_zero} (found: -5)" in lines
    assert f"{path}: analytics.clock.window: unknown key (found: 3)" in lines
    assert f"{path}: analytics.ageing.design_life_years.FP-300: {above_zero} (found: 0)" in lines
    assert f"{path}: analytics.ageing.wear[0].limit: required key is missing" in lines
    assert f"{path}: devices[0].commissioned:" in text
    assert "'last spring'" in text


def test_defaults_are_the_documented_ones():
    from center.analytics.config import AnalyticsConfig

    cfg = AnalyticsConfig()
    assert (cfg.clock.threshold_ms, cfg.ageing.threshold, cfg.ageing.period_days) == (
        500.0, 1.0, 365,
    )  # fmt: skip
    assert cfg.ageing.design_life("anything") == 20.0
    assert cfg.report.alpha == 0.01
