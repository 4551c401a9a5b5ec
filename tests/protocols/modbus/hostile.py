"""A small hostile Modbus RTU server over TCP (the `socket://` framing of serial-to-Ethernet
converters): it serves a real register image but mangles answers on a script."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque

from protocols.modbus.answers import rtu_crc
from simulator.relays.modbus.image import RegisterImage

MANGLES = ("wrong_byte_count", "bad_crc", "exception", "trailing_garbage", "good")


def frame(body: bytes) -> bytes:
    return body + rtu_crc(body).to_bytes(2, "big")


class HostileRtuServer:
    def __init__(self, image: RegisterImage, unit: int) -> None:
        self.image = image
        self.unit = unit
        self.script: deque[str] = deque()  # mangles to apply, in order; then "good"
        self.cycle: tuple[str, ...] = ()  # or apply these round-robin forever
        self.applied: list[str] = []
        self.function_codes: list[int] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._turn = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def drop_connections(self) -> None:
        """Close every open connection (the converter rebooted); the server listens on."""
        for writer in list(self._writers):
            writer.close()

    def _next_mangle(self) -> str:
        if self.script:
            return self.script.popleft()
        if self.cycle:
            self._turn += 1
            return self.cycle[self._turn % len(self.cycle)]
        return "good"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await reader.readexactly(8)  # unit fc addr(2) count(2) crc(2)
                unit, fc, address, count = struct.unpack(">BBHH", request[:6])
                self.function_codes.append(fc)
                if rtu_crc(request[:6]) != int.from_bytes(request[6:], "big") or unit != self.unit:
                    continue  # not for us, or garbled: a real slave stays silent
                table = {3: "holding", 4: "input"}.get(fc)
                if table is None:
                    writer.write(frame(bytes([unit, fc | 0x80, 1])))
                    continue
                regs = self.image.read(table, address, count)
                data = struct.pack(f">{len(regs)}H", *regs)
                mangle = self._next_mangle()
                self.applied.append(mangle)
                if mangle == "wrong_byte_count":  # one register short, consistent CRC
                    answer = (
                        frame(bytes([unit, fc, len(data) - 2]) + data[:-2])
                        if count > 1
                        else (frame(bytes([unit, fc, len(data) + 2]) + data))
                    )
                elif mangle == "bad_crc":
                    good = frame(bytes([unit, fc, len(data)]) + data)
                    answer = good[:-1] + bytes([good[-1] ^ 0x5A])
                elif mangle == "exception":
                    answer = frame(bytes([unit, fc | 0x80, 6]))  # slave device busy
                elif mangle == "trailing_garbage":
                    answer = frame(bytes([unit, fc, len(data)]) + data) + b"\xde\xad\xbe"
                else:
                    answer = frame(bytes([unit, fc, len(data)]) + data)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
