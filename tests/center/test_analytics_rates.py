"""The statistical tests against values worked out by hand, and how they are worded."""

from __future__ import annotations

import math

import pytest

from center.analytics.rates import (
    binomial_upper,
    compare_rates,
    fmt_p,
    one_in,
    poisson_upper,
    rate_sentence,
)


def test_poisson_upper_tail():
    # P(X >= 3 | mu = 0.2) = 1 - e^-0.2 (1 + 0.2 + 0.02)
    assert poisson_upper(3, 0.2) == pytest.approx(1 - math.exp(-0.2) * 1.22, rel=1e-12)
    assert poisson_upper(0, 5.0) == 1.0
    assert poisson_upper(1, 0.0) == 0.0
    assert poisson_upper(2, 3.0) == pytest.approx(1 - math.exp(-3) * 4, rel=1e-12)
    # far in the tail no cancellation: P(X >= 40 | 1) ~ e^-1 / 40!
    assert poisson_upper(40, 1.0) == pytest.approx(math.exp(-1) / math.factorial(40), rel=1e-3)


def test_binomial_upper_tail():
    assert binomial_upper(8, 10, 0.5) == pytest.approx(56 / 1024, rel=1e-12)
    assert binomial_upper(0, 10, 0.3) == 1.0
    assert binomial_upper(11, 10, 0.3) == 0.0
    assert binomial_upper(1, 3, 0.1) == pytest.approx(1 - 0.9**3, rel=1e-12)


def test_two_rates_and_their_words():
    # 4 of 5 failures on a group holding half the exposure: P = 6/32
    c = compare_rates(4, 10.0, 1, 10.0, alpha=0.01)
    assert c.p_value == pytest.approx(6 / 32)
    assert not c.worse  # higher, but chance explains it
    strong = compare_rates(14, 40.2, 11, 210.5, alpha=0.01)
    assert strong.worse
    assert strong.p_value < 1e-5
    text = rate_sentence("FP-300 firmware 2.3.1, self-check failures", strong, "the FP-300 rest")
    assert text.startswith(
        "FP-300 firmware 2.3.1, self-check failures: 14 in 40.2 device-years (0.35 per "
        "device-year) against 11 in 210.5 device-years (0.05 per device-year) for the FP-300 "
        "rest."
    )
    assert text.endswith("so it fails more than its fleet.")
    lower = compare_rates(1, 50.0, 30, 50.0, alpha=0.01)
    assert not lower.worse
    assert lower.p_value > 0.99


def test_people_words():
    assert one_in(0.00115) == "1 in 870"
    assert one_in(0.3) == "1 in 3.3"
    assert one_in(0.0) == "less than 1 in a billion"
    assert fmt_p(0.0123) == "0.012"
    assert fmt_p(2.1e-9) == "2.1e-09"
