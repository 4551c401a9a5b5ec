"""The statistical tests the analyses use, and how their results are said in plain words.

Pure functions on counts, no dependency beyond `math`:
- `poisson_upper(k, mu)`: the chance of k or more events when mu are expected (is this
  device's recent count more than its model's fleet rate explains?);
- `binomial_upper(x, n, p)`: the chance of x or more successes of n at p. Comparing two
  Poisson rates by the conditional test: given n failures in total, a version with
  exposure share p should hold about n·p of them if it is no worse than the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _log_poisson(i: int, mu: float) -> float:
    return -mu + i * math.log(mu) - math.lgamma(i + 1)


def poisson_upper(k: int, mu: float) -> float:
    """P(X >= k) for X ~ Poisson(mu)."""
    if k <= 0:
        return 1.0
    if mu <= 0:
        return 0.0
    if k > mu:  # sum the tail directly: no cancellation when it is tiny
        total, i = 0.0, k
        while True:
            term = math.exp(_log_poisson(i, mu))
            total += term
            if term < 1e-17 * total or i > k + 10_000:
                return min(1.0, total)
            i += 1
    below = sum(math.exp(_log_poisson(i, mu)) for i in range(k))
    return max(0.0, 1.0 - below)


def _log_binomial(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def binomial_upper(x: int, n: int, p: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p)."""
    if x <= 0:
        return 1.0
    if x > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return min(1.0, sum(math.exp(_log_binomial(i, n, p)) for i in range(x, n + 1)))


def one_in(p: float) -> str:
    """A probability as people say it: "1 in 870"."""
    if p <= 0:
        return "less than 1 in a billion"
    n = 1 / p
    if n >= 1e9:
        return "less than 1 in a billion"
    if n >= 100:
        digits = math.floor(math.log10(n)) - 1
        n = round(n, -digits)
    return f"1 in {n:,.0f}" if n >= 10 else f"1 in {n:.1f}"


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


@dataclass(frozen=True)
class RateComparison:
    """A group's failures against the rest of its fleet, over their exposures."""

    failures: int
    exposure: float  # device-years
    rest_failures: int
    rest_exposure: float
    p_value: float
    alpha: float

    @property
    def rate(self) -> float | None:
        return self.failures / self.exposure if self.exposure > 0 else None

    @property
    def rest_rate(self) -> float | None:
        return self.rest_failures / self.rest_exposure if self.rest_exposure > 0 else None

    @property
    def worse(self) -> bool:
        rate, rest = self.rate, self.rest_rate
        higher = rate is not None and (rest is None or rate > rest)
        return higher and self.p_value < self.alpha


def compare_rates(
    failures: int, exposure: float, rest_failures: int, rest_exposure: float, alpha: float
) -> RateComparison:
    """One-sided conditional test of a group's Poisson rate against the rest's."""
    n = failures + rest_failures
    total = exposure + rest_exposure
    p = 1.0
    if n > 0 and exposure > 0 and total > 0:
        p = binomial_upper(failures, n, exposure / total)
    return RateComparison(failures, exposure, rest_failures, rest_exposure, p, alpha)


def rate_sentence(
    what: str, c: RateComparison, rest: str = "the rest of the fleet", unit: str = "device-year"
) -> str:
    """The comparison in words a quality team reads without a statistics course."""
    rate = f"{c.rate:.2f}" if c.rate is not None else "-"
    rest_rate = f"{c.rest_rate:.2f}" if c.rest_rate is not None else "-"
    head = (
        f"{what}: {c.failures} in {c.exposure:.1f} {unit}s ({rate} per {unit}) against "
        f"{c.rest_failures} in {c.rest_exposure:.1f} {unit}s ({rest_rate} per {unit}) for {rest}."
    )
    chance = (
        f"If it were no worse than the rest, {c.failures} or more of these "
        f"{c.failures + c.rest_failures} failures would fall on it by chance {one_in(c.p_value)} "
        f"(one-sided exact test, p = {fmt_p(c.p_value)}; the threshold is p < {c.alpha:g})"
    )
    verdict = (
        "so it fails more than its fleet."
        if c.worse
        else "so the difference may be chance: not singled out."
    )
    return f"{head} {chance}, {verdict}"
