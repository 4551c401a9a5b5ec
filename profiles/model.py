"""Device profiles: what each address of a relay means.

A profile is a TOML file (`config/profiles/NAME.toml`) for one protocol:

    [profile]
    name = "line-protection"
    protocol = "iec104"
    manufacturer = "…"  model = "…"

    [[points]]
    address = "1001"            # in the protocol's address form (see its README)
    name = "trip_phase_a"
    label = "Trip phase A (TJA)"
    kind = "trip"               # trip | start | alarm | status | self_check | measurement
    severity = "critical"
    phase = "A"

    [[settings]]                # metadata used to classify settings changes
    name = "zone1_reach"
    category = "protection"     # protection | benign

    [iec104]                    # optional, the protocol's own section (validated by it)

Every key is validated, and a key that the rest of its table would never read (a
measurement's severity, an event's unit) is refused like an unknown one. The reference,
docs/profiles.md, is generated from these models by `protocols/profile_reference.py`.

What each protocol says of its profiles (its address form, its own section) comes in as
`ProfileRules`, filled from the protocol's spec by `protocols/profile_loader.py`: profiles
sit below the protocols and import none of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, ValidationError, model_validator

from common.config import StrictModel
from common.errors import ConfigError
from common.validation import describe, read_toml, validate

PROFILES_DIR = Path(__file__).resolve().parent.parent / "config" / "profiles"

PointKind = Literal["trip", "start", "alarm", "status", "self_check", "measurement"]
Severity = Literal["critical", "major", "minor", "info"]
Phase = Literal["A", "B", "C", "N", "AB", "BC", "CA", "ABC"]
NAME = r"^[a-z][a-z0-9_]*$"


class ProfileHeader(StrictModel):
    name: str
    protocol: str
    description: str = ""
    manufacturer: str | None = None
    model: str | None = None


class PointSpec(StrictModel):
    address: str = Field(description="in the protocol's address form (its section below)")
    name: str = Field(pattern=NAME, description="unique in the profile; the record's `point`")
    label: str = Field(default="", description="a person's name for it; events carry it")
    kind: PointKind = Field(description="what the point is (see Kinds)")
    severity: Severity = Field(default="info", description="events only (see Severities)")
    phase: Phase | None = Field(default=None, description="events only (see Phases)")
    unit: str | None = Field(default=None, description="measurements only")
    inverted: bool = Field(
        default=False, description="events only: the truthy value is the normal state"
    )

    @model_validator(mode="after")
    def _keys_for_kind(self) -> PointSpec:
        # A key the point's kind never reads is an error, not a silent no-op.
        if self.kind == "measurement":
            given = [k for k in ("severity", "phase", "inverted") if k in self.model_fields_set]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: not used by a measurement (a value, never raised)"
                )
        elif "unit" in self.model_fields_set:
            raise ValueError(f"unit: used by measurements only (this point is a {self.kind})")
        return self


class SettingSpec(StrictModel):
    name: str = Field(description="as the device's settings read names it")
    category: Literal["protection", "benign"] = Field(
        default="benign", description="how a change of it weighs (see Settings)"
    )
    unit: str | None = Field(
        default=None, description="the setting's unit when the device's read gives none"
    )
    description: str = Field(default="", description="for people; not read by the agent")


class ProfileFile(StrictModel):
    profile: ProfileHeader
    points: list[PointSpec] = Field(default_factory=list)
    settings: list[SettingSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ProfileFile:
        for what, keys in (
            ("address", [p.address for p in self.points]),
            ("name", [p.name for p in self.points]),
        ):
            seen: set[str] = set()
            for k in keys:
                if k in seen:
                    raise ValueError(f"duplicate point {what} {k!r}")
                seen.add(k)
        return self


@dataclass(frozen=True)
class Profile:
    name: str
    protocol: str
    header: ProfileHeader
    points: tuple[PointSpec, ...]
    settings: tuple[SettingSpec, ...]
    section: BaseModel | None
    source: Path
    by_address: dict[str, PointSpec] = field(repr=False, default_factory=dict)
    by_name: dict[str, PointSpec] = field(repr=False, default_factory=dict)

    def point(self, address: str) -> PointSpec | None:
        return self.by_address.get(address)


@runtime_checkable
class CrossCheckedSection(Protocol):
    """A profile section that must agree with the rest of its profile (e.g. its addresses
    are not also ordinary points); `load_profile` calls it when the profile loads."""

    def cross_check(
        self, point_addresses: frozenset[str], setting_names: frozenset[str]
    ) -> list[str]: ...


@dataclass(frozen=True)
class ProfileRules:
    """What one protocol says of its profiles: the regex every point address must match
    and the model of its own `[<protocol>]` section, if it has one; or, for a protocol this
    install lacks, what to tell the user (`unavailable`)."""

    address_pattern: str = r".+"
    section: type[BaseModel] | None = None
    unavailable: str | None = None


def resolve_path(ref: str, search: list[Path]) -> Path:
    """A profile reference is a path (has a slash or ends .toml) or a name in the dirs."""
    if "/" in ref or ref.endswith(".toml"):
        return Path(ref)
    for d in [*search, PROFILES_DIR]:
        candidate = d / f"{ref}.toml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(ref)


def load_profile(path: Path, rules: Mapping[str, ProfileRules]) -> Profile:
    """A profile file, checked against the rules of the protocol it names."""
    data = read_toml(path)
    file = str(path)
    header = data.get("profile", {})
    proto_name = header.get("protocol") if isinstance(header, dict) else None
    found = rules.get(proto_name) if isinstance(proto_name, str) else None
    if found is not None and found.unavailable is not None:
        raise ConfigError(file, [f"profile.protocol: {found.unavailable}"])
    if found is None or not isinstance(proto_name, str):
        offered = sorted(name for name, r in rules.items() if r.unavailable is None)
        raise ConfigError(
            file, [f"profile.protocol: expected one of {offered} (found: {proto_name!r})"]
        )
    spec = found
    section_data = data.pop(proto_name, None)
    parsed = validate(ProfileFile, data, file)
    section: BaseModel | None = None
    if spec.section is not None:
        try:
            section = spec.section.model_validate(section_data or {})
        except ValidationError as exc:
            raise ConfigError(file, describe(exc, prefix=proto_name)) from None
    elif section_data is not None:
        raise ConfigError(file, [f"{proto_name}: this protocol takes no profile section"])
    bad = [
        f"points[{i}].address: expected the {proto_name} address form "
        f"{spec.address_pattern!r} (found: {p.address!r})"
        for i, p in enumerate(parsed.points)
        if not re.fullmatch(spec.address_pattern, p.address)
    ]
    if isinstance(section, CrossCheckedSection):
        bad += section.cross_check(
            frozenset(p.address for p in parsed.points),
            frozenset(s.name for s in parsed.settings),
        )
    if bad:
        raise ConfigError(file, bad)
    points = tuple(parsed.points)
    return Profile(
        name=parsed.profile.name,
        protocol=proto_name,
        header=parsed.profile,
        points=points,
        settings=tuple(parsed.settings),
        section=section,
        source=path,
        by_address={p.address: p for p in points},
        by_name={p.name: p for p in points},
    )


def load_named(
    ref: str, rules: Mapping[str, ProfileRules], search: list[Path] | None = None
) -> Profile:
    return load_profile(resolve_path(ref, search or []), rules)
