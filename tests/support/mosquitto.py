"""A real Mosquitto broker on a free loopback port, that a test can stop and restart. It
lives in `simulator/harness/broker.py`, shared with the demo and the benchmarks."""

from __future__ import annotations

from simulator.harness.broker import Mosquitto, free_port

__all__ = ["Mosquitto", "free_port", "mosquitto_binary"]


def mosquitto_binary() -> str:
    from simulator.harness.broker import mosquitto_binary as find

    found = find()
    if not found:
        raise RuntimeError("mosquitto is not installed: run scripts/setup")
    return found
