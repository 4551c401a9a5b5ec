"""Each request times out after its own `answer_s`, though the link keeps one timer for all
of them (`ModbusLink._watch`): a timer set by an earlier request never cuts a later one
short, and a unit that stays silent still costs exactly its timeout."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time

import pytest

from protocols.modbus.link import ModbusLink, UnitNoResponse


class SlowUnit:
    """Modbus TCP, function code 3: registers 0, 1, 2, …, answered after `delays` (one per
    request, in order; None: no answer at all)."""

    def __init__(self, delays: list[float | None]) -> None:
        self.delays = delays

    async def start(self) -> tuple[asyncio.Server, int]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return server, int(server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                tid, _, _, unit, fc, address, count = struct.unpack(
                    ">HHHBBHH", await reader.readexactly(12)
                )
                delay = self.delays.pop(0)
                if delay is None:
                    continue
                await asyncio.sleep(delay)
                data = struct.pack(f">{count}H", *range(address, address + count))
                pdu = bytes([fc, len(data)]) + data
                writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)


async def test_a_later_request_gets_its_whole_timeout() -> None:
    # The first request's timer would go off at 0.6 s; the second, sent at 0.3 s, is
    # answered at 0.75 s, inside its own 0.6 s.
    server, port = await SlowUnit([0.0, 0.45]).start()
    link = ModbusLink("slow", host="127.0.0.1", port=port)
    await link.open()
    try:
        assert await link.read_registers(1, "holding", 0, 2, 0.6) == [0, 1]
        await asyncio.sleep(0.3)
        assert await link.read_registers(1, "holding", 4, 2, 0.6) == [4, 5]
        assert link.unit_counters(1).no_response == 0
    finally:
        link.close()
        server.close()


async def test_a_silent_unit_costs_its_own_timeout() -> None:
    # A long timeout first (its timer is set for 2 s), then a short one that gets no
    # answer: it times out after its own 0.2 s, not the 2 s timer already set.
    server, port = await SlowUnit([0.0, None]).start()
    link = ModbusLink("silent", host="127.0.0.1", port=port)
    await link.open()
    try:
        assert await link.read_registers(1, "holding", 0, 1, 2.0) == [0]
        started = time.monotonic()
        with pytest.raises(UnitNoResponse):
            await link.read_registers(1, "holding", 0, 1, 0.2)
        assert 0.2 <= time.monotonic() - started < 1.0
        assert link.unit_counters(1).no_response == 1
    finally:
        link.close()
        server.close()
