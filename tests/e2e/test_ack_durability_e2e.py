"""Durable before acknowledged, proved by killing the agent: whatever the relay was told
was received is at the broker after the next start.

The relay (`simulator.relays.iec104.raw_outstation.RawOutstation`) records each ASDU the agent
confirmed (`acked`) and sends again, on the next connection, what was not confirmed. The agent runs
as a process; during a burst of events it is SIGKILLed at a random moment, 20 times, and after each
restart every event whose I-frame was confirmed before must reach the broker (from the outbox)
before the next kill. The seed of the random moments is printed, so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.relays.iec104.raw_outstation import RawOutstation, single_point_tb
from tests.support.agent_process import AgentProcess
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto

from ..protocols.iec104.helpers import free_port

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KILLS = 20
BURST = 300  # events offered per round; the window (k = 12) paces them


def event(n: int) -> bytes:
    """Event n: point 1001 with a device time that names it (n ms after T0)."""
    return single_point_tb(1, 1001, n % 2 == 0, T0 + timedelta(milliseconds=n))


def at_broker(collector: Collector) -> set[datetime]:
    return {e.device_time for e in collector.of_kind("event") if e.address == "1001"}


def confirmed(relay: RawOutstation) -> set[datetime]:
    """Device times of the events whose I-frame the agent confirmed."""
    return {T0 + timedelta(milliseconds=int.from_bytes(b[10:12], "little")) for b in relay.acked}


def holds(owed: set[datetime], collector: Collector) -> bool:
    return owed <= at_broker(collector)


async def wait_connected(relay: RawOutstation, connections_before: int) -> None:
    """The restarted agent's connection, past STARTDT (not the killed one's)."""
    async with asyncio.timeout(60):
        # polled: the simulator has no event for "a new connection started"
        while not (relay.connections > connections_before and relay.started.is_set()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_every_confirmed_event_survives_a_sigkill(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    seed = random.randrange(1 << 32)
    print(f"kill moments: random.Random({seed})")
    moments = random.Random(seed)
    relay = await RawOutstation(free_port()).start()
    config: dict[str, Any] = {
        "agent": {"site": "north", "gateway_id": "gw-1", "state_dir": str(tmp_path / "state")},
        "broker": {"host": mosquitto.host, "port": mosquitto.port},
        "supervision": {"backoff_min_s": 0.2, "backoff_max_s": 1.0},
        "buses": [],
        "devices": [
            {"id": "line1", "protocol": "iec104", "profile": "line-protection",
             "host": "127.0.0.1", "port": relay.port, "common_address": 1},
        ],
    }  # fmt: skip
    agent = AgentProcess(tmp_path / "agent", config)
    collector = Collector(mosquitto.host, mosquitto.port)
    await collector.__aenter__()
    offered = 0
    try:
        for round_ in range(KILLS + 1):
            connections = relay.connections
            agent.start()
            await wait_connected(relay, connections)
            owed = confirmed(relay)  # confirmed before the last kill: must be at the broker
            await collector.wait_for(
                functools.partial(holds, owed),
                timeout=60,
                what=f"round {round_}: {len(owed - at_broker(collector))} confirmed events",
            )
            if round_ == KILLS:
                break
            burst = asyncio.create_task(
                relay.send_many(event(n) for n in range(offered, offered + BURST))
            )
            offered += BURST
            await asyncio.sleep(moments.uniform(0.0, 0.4))
            agent.kill()
            burst.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await burst
        await relay.wait_all_acked(wait_s=60)  # the last start takes what was left
        await collector.wait_for(functools.partial(holds, confirmed(relay)), timeout=60)
    except AssertionError:
        print(agent.log()[-6000:])
        raise
    finally:
        agent.stop()
        await collector.__aexit__(None, None, None)
        await relay.close()
    print(
        f"{len(relay.acked)} confirmed, {relay.sent} I-frames sent, {relay.connections} connections"
    )
    # The bursts really were cut short: some kills caught events unconfirmed in flight.
    assert relay.sent > len(relay.acked)
    assert len(confirmed(relay)) == len(relay.acked) > KILLS
