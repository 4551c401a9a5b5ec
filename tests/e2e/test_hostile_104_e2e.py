"""One hostile IEC 104 relay beside the seed substation, against the agent as a process.

The hostile relay (`simulator.relays.iec104.raw_outstation.RawOutstation`) sends the frame that
segfaults c104 2.2.1, then fuzzed ASDUs, then an ordinary event, while the seed scenario plays on
three c104 relays. The agent must live through it, confirm every hostile frame once stored, and
forward everything: the seed's events, the hostile relay's event and its malformed frame as raw
data.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway import wire
from simulator.harness.agent_config import agent_config
from simulator.harness.fuzz104 import fuzzed_asdus
from simulator.relays.iec104.raw_outstation import RawOutstation, single_point_tb
from simulator.runner import ScenarioRunner
from simulator.scenario import Scenario
from tests.support.agent_process import AgentProcess
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto

from ..protocols.iec104.helpers import free_port

CRASHES_C104 = bytes.fromhex("01ff0300070001000001")  # SQ=1, 127 objects declared, 1 sent
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def events_of(collector: Collector, device_id: str) -> list[wire.Event]:
    return [e for e in collector.of_kind("event") if e.device_id == device_id]


async def test_the_agent_outlives_a_hostile_relay_and_forwards_everything(
    tmp_path: Path, mosquitto: Mosquitto, seed: Scenario
) -> None:
    runner = ScenarioRunner(seed, progress=lambda line: None)
    await runner.start()
    hostile = await RawOutstation(free_port(), common_address=7).start()
    config: dict[str, Any] = agent_config(
        seed, runner.relays, site="north", gateway_id="gw-north-1",
        state_dir=tmp_path / "state", broker=(mosquitto.host, mosquitto.port),
    )  # fmt: skip
    config["devices"].append(
        {"id": "hostile", "protocol": "iec104", "profile": "line-protection",
         "host": "127.0.0.1", "port": hostile.port, "common_address": 7}
    )  # fmt: skip
    agent = AgentProcess(tmp_path / "agent", config)
    collector = Collector(mosquitto.host, mosquitto.port)
    await collector.__aenter__()
    agent.start()
    try:
        await runner.wait_for_clients(3, timeout_s=60)
        await asyncio.wait_for(hostile.started.wait(), 60)
        await hostile.send_asdu(CRASHES_C104)
        await hostile.send_many(fuzzed_asdus(seed=7, count=2_000, ca=7))
        await hostile.send_asdu(single_point_tb(7, 1001, True, T0))
        await runner.play()
        played = [p for p in runner.played if p.step.action == "point"]
        await hostile.wait_all_acked(wait_s=60)

        def arrived(c: Collector) -> bool:
            seed_events = [e for e in c.of_kind("event") if e.device_id != "hostile"]
            hostile_raw = {e.details.get("raw") for e in events_of(c, "hostile")}
            return (
                len({(e.device_id, e.address, e.device_time) for e in seed_events
                     if e.cause == "spontaneous"}) >= len(played)
                and CRASHES_C104.hex() in hostile_raw
                and any(e.address == "1001" and e.device_time == T0
                        for e in events_of(c, "hostile"))
            )  # fmt: skip

        try:
            await collector.wait_for(arrived, timeout=90, what="every relay's events")
        except AssertionError:
            print(agent.log()[-6000:])
            raise
        assert agent.proc is not None
        assert agent.proc.poll() is None, "the agent died"
        assert hostile.connections == 1
        assert not hostile.unacked
    finally:
        agent.stop()
        await collector.__aexit__(None, None, None)
        await hostile.close()
        await runner.stop()
