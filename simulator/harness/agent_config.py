"""An agent config for a running scenario: the `[[devices]]` and `[[buses]]` that read its
simulated relays. The demo and the end-to-end tests use it, so that one scenario file is
the single description of a simulated substation."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from simulator.relays.base import SimulatedRelay
from simulator.scenario import RelaySpec, Scenario


def _bus_id(port: str) -> str:
    return "bus-" + hashlib.sha1(port.encode()).hexdigest()[:8]


def _device(
    spec: RelaySpec, relay: SimulatedRelay | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    link = spec.link
    base: dict[str, Any] = {"id": spec.id, "protocol": spec.protocol, "profile": spec.profile}
    if spec.protocol == "iec104":
        return {
            **base,
            "host": link.get("host", "127.0.0.1"),
            "port": link["port"],
            "common_address": link["common_address"],
        }, None
    if spec.protocol == "modbus":
        unit = link.get("unit_id", 1)
        if link.get("transport", "tcp") == "tcp":
            device = {**base, "transport": "tcp", "host": link.get("host", "127.0.0.1")}
            return {**device, "port": link["port"], "unit_id": unit}, None
        port = str(link["port"])
        bus = {"id": _bus_id(port), "port": port, "baudrate": link.get("baudrate", 19200)}
        bus["parity"] = link.get("parity", "N")
        return {**base, "transport": "rtu", "bus": bus["id"], "unit_id": unit}, bus
    if spec.protocol == "iec103":
        port = str(getattr(relay, "device_path", None) or link["port"])
        bus = {"id": _bus_id(link["port"]), "port": port, "baudrate": 19200, "parity": "N"}
        device = {**base, "bus": bus["id"], "link_address": link["link_address"]}
        return {**device, "common_address": link["common_address"]}, bus
    raise ValueError(f"no agent mapping for protocol {spec.protocol!r}")


def agent_config(
    scenario: Scenario,
    relays: dict[str, SimulatedRelay],
    *,
    site: str,
    gateway_id: str,
    state_dir: Path,
    broker: tuple[str, int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A config dict for `agent.config.parse_config` reading every relay of `scenario`."""
    devices: list[dict[str, Any]] = []
    buses: dict[str, dict[str, Any]] = {}
    for spec in scenario.relays:
        device, bus = _device(spec, relays.get(spec.id))
        devices.append(device)
        if bus is not None:
            buses.setdefault(bus["id"], bus)
    config: dict[str, Any] = {
        "agent": {"site": site, "gateway_id": gateway_id, "state_dir": str(state_dir)},
        "broker": {"host": broker[0], "port": broker[1]},
        "supervision": {"backoff_min_s": 0.5, "backoff_max_s": 5.0},
        "buses": list(buses.values()),
        "devices": devices,
    }
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def to_toml(config: dict[str, Any]) -> str:
    """Write an agent config as TOML: top-level tables and arrays of tables, with nested
    tables inline. Enough for the configs made here; not a general TOML writer."""
    lines: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
            lines.append("")
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for item in value:
                lines.append(f"[[{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
                lines.append("")
        else:
            raise TypeError(f"{key}: top-level values are tables or arrays of tables")
    return "\n".join(lines)
