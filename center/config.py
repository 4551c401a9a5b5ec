"""The center's config: one TOML file, validated into typed models before anything starts.

Unknown keys are rejected, nothing is silently rewritten, and every problem reads
`FILE: key.path: what was expected (found: …)`. See docs/center.md for every key.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from center.analytics.config import AnalyticsConfig
from common.config import ID_PATTERN, StrictModel
from common.tls_config import BrokerTls
from common.validation import read_toml, validate

Criticality = Literal["high", "normal", "low"]


class CenterSection(StrictModel):
    instance: str = "center-1"
    state_dir: Path = Path("~/.local/state/relay-center")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


TlsConfig = BrokerTls  # shared with the agent: one spelling, one meaning


class MqttConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    client_id: str = Field(default="relay-center-1", min_length=1, max_length=64)
    shared_group: str | None = Field(default=None, pattern=ID_PATTERN)
    username: str | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=30, ge=5)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    max_batch_messages: int = Field(default=64, ge=1, le=10_000)

    @property
    def subscription(self) -> str:
        base = "relay/v1/#"
        return f"$share/{self.shared_group}/{base}" if self.shared_group else base


class DatabaseConfig(StrictModel):
    url: str | None = None  # default: SQLite file in state_dir
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"
    pool_size: int = Field(default=5, ge=1)


Role = Literal["viewer", "operator", "engineer", "admin"]


class ApiToken(StrictModel):
    name: str = Field(min_length=1)
    token: str = Field(min_length=16)
    # Tokens written before roles existed could do everything; they keep that. Give an
    # integration that only reads `role = "viewer"` (docs/console.md, who may do what).
    role: Role = "admin"


class ApiConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8765, gt=0, lt=65536)
    tokens: list[ApiToken] = Field(default_factory=list)


class ConsoleConfig(StrictModel):
    """The web console (docs/console.md), served on the API's port under `/`."""

    enabled: bool = True
    session_idle_s: float = Field(default=8 * 3600.0, gt=0)  # logged out after this idle
    session_max_s: float = Field(default=24 * 3600.0, gt=0)  # and after this in any case
    # Set when a TLS proxy serves the console: browsers then send the cookie only over TLS.
    secure_cookies: bool = False
    login_attempts: int = Field(default=5, ge=1)  # failed logins per user and per address
    login_window_s: float = Field(default=300.0, gt=0)
    page_size: int = Field(default=50, ge=5, le=500)
    refresh_s: float = Field(default=3.0, ge=1, le=5)  # how often the queue updates itself
    # The agents' remote-poll token, for the device page's poll button.
    poll_token_file: Path | None = None
    poll_timeout_s: float = Field(default=10.0, gt=0, le=60)


DEFAULT_ROOT_CAUSES = [
    "line_fault",
    "external_fault",
    "maloperation",
    "setting_error",
    "wiring_error",
    "hardware_failure",
    "firmware_defect",
    "communication_failure",
    "testing_or_maintenance",
    "unknown",
]


class TicketsConfig(StrictModel):
    grouping_window_s: float = Field(default=10.0, ge=0)
    auto_resolve_after_s: float = Field(default=300.0, ge=0)
    auto_resolve_overrides: dict[str, float] = Field(default_factory=dict)
    reopen_window_s: float = Field(default=86_400.0, ge=0)
    flap_history: int = Field(default=10, ge=3, le=100)
    flap_window_s: float = Field(default=3600.0, gt=0)
    flap_high_pct: float = Field(default=50.0, gt=0, le=100)
    flap_low_pct: float = Field(default=25.0, ge=0, le=100)
    tick_interval_s: float = Field(default=1.0, gt=0)
    # A gateway that sent its health interval is found silent after this many of them
    # without a birth or health record (center/gateway_silence.py).
    silent_after_intervals: int = Field(default=3, ge=2)
    discrete_alarm_codes: list[str] = Field(
        default_factory=lambda: ["events_lost", "record_too_large"]
    )
    ignored_alarm_codes: list[str] = Field(default_factory=list)
    root_causes: list[str] = Field(default_factory=lambda: list(DEFAULT_ROOT_CAUSES))

    @model_validator(mode="after")
    def _hysteresis(self) -> TicketsConfig:
        if self.flap_low_pct >= self.flap_high_pct:
            raise ValueError("flap_low_pct must be below flap_high_pct")
        return self

    def hold_for(self, fault_class: str) -> float:
        return self.auto_resolve_overrides.get(fault_class, self.auto_resolve_after_s)


