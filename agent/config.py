"""The agent's config: one TOML file, validated into typed models before any port opens.

    [agent]
    site = "north-220kv"
    gateway_id = "gw-north-1"
    state_dir = "/var/lib/relay-agent"

    [broker]
    host = "127.0.0.1"
    port = 1883

    [[buses]]                      # serial buses shared by several devices (103, Modbus RTU)
    id = "rs485-1"
    port = "/dev/ttyS1"

    [[devices]]
    id = "line1"
    protocol = "iec104"            # selects the protocol's own keys (see its README)
    profile = "line-protection"
    host = "10.0.0.11"
    common_address = 1

See docs/configuration.md for every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.disturbance import DEFAULT_CHUNK_BYTES
from agent.snapshot_intervals import SnapshotIntervals
from common.config import ID_PATTERN, StrictModel
from common.errors import ConfigError
from common.tls_config import BrokerTls
from common.validation import describe, read_toml
from gateway import wire
from profiles.model import Profile
from protocols import registry
from protocols.config import DeviceBase, SerialBusConfig
from protocols.profile_loader import load_named


class AgentSection(StrictModel):
    site: str = Field(pattern=ID_PATTERN)
    gateway_id: str = Field(pattern=ID_PATTERN)
    state_dir: Path = Path("/var/lib/relay-agent")
    profile_dirs: list[Path] = Field(default_factory=list)
    health_interval_s: float = Field(default=60.0, gt=0)


TlsConfig = BrokerTls  # shared with the center: one spelling, one meaning
# A disturbance chunk's record: its content in base64, plus its fields and the envelope.
MIN_MESSAGE_BYTES = 4 * (DEFAULT_CHUNK_BYTES // 3 + 1) + 4096


class BrokerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    client_id: str | None = None  # default: the gateway id
    username: str | None = None
    password_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5)
    # "5" lets a refused publish (ACL) say so in its PUBACK; "3.1.1" is for brokers that
    # speak nothing newer (the demo's embedded broker). See docs/operations.md.
    mqtt_version: Literal["5", "3.1.1"] = "5"
    tls: TlsConfig | None = None
    max_records_per_message: int = Field(default=200, ge=1, le=wire.MAX_RECORDS_PER_MESSAGE)
    # Messages are packed under this many bytes; the center rejects anything over
    # wire.MAX_PAYLOAD_BYTES, so more is refused. Lower it only for a broker whose
    # message_size_limit is lower; a disturbance chunk must still fit.
    max_message_bytes: int = wire.MAX_PAYLOAD_BYTES
    max_in_flight: int = Field(default=8, ge=1, le=10)
    # End-to-end acknowledgements (docs/wire.md): records sent and not yet acknowledged by
    # the center, at most; and how long without an acknowledgement before they are sent
    # again (doubling while none comes).
    max_unacked_records: int = Field(default=10_000, ge=1)
    ack_timeout_s: float = Field(default=30.0, gt=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)

    @field_validator("max_message_bytes")
    @classmethod
    def _message_fits(cls, value: int) -> int:
        if value > wire.MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"expected at most {wire.MAX_PAYLOAD_BYTES} bytes, the center's limit "
                f"(it rejects larger messages)"
            )
        if value < MIN_MESSAGE_BYTES:
            raise ValueError(
                f"expected at least {MIN_MESSAGE_BYTES} bytes, so that a disturbance "
                f"record chunk fits in one message"
            )
        return value


class OutboxConfig(StrictModel):
    path: Path | None = None  # default: state_dir/outbox.sqlite
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Both caps bind (docs/operations.md, "Outbox"): keep max_bytes well under the free
    # space of the state directory's filesystem, so the cap evicts before the disk fills.
    max_records: int = Field(default=1_000_000, ge=1000)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=16 * wire.MAX_PAYLOAD_BYTES)


class SupervisionConfig(StrictModel):
    backoff_min_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)


class ControlConfig(StrictModel):
    socket: Path | None = None  # default: state_dir/control.sock
    # On-demand polls (local and remote) give up after this long; see docs/polling.md.
    poll_timeout_s: float = Field(default=20.0, gt=0, le=600)


class RemoteConfig(StrictModel):
    """Remote on-demand polls from the center over MQTT (docs/polling.md). Off by default:
    enabling it means accepting read requests signed with a token from `tokens_file`."""

    enabled: bool = False
    tokens_file: Path | None = None  # lines "name:token"; required when enabled
    max_concurrent: int = Field(default=4, ge=1, le=64)
    max_queued: int = Field(default=16, ge=1, le=1000)

    @model_validator(mode="after")
    def _tokens_when_enabled(self) -> RemoteConfig:
        if self.enabled and self.tokens_file is None:
            raise ValueError("enabled = true needs tokens_file")
        return self


class MetricsConfig(StrictModel):
    listen: str | None = None  # "127.0.0.1:9108"; off when unset


def _device_union() -> Any:
    models = tuple(spec.device_model for spec in registry.protocols().values())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="protocol")]  # noqa: UP007


class AgentConfig(BaseModel):
    """The validated config; `devices` are the protocol-specific models."""

    model_config = {"extra": "forbid", "frozen": True, "arbitrary_types_allowed": True}
    agent: AgentSection
    broker: BrokerConfig = BrokerConfig()
    outbox: OutboxConfig = OutboxConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    control: ControlConfig = ControlConfig()
    remote: RemoteConfig = RemoteConfig()
    metrics: MetricsConfig = MetricsConfig()
    snapshots: SnapshotIntervals = SnapshotIntervals()
    buses: list[SerialBusConfig] = Field(default_factory=list)
    devices: list[DeviceBase] = Field(default_factory=list)

    @property
    def outbox_path(self) -> Path:
        return self.outbox.path or self.agent.state_dir / "outbox.sqlite"

    @property
    def control_socket(self) -> Path:
        return self.control.socket or self.agent.state_dir / "control.sock"


class LoadedConfig:
    """A config with every device's profile loaded and checked."""

    def __init__(self, config: AgentConfig, profiles: dict[str, Profile], source: Path) -> None:
        self.config = config
        self.profiles = profiles
        self.source = source


