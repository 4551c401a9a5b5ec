"""The center config's `[analytics]` section: clock quality, ageing and report settings.

Kept apart from center/config.py so the analytics can grow without touching the rest;
the same rules hold: unknown keys are rejected, every bound is checked at load time.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from common.config import StrictModel

Years = Annotated[float, Field(gt=0)]


class ClockConfig(StrictModel):
    """Clock quality per relay: offset = device time - gateway receive time, over
    spontaneous events."""

    enabled: bool = True
    threshold_ms: float = Field(default=500.0, gt=0)  # |median offset| beyond this is bad
    judge_samples: int = Field(default=9, ge=1, le=200)  # newest samples the verdict uses
    min_samples: int = Field(default=5, ge=1)  # fewer: no offset verdict yet
    window_s: float = Field(default=7 * 86_400.0, gt=0)  # p50/p95/drift over this
    max_samples: int = Field(default=400, ge=10, le=5000)
    min_spacing_s: float = Field(default=30.0, ge=0)  # one sample per this, per relay
    severity: str = Field(default="minor", pattern="^(critical|major|minor|info)$")

    @model_validator(mode="after")
    def _enough(self) -> ClockConfig:
        if self.min_samples > self.max_samples:
            raise ValueError("min_samples must not exceed max_samples")
        return self


class WearCounter(StrictModel):
    """A wear counter a device profile maps to a point (e.g. breaker operations): its
    newest measurement against the limit the maker gives."""

    point: str = Field(min_length=1)
    limit: float = Field(gt=0)
    label: str | None = None


class AgeingConfig(StrictModel):
    enabled: bool = True
    run_every_s: float = Field(default=86_400.0, gt=0)  # the daily job
    design_life_years: dict[str, Years] = Field(default_factory=dict)  # model -> years
    default_design_life_years: float = Field(default=20.0, gt=0)
    window_days: int = Field(default=90, ge=7)  # recent rates over this
    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # rate test: chance below this
    min_count: int = Field(default=3, ge=1)  # fewer events never count as elevated
    rate_weight: float = Field(default=0.2, ge=0)  # risk added per elevated rate
    threshold: float = Field(default=1.0, gt=0)  # risk at or above opens a ticket
    p3_at: float = Field(default=1.2, gt=0)  # risk at or above: P3, else P4
    period_days: int = Field(default=365, ge=1)  # at most one ticket per device per period
    wear: list[WearCounter] = Field(default_factory=list)

    def design_life(self, model: str | None) -> float:
        if model is not None and model in self.design_life_years:
            return self.design_life_years[model]
        return self.default_design_life_years


class ReportConfig(StrictModel):
    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # firmware test threshold
    min_failures: int = Field(default=3, ge=1)  # a version with fewer is never singled out
    top_devices: int = Field(default=10, ge=1, le=1000)


class AnalyticsConfig(StrictModel):
    clock: ClockConfig = Field(default_factory=ClockConfig)
    ageing: AgeingConfig = Field(default_factory=AgeingConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