class LifecycleConfig(StrictModel):
    """Firmware and settings baselines (docs/lifecycle.md). Without a baseline nothing can
    drift; adopting the first report makes changes caught from day one, and each adoption
    is recorded as an approval by `auto`."""

    adopt_first_firmware: bool = True  # a model's first reported version becomes approved
    adopt_first_settings: bool = True  # a device's first snapshot becomes its baseline


class DisturbanceConfig(StrictModel):
    """Disturbance records (docs/disturbance.md): the largest record accepted, how long
    records are kept, and how long an unfinished transfer may wait for its next chunk."""

    max_record_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    retention_days: float = Field(default=365.0, gt=0)
    incomplete_after_s: float = Field(default=86_400.0, gt=0)


class IngestConfig(StrictModel):
    """How far a device's clock may stray from its gateway's before the center stops
    believing it (the record is kept, flagged, and ordered and judged by gateway time).
    Behind is far wider than ahead: a relay replays what it buffered while its link was
    down and an agent forwards its backlog, so old device times are normal, and only a
    clock reset (to 2000, to 1970) is implausible; times from the future never are."""

    device_time_ahead_s: float = Field(default=900.0, ge=0)
    device_time_behind_s: float = Field(default=10 * 365 * 86_400.0, ge=0)


class RegionConfig(StrictModel):
    service_point: str = Field(min_length=1)


class SiteConfig(StrictModel):
    region: str = Field(min_length=1)
    name: str | None = None


class DeviceConfig(StrictModel):
    site: str
    device_id: str
    criticality: Criticality = "normal"
    commissioned: date | None = None  # ageing: default is the day the center first saw it


class RoutingConfig(StrictModel):
    default_region: str = "default"
    default_service_point: str = "central"
    regions: dict[str, RegionConfig] = Field(default_factory=dict)
    sites: dict[str, SiteConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_regions(self) -> RoutingConfig:
        for site, cfg in self.sites.items():
            if self.regions and cfg.region not in self.regions:
                raise ValueError(
                    f"sites.{site}.region: expected one of {sorted(self.regions)} "
                    f"(found: {cfg.region!r})"
                )
        return self

    def route(self, site: str) -> tuple[str, str]:
        """A site's region and service point."""
        region = self.sites[site].region if site in self.sites else self.default_region
        point = self.regions[region].service_point if region in self.regions else None
        return region, point or self.default_service_point


class MaintenanceConfig(StrictModel):
    site: str
    device_id: str | None = None
    starts_at: datetime
    ends_at: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _order(self) -> MaintenanceConfig:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("starts_at and ends_at need a UTC offset, e.g. 2025-01-01T08:00:00Z")
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class WebhookConfig(StrictModel):
    name: str = Field(pattern=ID_PATTERN)
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, min_length=16)
    secret_file: Path | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=25, ge=1)
    backoff_min_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    poll_interval_s: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookConfig:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret or secret_file")
        return self

    def secret_bytes(self) -> bytes:
        if self.secret is not None:
            return self.secret.encode()
        assert self.secret_file is not None
        return self.secret_file.read_text().strip().encode()


class CenterConfig(StrictModel):
    center: CenterSection = Field(default_factory=CenterSection)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    tickets: TicketsConfig = Field(default_factory=TicketsConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    disturbance: DisturbanceConfig = Field(default_factory=DisturbanceConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)

    @model_validator(mode="after")
    def _unique_names(self) -> CenterConfig:
        names = [w.name for w in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError("webhooks: names must be unique")
        return self

    @property
    def state_dir(self) -> Path:
        return self.center.state_dir.expanduser()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.state_dir / 'center.sqlite'}"

    def criticality(self, site: str, device_id: str | None) -> Criticality:
        for dev in self.devices:
            if dev.site == site and dev.device_id == device_id:
                return dev.criticality
        return "normal"


def parse_config(data: dict[str, Any], file: str = "<config>") -> CenterConfig:
    return validate(CenterConfig, data, file)


def load_config(path: Path) -> CenterConfig:
    return parse_config(read_toml(path), str(path))
