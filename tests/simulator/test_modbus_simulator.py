"""The Modbus simulator driven by the scenario format: point steps fill the event ring or
set status bits, setting and firmware steps change registers, offline makes it silent."""

from __future__ import annotations

from datetime import UTC, datetime

from pymodbus.client import AsyncModbusTcpClient

from protocols.modbus import codec
from simulator.relays.modbus.relay import ModbusRelay, make_relay
from simulator.scenario import SCENARIOS_DIR, load_scenario


def _relays(port_tcp: int, port_rtu: int) -> dict[str, ModbusRelay]:
    scenario = load_scenario(SCENARIOS_DIR / "feeder-fault-modbus.toml")
    relays = {}
    for spec in scenario.relays:
        link = dict(spec.link)
        link["port"] = (
            port_tcp if link.get("transport") == "tcp" else f"socket://127.0.0.1:{port_rtu}"
        )
        relays[spec.id] = make_relay(
            spec.model_copy(update={"link": link}), scenario.profiles[spec.id]
        )
    return relays


async def test_scenario_steps_drive_the_registers() -> None:
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    relays = _relays(*ports)
    feeder7 = relays["feeder7"]
    profile = feeder7.profile
    await feeder7.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=ports[0], timeout=2, retries=0)
    try:
        assert await client.connect()
        when = datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
        await feeder7.emit(profile.by_name["trip_phase_a"], True, [], when)
        await feeder7.emit(profile.by_name["breaker_closed"], True, [], when)
        await feeder7.set_setting("i_pickup", 1.5)
        await feeder7.set_firmware("2.5.0")

        rr = await client.read_holding_registers(200, count=1, device_id=1)
        assert rr.registers == [1]  # one record written
        rr = await client.read_holding_registers(300, count=8, device_id=1)
        ring = feeder7.section.event_log
        assert ring is not None
        record = codec.RecordDecoder(ring).decode(0, codec.registers_to_bytes(rr.registers))
        assert record.code == 11
        assert record.raised
        assert record.fields["phase"] == 1
        assert record.device_time == when
        rr = await client.read_holding_registers(40, count=1, device_id=1)
        assert rr.registers[0] & 1  # breaker_closed bit
        rr = await client.read_holding_registers(100, count=1, device_id=1)
        assert rr.registers == [150]  # 1.5 A at scale 0.01
        rr = await client.read_holding_registers(16, count=8, device_id=1)
        assert codec.decode_ascii(rr.registers) == "2.5.0"
        # A write is refused by the simulated relay too (and counted by function code).
        wr = await client.write_register(100, 1, device_id=1)
        assert wr.isError()
        assert feeder7.endpoint is not None
        assert feeder7.endpoint.function_codes[6] == 1

        await feeder7.set_online(False)
        client.close()
        assert not await AsyncModbusTcpClient("127.0.0.1", port=ports[0], timeout=1).connect()
        await feeder7.set_online(True)
        client = AsyncModbusTcpClient("127.0.0.1", port=ports[0], timeout=2, retries=0)
        assert await client.connect()
        rr = await client.read_holding_registers(200, count=1, device_id=1)
        assert rr.registers == [1]  # the ring survived the outage
    finally:
        client.close()
        await feeder7.stop()


async def test_the_scenario_fault_fills_the_fault_report_block() -> None:
    """The feeder scenario's fault (start, trip TJA 30 ms later, both reset) leaves a fault
    report in feeder7's registers, read here with a plain pymodbus client."""
    import socket
    from datetime import timedelta

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    feeder7 = _relays(port, port + 1)["feeder7"]
    scenario = load_scenario(SCENARIOS_DIR / "feeder-fault-modbus.toml")
    start = datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    await feeder7.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        assert await client.connect()
        before = await client.read_holding_registers(900, count=1, device_id=1)
        assert before.registers == [0]  # no report yet
        for step in scenario.steps:
            if step.relay == "feeder7" and step.action == "point" and step.at_ms < 2000:
                point = feeder7.profile.by_name[step.point or ""]
                await feeder7.emit(
                    point, step.value, [], start + timedelta(milliseconds=step.at_ms)
                )
        counter = await client.read_holding_registers(900, count=1, device_id=1)
        block = await client.read_holding_registers(901, count=12, device_id=1)
    finally:
        client.close()
        await feeder7.stop()
    assert counter.registers == [1]
    report = feeder7.section.fault_report
    assert report is not None
    fields = codec.parse_record(
        codec.record_struct(report), 24, codec.registers_to_bytes(block.registers), "report"
    )
    inception = start + timedelta(milliseconds=1000)  # the start step
    assert fields == {
        "type": 1,  # AG
        "phases": 0b1001,  # A and N
        "distance": 420,  # 4.2 km in 10 m
        "trip_time": 30,  # trip step at 1030 ms
        "ia": 2400, "ib": 180, "ic": 180, "in": 2400,
        "time": int(inception.timestamp()), "ms": 250,
    }  # fmt: skip
