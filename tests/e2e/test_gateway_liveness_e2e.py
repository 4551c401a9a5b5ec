"""The agent (a real process) and the center (its real service) through a real Mosquitto:
a clean stop takes the gateway offline at the center, an idle agent comes back after its
broker is SIGKILLed, and a filling outbox opens and resolves an `outbox_near_cap` ticket.

The relay is the load generator's IEC 104 outstation (c104), which sends only when told."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from center.config import parse_config
from center.server import CenterService
from simulator.relays.iec104.load import LoadGenerator
from tests.center.mqtt_support import eventually
from tests.support.agent_process import AgentProcess
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto, free_port

GATEWAY = "gw-north-1"


def profile_text(points: int) -> str:
    lines = ['[profile]\nname = "load-status"\nprotocol = "iec104"\n']
    for ioa in range(1, points + 1):
        lines.append(f'[[points]]\naddress = "{ioa}"\nname = "p{ioa}"\nkind = "status"\n')
    return "\n".join(lines)


def outbox_records(c: Collector) -> list[Any]:
    return [r for r in c.records if r.kind not in ("birth", "death", "health")]


@dataclass
class Plant:
    broker: Mosquitto
    center: CenterService
    agent: AgentProcess
    relay: LoadGenerator

    def value(self, sql: str, **params: Any) -> Any:
        with self.center.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.center.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def online(self) -> bool | None:
        found = self.value("SELECT online FROM gateways WHERE gateway_id = :g", g=GATEWAY)
        return None if found is None else bool(found)

    async def until(self, check: Any, what: str, timeout: float = 60) -> Any:
        try:
            return await eventually(check, timeout, what)
        except AssertionError:
            print(self.agent.log()[-6000:])
            raise


def relay_and_agent(
    tmp_path: Path, mqtt: Mosquitto, health_interval_s: float = 3600.0, **sections: Any
) -> tuple[LoadGenerator, AgentProcess]:
    """A started load relay (20 status points) and an agent for it, not started yet;
    `sections` add to the agent's config (e.g. `broker={...}`, `outbox={...}`)."""
    relay = LoadGenerator(1, free_port(), points=20, batch=20)
    relay.start()
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "load-status.toml").write_text(profile_text(20))
    broker_section = {"host": mqtt.host, "port": mqtt.port, "reconnect_min_s": 0.2,
                      "reconnect_max_s": 1.0, **sections.pop("broker", {})}  # fmt: skip
    agent = AgentProcess(tmp_path / "agent", {
        # health records only every hour unless a test asks: then nothing but the fix under
        # test can tell the center
        "agent": {"site": "north", "gateway_id": GATEWAY, "state_dir": str(tmp_path / "state"),
                  "profile_dirs": [str(profiles)], "health_interval_s": health_interval_s},
        "broker": broker_section,
        "devices": [{"id": "line1", "protocol": "iec104", "profile": "load-status",
                     "host": "127.0.0.1", "port": relay.relays[0].port, "common_address": 1}],
        **sections,
    })  # fmt: skip
    return relay, agent


@contextlib.asynccontextmanager
async def running_plant(
    tmp_path: Path,
    broker: Mosquitto,
    outbox_cap: int = 1_000_000,
    start_agent: bool = True,
    health_interval_s: float = 3600.0,
) -> AsyncIterator[Plant]:
    config = parse_config({
        "center": {"instance": "liveness-test", "state_dir": str(tmp_path / "center")},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "center-e2e",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "api": {"enabled": False},
        "tickets": {"tick_interval_s": 0.2, "auto_resolve_overrides": {"outbox_near_cap": 0}},
    })  # fmt: skip
    center = await asyncio.to_thread(CenterService, config)
    stop = asyncio.Event()
    serving = asyncio.create_task(center.run(stop))
    await eventually(lambda: center.mqtt_status["subscribed"], 30, "center subscribed")
    relay, agent = relay_and_agent(
        tmp_path, broker, health_interval_s, outbox={"max_records": outbox_cap}
    )
    if start_agent:
        agent.start()
    try:
        yield Plant(broker, center, agent, relay)
    finally:
        agent.stop()
        relay.stop()
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 15)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stopped_agent_is_offline_at_the_center_with_its_death_record(
    tmp_path: Path, killable_mosquitto: Mosquitto, stop: signal.Signals
) -> None:
    broker = killable_mosquitto
    async with running_plant(tmp_path, broker) as plant:
        await plant.until(plant.online, "gateway online at the center")
        assert plant.agent.proc is not None
        stopped = time.monotonic()
        plant.agent.proc.send_signal(stop)
        await plant.until(lambda: plant.online() is False, "gateway offline at the center")
        print(f"offline at the center {time.monotonic() - stopped:.2f} s after {stop.name}")
        assert plant.agent.proc.wait(15) == 0
        (death,) = plant.rows("SELECT body FROM lifecycle WHERE kind = 'death'")
        assert json.loads(death["body"])["reason"] == "shutdown"
        site = "SELECT subject, state FROM tickets WHERE fault_class = 'site_comms'"
        assert [dict(t) for t in plant.rows(site)] == [{"subject": f"@{GATEWAY}", "state": "open"}]
        log = plant.agent.log()
        assert "death record acknowledged" in log
        assert "will covers it" not in log


