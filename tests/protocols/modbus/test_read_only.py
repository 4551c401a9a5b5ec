"""The read-only guarantee: one choke point refuses every write function code, and a whole
run, watched on the wire by a recording proxy, carries only reads."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pymodbus.pdu.bit_message import WriteMultipleCoilsRequest, WriteSingleCoilRequest
from pymodbus.pdu.diag_message import ForceListenOnlyModeRequest
from pymodbus.pdu.register_message import (
    MaskWriteRegisterRequest,
    ReadWriteMultipleRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

from protocols.driver import PollKind
from protocols.errors import WriteRefused
from protocols.modbus.driver import ModbusDriver
from protocols.modbus.link import ModbusLink, require_read_only, require_read_only_frame

from .helpers import RecordingSink, free_port, plan, relay, running, tcp_device, wait_until

WRITES = [
    WriteSingleCoilRequest(address=1, bits=[True], dev_id=1),  # 5
    WriteSingleRegisterRequest(address=1, registers=[7], dev_id=1),  # 6
    WriteMultipleCoilsRequest(address=1, bits=[True, False], dev_id=1),  # 15
    WriteMultipleRegistersRequest(address=1, registers=[1, 2], dev_id=1),  # 16
    MaskWriteRegisterRequest(address=1, dev_id=1),  # 22
    ReadWriteMultipleRegistersRequest(  # 23: reads, but writes too
        read_address=0, read_count=1, write_address=1, write_registers=[1], dev_id=1
    ),
    ForceListenOnlyModeRequest(dev_id=1),  # 8: diagnostics change the unit's state
]


@pytest.mark.parametrize("request_", WRITES, ids=lambda r: f"fc{r.function_code}")
def test_the_choke_point_refuses_every_non_read(request_: object) -> None:
    with pytest.raises(WriteRefused):
        require_read_only(request_)  # type: ignore[arg-type]


@pytest.mark.parametrize("fc", [5, 6, 8, 15, 16, 22, 23, 43])
def test_the_frame_check_refuses_write_bytes(fc: int) -> None:
    with pytest.raises(WriteRefused):
        require_read_only_frame(bytes([1, fc, 0, 1, 0, 1, 0, 0]), "rtu")
    with pytest.raises(WriteRefused):
        require_read_only_frame(bytes([0, 1, 0, 0, 0, 6, 1, fc, 0, 1, 0, 1]), "socket")


def test_reads_and_device_identification_pass() -> None:
    for fc in (1, 2, 3, 4):
        require_read_only_frame(bytes([1, fc, 0, 0, 0, 1, 0, 0]), "rtu")
    require_read_only_frame(bytes([1, 0x2B, 0x0E, 1, 0, 0, 0]), "rtu")


class RecordingProxy:
    """A TCP proxy that parses every Modbus TCP frame the agent sends (MBAP length
    framing, independent of pymodbus) and records its function code."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.function_codes: list[int] = []
        self.frames = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def upstream() -> None:
            while True:
                header = await reader.readexactly(7)
                body = await reader.readexactly(int.from_bytes(header[4:6], "big") - 1)
                self.function_codes.append(body[0])
                self.frames += 1
                up_writer.write(header + body)

        async def downstream() -> None:
            while data := await up_reader.read(4096):
                writer.write(data)

        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await asyncio.gather(upstream(), downstream())
        writer.close()
        up_writer.close()


async def test_no_write_function_code_ever_reaches_the_wire() -> None:
    port = free_port()
    sim = relay("f1", {"transport": "tcp", "port": port, "unit_id": 1})
    await sim.start()
    proxy = RecordingProxy(port)
    proxy_port = await proxy.start()
    try:
        # 1. A write handed straight to the link's only exit is refused before the wire.
        link = ModbusLink("probe", host="127.0.0.1", port=proxy_port)
        await link.open()
        for request in WRITES:
            with pytest.raises(WriteRefused):
                await link.execute(request, 0.5)
        assert await link.read_registers(1, "holding", 0, 4, 1.0)
        link.close()

        # 2. A whole run: every job, on-demand polls, events, a relay that changes things.
        driver = ModbusDriver(plan([tcp_device("f1", proxy_port)]))
        sink = RecordingSink()
        async with running(driver, sink):
            for i in range(5):
                sim.append_event(11, fields={"value": i})
                sim.image.set_status("breaker_closed", i % 2 == 0)
                await sim.set_setting("i_pickup", 1.0 + i)
            await wait_until(lambda: len(sink.events()) == 5)
            for kind in PollKind:
                await driver.poll("f1", kind)
            await asyncio.sleep(0.5)  # a few more poll cycles
        assert proxy.frames > 30
        assert set(proxy.function_codes) <= {1, 2, 3, 4}, proxy.function_codes
        assert sim.endpoint is not None
        assert set(sim.endpoint.function_codes) <= {1, 2, 3, 4}
    finally:
        await proxy.stop()
        await sim.stop()
