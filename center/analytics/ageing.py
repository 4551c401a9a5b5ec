"""Ageing risk of one device, explained in numbers. Pure: the daily job gathers the facts.

risk = max(age share, wear share) + rate_weight × (number of elevated recent rates)

- age share: age / the model's design life (commissioning from config, else first seen);
- wear share: the highest newest-value / limit of the wear counters the config maps;
- a recent rate (self-check failures, device alarms, comms losses over `window_days`) is
  elevated when the device has at least `min_count` events and a count this high would
  happen by chance less than `alpha` of the time if the device failed at its model's
  fleet rate (one-sided Poisson test; the fleet rate comes from the rest of the model's
  devices, so a device never raises its own bar).

At or above `threshold` the device gets an `ageing` ticket: P3 from `p3_at`, else P4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from center.analytics.config import AgeingConfig
from center.analytics.rates import fmt_p, one_in, poisson_upper

RATE_KINDS = {  # kind: (one, several)
    "self_check": ("self-check failure", "self-check failures"),
    "alarm": ("device alarm", "device alarms"),
    "comms_lost": ("comms loss", "comms losses"),
}


@dataclass(frozen=True)
class RateFinding:
    kind: str
    count: int
    expected: float  # from the fleet rate over the device's days in the window
    fleet_rate_per_year: float
    p_value: float
    elevated: bool

    def sentence(self, window_days: int, model: str, alpha: float) -> str:
        one, several = RATE_KINDS.get(self.kind, (self.kind, self.kind))
        head = (
            f"{self.count} {one if self.count == 1 else several} in {window_days} days against "
            f"{self.expected:.2g} expected from the {model} fleet rate "
            f"({self.fleet_rate_per_year:.2g} per device-year)"
        )
        if self.elevated:
            return (
                f"{head}: elevated (by chance {one_in(self.p_value)}, p = {fmt_p(self.p_value)}"
                f" < {alpha:g})"
            )
        return head


@dataclass(frozen=True)
class WearFinding:
    point: str
    label: str
    value: float
    limit: float

    @property
    def share(self) -> float:
        return self.value / self.limit


@dataclass(frozen=True)
class DeviceInput:
    site: str
    device_id: str
    model: str
    age_years: float
    days_in_window: float  # the device's own exposure within the window
    counts: dict[str, int] = field(default_factory=dict)
    wear: list[WearFinding] = field(default_factory=list)


@dataclass(frozen=True)
class FleetRate:
    """Per model and kind: events and device-days over the window, for everyone."""

    events: int
    device_days: float


@dataclass(frozen=True)
class AgeingScore:
    site: str
    device_id: str
    model: str
    risk: float
    age_years: float
    design_life_years: float
    rates: list[RateFinding]
    wear: list[WearFinding]
    explanation: str
    opens_ticket: bool
    priority: str  # what the ticket should be: P3 or P4

    @property
    def severity(self) -> str:
        """The severity that gives the engine's priority for a normal device."""
        return "major" if self.priority == "P3" else "minor"


def rate_finding(
    kind: str, dev: DeviceInput, fleet: FleetRate | None, cfg: AgeingConfig
) -> RateFinding:
    count = dev.counts.get(kind, 0)
    events = fleet.events if fleet else 0
    days = fleet.device_days if fleet else 0.0
    rest_events, rest_days = events - count, days - dev.days_in_window
    if rest_days <= 0:  # alone in its fleet: nothing to compare with
        return RateFinding(kind, count, float(count), 0.0, 1.0, False)
    # Half an event when the rest saw none: "never seen" is not a rate of zero.
    per_day = max(rest_events, 0.5) / rest_days
    expected = per_day * dev.days_in_window
    p = poisson_upper(count, expected)
    elevated = count >= cfg.min_count and p < cfg.alpha
    return RateFinding(kind, count, expected, per_day * 365.25, p, elevated)


def score(
    dev: DeviceInput, fleet: dict[tuple[str, str], FleetRate], cfg: AgeingConfig
) -> AgeingScore:
    life = cfg.design_life(dev.model)
    age_share = dev.age_years / life
    rates = [rate_finding(k, dev, fleet.get((dev.model, k)), cfg) for k in RATE_KINDS]
    elevated = [r for r in rates if r.elevated]
    wear_share = max((w.share for w in dev.wear), default=0.0)
    risk = round(max(age_share, wear_share) + cfg.rate_weight * len(elevated), 3)
    parts = [f"age {dev.age_years:.1f} of {life:g} years ({age_share:.2f} of design life)"]
    parts += [r.sentence(cfg.window_days, dev.model, cfg.alpha) for r in elevated]
    parts += [
        f"{w.label} {w.value:,.0f} of {w.limit:,.0f} ({w.share:.2f})"
        for w in sorted(dev.wear, key=lambda w: -w.share)
    ]
    formula = f"max(age {age_share:.2f}, wear {wear_share:.2f})"
    if elevated:
        formula += f" + {cfg.rate_weight:g} × {len(elevated)} elevated rate(s)"
    opens = risk >= cfg.threshold
    explanation = (
        f"{dev.device_id}: risk {risk:.2f} (threshold {cfg.threshold:g}) = {formula}; "
        + "; ".join(parts)
    )
    return AgeingScore(
        site=dev.site,
        device_id=dev.device_id,
        model=dev.model,
        risk=risk,
        age_years=round(dev.age_years, 2),
        design_life_years=life,
        rates=rates,
        wear=list(dev.wear),
        explanation=explanation,
        opens_ticket=opens,
        priority="P3" if risk >= cfg.p3_at else "P4",
    )
