"""The agent's end-to-end proofs: relay (c104 server) -> agent process -> Mosquitto."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway import wire
from simulator.scenario import Scenario
from tests.e2e.conftest import Substation, with_steps

CA = {"line1": 1, "line2": 2, "busbar": 3}


def spontaneous(c: Any) -> list[wire.Event]:
    return [e for e in c.of_kind("event") if e.cause == "spontaneous"]


def by_id(records: list[Any]) -> dict[tuple[str, int, int], Any]:
    """Records by id; a duplicate delivery must carry exactly the same content."""
    out: dict[tuple[str, int, int], Any] = {}
    for r in records:
        if r.record_id in out:
            assert out[r.record_id] == r, f"two different records share id {r.record_id}"
        out[r.record_id] = r
    return out


async def test_every_event_of_the_seed_scenario_arrives_exactly_as_sent(
    substation_factory: Any, seed: Scenario
) -> None:
    scenario = with_steps(seed, [
        {"at_ms": 2300, "relay": "line2", "point": "self_check_fail", "value": True,
         "quality": ["NT", "SB"]},
        {"at_ms": 2350, "relay": "busbar", "point": "self_check_fail", "value": True,
         "quality": ["IV", "BL"]},
    ])  # fmt: skip
    sub: Substation = await substation_factory(scenario)
    await sub.wait_connected(3)
    await sub.wait_for(lambda c: len(c.of_kind("birth")) >= 1, "birth")
    await sub.runner.play()
    played = [p for p in sub.runner.played if p.step.action == "point"]
    await sub.wait_for(lambda c: len(by_id(spontaneous(c))) >= len(played), "all events")

    events = list(by_id(spontaneous(sub.collector)).values())
    assert len(events) == len(played)
    for p in played:
        matches = [e for e in events if e.device_id == p.relay and e.address == p.address
                   and e.device_time == p.device_time]  # fmt: skip
        assert len(matches) == 1, f"{p} arrived {len(matches)} times"
        event = matches[0]
        assert event.point == p.step.point
        assert event.quality == p.step.quality
        expected = p.step.value
        assert event.value == expected or (event.value in ("on", "off") and
                                           (event.value == "on") == bool(expected))  # fmt: skip
        assert event.site == "north"
        assert event.gateway_id == "gw-north-1"
        assert event.device_time_flags == []
    # Order per device is the order sent.
    for relay in CA:
        sent = [p.device_time for p in played if p.relay == relay]
        got = [e.device_time for e in events if e.device_id == relay]
        assert got == sent


async def test_broker_outage_mid_scenario_loses_nothing_and_keeps_order(
    substation_factory: Any, seed: Scenario
) -> None:
    steps = [
        {"at_ms": 3000 + 20 * n, "relay": ("line1", "line2")[n % 2], "point": "start",
         "value": n % 4 < 2}
        for n in range(120)
    ]  # fmt: skip
    sub: Substation = await substation_factory(with_steps(seed, steps))
    await sub.wait_connected(3)
    await sub.wait_for(lambda c: len(c.of_kind("birth")) >= 1, "birth")
    play = asyncio.create_task(sub.runner.play())
    await asyncio.sleep(3.6)
    sub.broker.stop()
    await asyncio.sleep(1.5)
    sub.broker.start()
    await play
    played = [p for p in sub.runner.played if p.step.action == "point"]
    await sub.wait_for(lambda c: len(by_id(spontaneous(c))) >= len(played), "all events", 90)
    events = sorted(by_id(spontaneous(sub.collector)).values(), key=lambda e: e.seq)
    for relay in CA:
        sent = [p.device_time for p in played if p.relay == relay]
        got = [e.device_time for e in events if e.device_id == relay]
        assert got == sent, f"{relay}: order or content differs"


async def test_agent_killed_while_events_flow_loses_nothing(
    substation_factory: Any, seed: Scenario
) -> None:
    steps = [
        {"at_ms": 3000 + 25 * n, "relay": ("line1", "line2", "busbar")[n % 3],
         "point": ("start", "start", "bf_init_phase_a")[n % 3], "value": n % 6 < 3}
        for n in range(150)
    ]  # fmt: skip
    sub: Substation = await substation_factory(with_steps(seed, steps))
    await sub.wait_connected(3)
    await sub.wait_for(lambda c: len(c.of_kind("birth")) >= 1, "birth")
    play = asyncio.create_task(sub.runner.play())
    await asyncio.sleep(4.0)
    sub.agent.kill()
    await asyncio.sleep(1.0)
    sub.agent.start()
    await play
    played = [p for p in sub.runner.played if p.step.action == "point"]
    await sub.wait_for(
        lambda c: {(e.device_id, e.address, e.device_time) for e in spontaneous(c)}
        >= {(p.relay, p.address, p.device_time) for p in played},
        "every event after the restart", 90,
    )  # fmt: skip
    records = spontaneous(sub.collector)
    by_id(records)  # duplicates, if any, carry the same id and content
    assert len({r.session for r in records}) == 2  # the restart began a new session


async def test_a_vanished_relay_raises_comms_lost_then_restored_then_fresh_interrogation(
    substation_factory: Any, seed: Scenario
) -> None:
    sub: Substation = await substation_factory(seed)
    await sub.wait_connected(3)
    await sub.wait_for(lambda c: len(c.of_kind("birth")) >= 1, "birth")
    await sub.runner.relays["busbar"].set_online(False)
    await sub.wait_for(
        lambda c: any(a.code == "comms_lost" and a.state == "raised" and a.device_id == "busbar"
                      for a in c.of_kind("alarm")), "comms lost",
    )  # fmt: skip
    await sub.runner.relays["busbar"].set_online(True)
    await sub.wait_for(
        lambda c: any(a.code == "comms_lost" and a.state == "cleared" and a.device_id == "busbar"
                      for a in c.of_kind("alarm")), "comms restored",
    )  # fmt: skip

    def interrogated_after_restore(c: Any) -> bool:
        restored = next(a for a in c.of_kind("alarm") if a.state == "cleared")
        return any(e.device_id == "busbar" and e.cause == "interrogated"
                   and e.seq > restored.seq and e.session == restored.session
                   for e in c.of_kind("event"))  # fmt: skip

    await sub.wait_for(interrogated_after_restore, "a fresh interrogation after restore")
    others = {a.device_id for a in sub.collector.of_kind("alarm")}
    assert others == {"busbar"}  # the other relays never lost comms