def parse_config(data: dict[str, Any], file: str) -> AgentConfig:
    devices_raw = data.get("devices", [])
    rest = {k: v for k, v in data.items() if k != "devices"}
    problems: list[str] = []
    try:
        config = AgentConfig.model_validate({**rest, "devices": []})
    except ValidationError as exc:
        problems.extend(describe(exc))
        config = None
    specs = registry.protocols()
    adapter: TypeAdapter[Any] = TypeAdapter(list[_device_union()])  # type: ignore[arg-type,misc]
    devices: list[DeviceBase] = []
    if not isinstance(devices_raw, list):
        problems.append(f"devices: expected an array of tables (found: {devices_raw!r})")
    else:
        unavailable = _unavailable_protocols(devices_raw)
        problems.extend(unavailable)
        try:
            devices = adapter.validate_python(devices_raw) if not unavailable else []
        except ValidationError as exc:
            problems.extend(describe(exc, frozenset(specs), prefix="devices"))
    if problems or config is None:
        raise ConfigError(file, problems)
    devices = [config.snapshots.apply(d) for d in devices]
    return config.model_copy(update={"devices": devices})


def _unavailable_protocols(devices_raw: list[Any]) -> list[str]:
    """Devices naming a protocol this install offers but cannot import (a missing stack):
    said as such, rather than as a protocol name that is not allowed."""
    problems = []
    for i, raw in enumerate(devices_raw):
        name = raw.get("protocol") if isinstance(raw, dict) else None
        message = registry.unavailable_message(name) if isinstance(name, str) else None
        if message is not None:
            problems.append(f"devices[{i}].protocol: {message}")
    return problems


def certificate_cn(path: Path) -> str | None:
    """The subject CN of a PEM certificate (the broker's user name for this gateway)."""
    import ssl

    # The stdlib's only PEM decoder without a third-party dependency; private but stable.
    decoded = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]  # noqa: SLF001
    for rdn in decoded.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def check_tls(config: AgentConfig) -> list[str]:
    """The broker maps the certificate CN to the user name its ACL checks against the
    gateway id in every topic: a mismatch would have every publish refused."""
    tls = config.broker.tls
    if tls is None:
        return []
    problems = [
        f"broker.tls.{key}: file not found (found: {str(path)!r})"
        for key, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file),
                          ("key_file", tls.key_file))
        if not path.is_file()
    ]  # fmt: skip
    if tls.cert_file.is_file():
        try:
            cn = certificate_cn(tls.cert_file)
        except (OSError, ValueError) as exc:
            return [*problems, f"broker.tls.cert_file: not a PEM certificate ({exc})"]
        if cn != config.agent.gateway_id:
            problems.append(
                f"broker.tls.cert_file: expected a certificate for CN "
                f"{config.agent.gateway_id!r} (agent.gateway_id) (found: CN {cn!r})"
            )
    return problems


