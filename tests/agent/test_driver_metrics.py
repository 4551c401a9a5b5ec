"""Every protocol's driver counters reach the agent's `/metrics`, per device: decode errors,
timeouts and restarts under one name for all three protocols (the alert rules in
docs/operations.md), and they keep counting across a link restart.

Each test runs the agent as a process against real relays' stacks: a raw IEC 104
outstation (it can send a bad time tag and ignore an interrogation), a hostile Modbus RTU
server, and the simulated IEC 103 relays on a pty."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.raw104_sender import C_IC_NA_1, COT_SPONT, M_SP_TB_1, Station
from protocols.profile_loader import load_named
from simulator.relays.iec103.relay import make_relay as make_103_relay
from simulator.relays.modbus.image import RegisterImage
from simulator.scenario import IdentitySpec, RelaySpec
from tests.protocols.modbus.hostile import HostileRtuServer
from tests.support.agent_process import AgentProcess
from tests.support.metrics import Samples, scrape, value
from tests.support.mosquitto import free_port


def agent_config(tmp_path: Path, metrics_port: int, **tables: Any) -> dict[str, Any]:
    return {
        "agent": {"site": "north", "gateway_id": "gw-metrics", "state_dir": str(tmp_path / "st")},
        "broker": {"host": "127.0.0.1", "port": free_port()},  # none: metrics need no broker
        "supervision": {"backoff_min_s": 0.2, "backoff_max_s": 0.5},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        **tables,
    }


async def until_metrics(
    port: int, agent: AgentProcess, what: str, check: Callable[[Samples], bool]
) -> Samples:
    deadline = time.monotonic() + 60
    while True:
        try:
            samples = scrape(port)
            if check(samples):
                return samples
        except OSError:
            samples = {}
        if time.monotonic() > deadline:
            print(agent.log()[-4000:])
            raise AssertionError(f"metrics never showed {what}: {sorted(samples)[:80]}")
        await asyncio.sleep(0.1)


def count(samples: Samples, name: str, device_id: str) -> float:
    found = value(samples, f"relay_agent_device_{name}_total", device=device_id)
    return -1.0 if found is None else found


class HostileStation(Station):
    """The raw 104 outstation, able to send an event whose time tag is invalid and to
    leave a general interrogation unanswered."""

    answer_interrogation = True

    def _on_apdu(self, body: bytes) -> None:
        if body[0] & 0x01 == 0 and body[4] == C_IC_NA_1 and not self.answer_interrogation:
            self.vr = (self.vr + 2) % 65536
            self._ack_from(body)
            self._send_s()
            return
        super()._on_apdu(body)

    def send_bad_time(self) -> None:
        """M_SP_TB_1 at IOA 1 whose CP56Time2a says 65,535 milliseconds."""
        cp56 = struct.pack("<HBBBBB", 0xFFFF, 1, 1, 1, 1, 26)
        ioa = struct.pack("<I", 1)[:3]
        head = bytes([M_SP_TB_1, 1, COT_SPONT, 0]) + struct.pack("<H", self.ca)
        self._send_asdu(head + ioa + b"\x01" + cp56)

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def test_iec104_decode_errors_timeouts_and_restarts_per_device(tmp_path: Path) -> None:
    station = HostileStation(0, free_port(), points=4)
    server = await station.serve()
    port = free_port()
    device = {
        "id": "line1", "protocol": "iec104", "profile": "line-protection",
        "host": "127.0.0.1", "port": station.port, "common_address": station.ca,
        "interrogation_timeout_s": 1.0, "command_timeout_ms": 20_000,
    }  # fmt: skip
    agent = AgentProcess(tmp_path / "agent", agent_config(tmp_path, port, devices=[device]))
    agent.start()
    try:
        await until_metrics(port, agent, "line1 up", lambda s: bool(
            value(s, "relay_agent_link_up", device="line1") == 1))  # fmt: skip
        station.send_bad_time()
        await until_metrics(port, agent, "a decode error",
                            lambda s: count(s, "decode_errors", "line1") == 1)  # fmt: skip
        station.answer_interrogation = False
        station.drop()  # the agent reconnects, and its interrogation is never answered
        samples = await until_metrics(port, agent, "a timeout and two restarts", lambda s: (
            count(s, "timeouts", "line1") >= 1 and count(s, "restarts", "line1") >= 2))  # fmt: skip
        # The decode error of the first connection outlives both restarts.
        assert count(samples, "decode_errors", "line1") == 1
        labels = {"device": "line1", "protocol": "iec104"}
        assert value(samples, "relay_agent_device_timeouts_total", **labels) is not None
        received = value(samples, "relay_agent_driver_counter_total", device="line1",
                         counter="objects_received")  # fmt: skip
        assert received is not None
        assert received >= 1
    finally:
        agent.stop()
        station.drop()
        server.close()


def _modbus_image() -> RegisterImage:
    section = load_named("feeder-protection-modbus").section
    image = RegisterImage(section)  # type: ignore[arg-type]
    image.write("holding", 0, list(range(1, 41)))
    return image


async def test_modbus_counters_per_device_on_a_shared_bus(tmp_path: Path) -> None:
    server = HostileRtuServer(_modbus_image(), unit=5)
    server.cycle = ("good", "bad_crc", "good", "wrong_byte_count", "good", "trailing_garbage")
    server_port = await server.start()
    port = free_port()
    bus = {"id": "rs485", "port": f"socket://127.0.0.1:{server_port}", "timeout_ms": 200}
    fast = {"events_interval_s": 0.1, "status_interval_s": 0.1, "timeout_ms": 200,
            "backoff_min_s": 0.1, "backoff_max_s": 0.3}  # fmt: skip
    devices = [
        {"id": f"f{unit}", "protocol": "modbus", "profile": "feeder-protection-modbus",
         "transport": "rtu", "bus": "rs485", "unit_id": unit, **fast}
        for unit in (5, 9)  # unit 9 is not on the bus: every request times out
    ]  # fmt: skip
    agent = AgentProcess(
        tmp_path / "agent", agent_config(tmp_path, port, buses=[bus], devices=devices)
    )
    agent.start()
    try:
        samples = await until_metrics(port, agent, "f5's decode errors, f9's timeouts", lambda s: (
            count(s, "decode_errors", "f5") >= 3 and count(s, "timeouts", "f9") >= 3))  # fmt: skip
        assert count(samples, "timeouts", "f5") == 0  # f5 answers, badly: not a timeout
        assert count(samples, "decode_errors", "f9") == 0
        for counter in ("bad_crc", "wrong_byte_count", "trailing_garbage"):
            found = value(samples, "relay_agent_driver_counter_total", device="f5",
                          counter=counter)  # fmt: skip
            assert found is not None, counter
            assert found >= 1, counter
        errors = count(samples, "decode_errors", "f5")
        server.drop_connections()  # the link restarts; the counts carry on from there
        samples = await until_metrics(port, agent, "a restart", lambda s: (
            count(s, "restarts", "f5") >= 1 and count(s, "restarts", "f9") >= 1))  # fmt: skip
        assert count(samples, "decode_errors", "f5") >= errors
    finally:
        agent.stop()
        await server.stop()


async def test_iec103_counters_per_relay_and_a_relay_restarted_alone(tmp_path: Path) -> None:
    profile = load_named("line-protection-103")
    bus_path = str(tmp_path / "rs485")
    relays = {}
    for la in (1, 2):
        spec = RelaySpec(
            id=f"relay{la}", protocol="iec103", profile="line-protection-103",
            link={"port": bus_path, "link_address": la, "common_address": la},
            identity=IdentitySpec(manufacturer="DEMO", firmware_version="V4.7"),
        )  # fmt: skip
        relays[spec.id] = make_103_relay(spec, profile)
        await relays[spec.id].start()
    port = free_port()
    bus = {"id": "rs485", "port": bus_path, "baudrate": 19200, "timeout_ms": 150}
    devices = [
        {"id": f"relay{la}", "protocol": "iec103", "profile": "line-protection-103",
         "bus": "rs485", "link_address": la, "common_address": la, "poll_interval_ms": 50,
         "offline_retry_s": 0.3}
        for la in (1, 2)
    ]  # fmt: skip
    agent = AgentProcess(
        tmp_path / "agent", agent_config(tmp_path, port, buses=[bus], devices=devices)
    )
    agent.start()
    try:
        await until_metrics(port, agent, "both relays up", lambda s: all(
            value(s, "relay_agent_link_up", device=d) == 1 for d in relays))  # fmt: skip
        relay1, relay2 = relays["relay1"], relays["relay2"]
        relay1.queue_raw(bytes([1, 0x81, 1, 1, 128, 201, 2]), "malformed")  # ASDU 1, short
        relay1.ignore_next = 2  # two requests lost on the line: timeouts, then retries
        await relay2.set_online(False)
        await until_metrics(port, agent, "relay2 down", lambda s: (
            value(s, "relay_agent_link_up", device="relay2") == 0))  # fmt: skip
        await relay2.set_online(True)
        samples = await until_metrics(port, agent, "relay1's errors, relay2's restart", lambda s: (
            count(s, "decode_errors", "relay1") == 1 and count(s, "timeouts", "relay1") >= 2
            and count(s, "restarts", "relay2") == 1))  # fmt: skip
        assert count(samples, "restarts", "relay1") == 0  # the bus ran on: only relay2 restarted
        assert count(samples, "decode_errors", "relay2") == 0
        garbage = value(samples, "relay_agent_bus_counter_total", counter="bad_frames")
        assert garbage is not None
    finally:
        agent.stop()
        for relay in relays.values():
            await relay.stop()