async def test_an_idle_agent_reconnects_after_its_broker_is_killed(
    tmp_path: Path, killable_mosquitto: Mosquitto
) -> None:
    broker = killable_mosquitto
    async with (
        Collector(broker.host, broker.port) as sub,
        running_plant(tmp_path, broker) as plant,
    ):
        await sub.wait_for(lambda c: len(c.of_kind("birth")) == 1, what="first birth")
        # the interrogation after connect: 20 points, then the relay says nothing more
        await sub.wait_for(lambda c: len(outbox_records(c)) >= 20, what="interrogation")
        last_seq = max(r.seq for r in outbox_records(sub))
        broker.kill()  # no traffic before, none after: only the agent's own watch can tell
        broker.start()  # the same port
        await sub.wait_for(lambda c: len(c.of_kind("birth")) >= 2, timeout=60, what="new birth")
        births = sub.of_kind("birth")
        assert births[-1].session == births[0].session  # the same process reconnected
        assert births[-1].connection > births[0].connection
        assert births[-1].seq == last_seq  # no record was made meanwhile: it was idle
        await plant.until(plant.online, "gateway online at the center after the restart")


async def test_a_gateway_silent_while_its_broker_is_dead_gets_a_ticket_cleared_on_return(
    tmp_path: Path, killable_mosquitto: Mosquitto
) -> None:
    broker = killable_mosquitto
    async with running_plant(tmp_path, broker, health_interval_s=1.0) as plant:
        await plant.until(plant.online, "gateway online at the center")
        broker.kill()  # the will dies with the broker: only silence can tell
        silent = "SELECT silent_since FROM gateways WHERE gateway_id = :g"
        await plant.until(lambda: plant.value(silent, g=GATEWAY), "gateway found silent", 30)
        assert plant.online() is False
        site = "SELECT condition_active FROM tickets WHERE fault_class = 'site_comms'"
        assert [bool(t["condition_active"]) for t in plant.rows(site)] == [True]
        broker.start()
        await plant.until(plant.online, "gateway online again")
        await plant.until(lambda: not plant.rows(site)[0]["condition_active"], "cleared")
        assert plant.value(silent, g=GATEWAY) is None


async def test_a_filling_outbox_opens_an_outbox_near_cap_ticket_that_resolves_once_drained(
    tmp_path: Path, killable_mosquitto: Mosquitto
) -> None:
    broker = killable_mosquitto
    async with running_plant(tmp_path, broker, outbox_cap=1000, start_agent=False) as plant:
        broker.stop()  # the agent collects with nowhere to send
        plant.agent.start()
        await plant.relay.wait_for_clients()
        await plant.relay.run(rate=500, duration_s=2.4)  # 1,200 events for a cap of 1,000
        await plant.until(lambda: "outbox near its cap" in plant.agent.log(), "raised", 30)
        broker.start()
        tickets = "SELECT id, state FROM tickets WHERE fault_class = 'outbox_near_cap'"
        await plant.until(lambda: plant.rows(tickets + " AND state = 'resolved'"), "resolved")
        (ticket,) = plant.rows(tickets)
        timeline = plant.rows(
            "SELECT entry, summary FROM ticket_timeline WHERE ticket_id = :t ORDER BY id",
            t=ticket["id"],
        )
        summaries = " | ".join(r["summary"] for r in timeline)
        assert "outbox near its cap" in summaries
        assert "outbox drained" in summaries
        alarms = plant.rows(
            "SELECT body FROM records WHERE kind = 'alarm' AND code = 'outbox_near_cap' "
            "ORDER BY seq"
        )
        states = [json.loads(a["body"])["state"] for a in alarms]
        assert states == ["raised", "cleared"]
        # the backlog that raised it got through
        assert plant.value("SELECT count(*) FROM records WHERE kind = 'event'") >= 900
