"""Explicit registry of simulated relays per protocol: name -> factory(spec, profile)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from profiles.model import Profile
from simulator.relays.base import SimulatedRelay
from simulator.scenario import RelaySpec

Factory = Callable[[RelaySpec, Profile], SimulatedRelay]


def _load() -> dict[str, Factory]:
    factories: dict[str, Factory] = {}
    # One entry per protocol (explicit on purpose); each module exposes `make_relay`.
    for name, module in (
        ("iec104", "simulator.relays.iec104.relay"),
        ("modbus", "simulator.relays.modbus.relay"),
        ("iec103", "simulator.relays.iec103.relay"),
    ):
        try:
            mod: Any = __import__(module, fromlist=["make_relay"])
        except ModuleNotFoundError as exc:  # pragma: no cover - while being written
            if exc.name != module:
                raise
            continue
        factories[name] = mod.make_relay
    return factories


def factory(protocol: str) -> Factory:
    factories = _load()
    if protocol not in factories:
        raise KeyError(f"no simulator for protocol {protocol!r} (have {sorted(factories)})")
    return factories[protocol]
