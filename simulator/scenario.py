"""The scenario format shared by every protocol's simulated relays.

    [scenario]
    name = "…"

    [[relays]]
    id = "line1"
    protocol = "iec104"
    profile = "line-protection"
    link = { port = 2404, common_address = 1 }     # validated by the protocol's simulator
    identity = { manufacturer = "…", model = "…", serial = "…", firmware_version = "…" }
    settings = { zone1_reach = 4.2 }

    [[steps]]
    at_ms = 200                 # time from scenario start
    relay = "line1"
    point = "trip_phase_a"      # a profile point name
    value = true
    quality = []                # optional quality bits to send (IV, NT, SB, BL, OV)
    # or another action: action = "offline" | "online" | "setting" | "firmware" | "record"
    #   action = "setting", name = "zone1_reach", value = 4.5
    #   action = "firmware", value = "2.1.0"

    [[steps]]                   # an IEC 103 relay records a fault (a disturbance record)
    at_ms = 1000                # the fault's inception
    relay = "line1-103"
    action = "record"
    count = 1                   # optional: a burst of several records, 1 ms apart
    abort_after = 5             # optional: the relay aborts the first transfer after 5 ASDU 30
    record = { phase = "A", fault_current_a = 6000, fault_duration_ms = 65 }  # optional

Point steps are sent with the relay's device time = scenario wall-clock time of the step.
A trip step (kind "trip", value true) of an IEC 103 relay records a fault too, with the
default `record` values, its inception at the fault's start step. The `record` keys (all
optional; defaults consistent with the seed scenario's phase-A fault) are the fields of
`simulator.waveforms.FaultSpec`: phase, channels, samples, sample_rate_hz, frequency_hz,
pre_fault_ms, fault_duration_ms, trip_delay_ms, trip_reset_ms, start_reset_ms,
load_current_a, fault_current_a, voltage_kv, dip, fault_angle_deg, ct_primary_a,
ct_secondary_a, vt_secondary_v.

Disturbance records by reference (written by `relay-center incident export`):

    [[disturbances]]
    relay = "line1"             # the relay that recorded it
    fault_number = 17           # its fault number (IEC 103 FAN)
    trigger_at_ms = 3021        # its trigger on the steps' time line
    cfg = "incident-records/north_line1_17.cfg"    # COMTRADE, relative to this file
    dat = "incident-records/north_line1_17.dat"

The files are checked when the scenario loads. A simulated IEC 103 relay announces each
of its records at `trigger_at_ms` and serves it as recorded (ASDUs 23-31; see
`simulator/relays/iec103/replay.py`), and its trip steps then record nothing of their own; the
IEC 104 and Modbus simulators cannot serve records (c104 offers no file transfer), so for
them the entries document the incident and are not played.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from common.config import ID_PATTERN, StrictModel
from common.errors import ConfigError
from common.validation import read_toml, validate
from profiles.model import Profile
from protocols.profile_loader import load_named
from simulator.waveforms import FaultSpec

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "config" / "scenarios"
SEED_SCENARIO = SCENARIOS_DIR / "seed-phase-a-fault.toml"


class ScenarioHeader(StrictModel):
    name: str
    description: str = ""


class IdentitySpec(StrictModel):
    manufacturer: str = "Demo Relays"
    model: str = "SIM"
    serial: str = "SIM-0001"
    firmware_version: str = "1.0.0"
    checksum: str = "0000"


class RelaySpec(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    protocol: str
    profile: str
    link: dict[str, Any] = Field(default_factory=dict)
    identity: IdentitySpec = IdentitySpec()
    settings: dict[str, bool | int | float | str] = Field(default_factory=dict)


class Step(StrictModel):
    at_ms: int = Field(ge=0)
    relay: str
    action: Literal["point", "offline", "online", "setting", "firmware", "record"] = "point"
    point: str | None = None
    name: str | None = None
    value: bool | int | float | str | None = None
    quality: list[Literal["IV", "NT", "SB", "BL", "OV"]] = Field(default_factory=list)
    record: FaultSpec | None = None  # action "record": what the record shows
    count: int = Field(default=1, ge=1, le=8, description="action record: records in a burst")
    abort_after: int | None = Field(
        default=None, ge=0, description="action record: abort the first transfer after N ASDU 30"
    )

    @model_validator(mode="after")
    def _needs(self) -> Step:
        if self.action == "point" and self.point is None:
            raise ValueError("a point step needs 'point'")
        if self.action == "setting" and self.name is None:
            raise ValueError("a setting step needs 'name'")
        if self.action != "record" and (
            self.record is not None or self.count != 1 or self.abort_after is not None
        ):
            raise ValueError("'record', 'count' and 'abort_after' belong to a record step")
        return self


class DisturbanceRef(StrictModel):
    relay: str
    fault_number: int = Field(ge=0)
    trigger_at_ms: int = Field(ge=0)
    cfg: Path
    dat: Path


class ScenarioFile(StrictModel):
    scenario: ScenarioHeader
    relays: list[RelaySpec] = Field(min_length=1)
    steps: list[Step] = Field(default_factory=list)
    disturbances: list[DisturbanceRef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_relays(self) -> ScenarioFile:
        ids = [r.id for r in self.relays]
        if len(ids) != len(set(ids)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"relay ids must be unique (found twice: {', '.join(twice)})")
        return self


class Scenario:
    """A validated scenario with its relays' profiles loaded."""

    def __init__(self, parsed: ScenarioFile, source: Path) -> None:
        self.header = parsed.scenario
        self.relays = parsed.relays
        self.steps = sorted(parsed.steps, key=lambda s: s.at_ms)
        self.disturbances = parsed.disturbances
        self.source = source
        self.profiles: dict[str, Profile] = {}
        problems = []
        for i, relay in enumerate(parsed.relays):
            profile = load_named(relay.profile, [source.parent.parent / "profiles"])
            if profile.protocol != relay.protocol:
                problems.append(
                    f"relays[{i}].profile: expected a {relay.protocol} profile "
                    f"(found: {profile.name!r} for {profile.protocol})"
                )
            self.profiles[relay.id] = profile
        for i, step in enumerate(self.steps):
            if step.relay not in self.profiles:
                problems.append(f"steps[{i}].relay: unknown relay (found: {step.relay!r})")
            elif step.action == "record" and self.relay(step.relay).protocol != "iec103":
                problems.append(
                    f"steps[{i}].action: disturbance records are simulated for iec103 relays "
                    f"only (found: {self.relay(step.relay).protocol!r})"
                )
            elif step.point and step.point not in self.profiles[step.relay].by_name:
                problems.append(
                    f"steps[{i}].point: not a point of profile "
                    f"{self.profiles[step.relay].name!r} (found: {step.point!r})"
                )
        for i, ref in enumerate(self.disturbances):
            if ref.relay not in self.profiles:
                problems.append(f"disturbances[{i}].relay: unknown relay (found: {ref.relay!r})")
            for key in ("cfg", "dat"):
                if not self.record_file(ref, key).is_file():
                    problems.append(
                        f"disturbances[{i}].{key}: expected a file beside the scenario "
                        f"(found: {getattr(ref, key)!s} missing)"
                    )
        if problems:
            raise ConfigError(str(source), problems)

    def record_file(self, ref: DisturbanceRef, key: str) -> Path:
        path: Path = getattr(ref, key)
        return path if path.is_absolute() else self.source.parent / path

    def relay(self, relay_id: str) -> RelaySpec:
        return next(r for r in self.relays if r.id == relay_id)


def load_scenario(path: Path) -> Scenario:
    return Scenario(validate(ScenarioFile, read_toml(path), str(path)), path)