def check_references(config: AgentConfig, file: str) -> dict[str, Profile]:
    """Cross-field rules: unique ids, buses exist, profiles load and match protocols,
    the TLS certificate belongs to this gateway."""
    problems: list[str] = check_tls(config)
    problems += _check_secret_files(config)
    problems += _check_buses(config)
    problems += _check_devices(config)
    problems += _check_links(config)
    profiles = _load_profiles(config, problems)
    if problems:
        raise ConfigError(file, problems)
    return profiles


def _check_secret_files(config: AgentConfig) -> list[str]:
    problems: list[str] = []
    for key, secret in (
        ("broker.password_file", config.broker.password_file),
        ("remote.tokens_file", config.remote.tokens_file),
    ):
        if secret is not None and not secret.is_file():
            problems.append(f"{key}: file not found (found: {str(secret)!r})")
    return problems


def _check_buses(config: AgentConfig) -> list[str]:
    """Unique bus ids, and one protocol per bus."""
    problems: list[str] = []
    bus_seen: set[str] = set()
    for i, declared in enumerate(config.buses):
        if declared.id in bus_seen:
            problems.append(f"buses[{i}].id: duplicate bus id (found: {declared.id!r})")
        bus_seen.add(declared.id)
    bus_protocols: dict[str, set[str]] = {}
    for dev in config.devices:
        if (bus_id := getattr(dev, "bus", None)) is not None:
            bus_protocols.setdefault(bus_id, set()).add(str(getattr(dev, "protocol")))  # noqa: B009
    for bus_id, protocols in sorted(bus_protocols.items()):
        if len(protocols) > 1:
            problems.append(
                f"buses: expected one protocol per serial bus, as one driver owns the port "
                f"(found: bus {bus_id!r} used by {', '.join(sorted(protocols))})"
            )
    return problems


def _check_devices(config: AgentConfig) -> list[str]:
    """Unique device ids, and each device's bus declared."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, dev in enumerate(config.devices):
        if dev.id in seen:
            problems.append(f"devices[{i}].id: duplicate device id (found: {dev.id!r})")
        seen.add(dev.id)
    bus_ids = [b.id for b in config.buses]
    for i, dev in enumerate(config.devices):
        bus = getattr(dev, "bus", None)
        if bus is not None and bus not in bus_ids:
            problems.append(f"devices[{i}].bus: expected one of {bus_ids} (found: {bus!r})")
    return problems


def _check_links(config: AgentConfig) -> list[str]:
    """The protocol's own rules for the devices that share one link."""
    links: dict[str, list[DeviceBase]] = {}
    for dev in config.devices:
        spec = registry.get(str(getattr(dev, "protocol")))  # noqa: B009
        links.setdefault(spec.link_key(dev), []).append(dev)
    problems: list[str] = []
    for devices in links.values():
        spec = registry.get(str(getattr(devices[0], "protocol")))  # noqa: B009
        if spec.check_link is not None:
            problems.extend(f"devices: {p}" for p in spec.check_link(devices))
    return problems


def _load_profiles(config: AgentConfig, problems: list[str]) -> dict[str, Profile]:
    """Each device's profile by device id; what fails to load or match is added to problems."""
    profiles: dict[str, Profile] = {}
    for i, dev in enumerate(config.devices):
        try:
            profile = load_named(dev.profile, list(config.agent.profile_dirs))
        except FileNotFoundError:
            problems.append(
                f"devices[{i}].profile: no such profile in {config.agent.profile_dirs or []} "
                f"or config/profiles (found: {dev.profile!r})"
            )
            continue
        except ConfigError as exc:
            problems.extend(f"devices[{i}].profile: {p}" for p in str(exc).splitlines())
            continue
        protocol = getattr(dev, "protocol", None)
        if profile.protocol != protocol:
            problems.append(
                f"devices[{i}].profile: expected a {protocol} profile "
                f"(found: {profile.name!r}, a {profile.protocol} profile)"
            )
        profiles[dev.id] = profile
    return profiles


def load_config(path: Path) -> LoadedConfig:
    file = str(path)
    config = parse_config(read_toml(path), file)
    profiles = check_references(config, file)
    return LoadedConfig(config, profiles, path)
