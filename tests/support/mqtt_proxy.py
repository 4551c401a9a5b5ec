"""A TCP proxy between an MQTT client and a real broker that reads the packets going
by: it counts the client's QoS 1 PUBLISHes and can hold the broker's PUBACKs back (a
broker that has stopped confirming), to see how many publishes a client keeps in flight."""

from __future__ import annotations

import asyncio
import contextlib

PUBLISH, PUBACK = 3, 4


def _packets(buf: bytearray) -> list[bytes]:
    """Whole MQTT packets at the head of `buf` (removed from it)."""
    out: list[bytes] = []
    while len(buf) >= 2:
        length, multiplier, i = 0, 1, 1
        while True:
            if i >= len(buf):
                return out
            byte = buf[i]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            i += 1
            if not byte & 0x80:
                break
        if len(buf) < i + length:
            return out
        out.append(bytes(buf[: i + length]))
        del buf[: i + length]
    return out


class MqttProxy:
    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.broker = (broker_host, broker_port)
        self.port = 0
        self.qos1_publishes = 0  # client to broker
        self.hold_acks = False
        self.held: list[bytes] = []
        self._to_client: asyncio.StreamWriter | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._to_client is not None:
            self._to_client.close()

    def release(self) -> None:
        """Stop holding: the PUBACKs held so far go to the client, in order."""
        self.hold_acks = False
        if self._to_client is not None:
            for packet in self.held:
                self._to_client.write(packet)
        self.held.clear()

    async def _session(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        broker_r, broker_w = await asyncio.open_connection(*self.broker)
        self._to_client = client_w
        up = asyncio.create_task(self._pump(client_r, broker_w, upstream=True))
        down = asyncio.create_task(self._pump(broker_r, client_w, upstream=False))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            for writer in (client_w, broker_w):
                writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        buf = bytearray()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                buf += data
                for packet in _packets(buf):
                    kind, qos = packet[0] >> 4, (packet[0] >> 1) & 0x03
                    if upstream and kind == PUBLISH and qos == 1:
                        self.qos1_publishes += 1
                    if not upstream and kind == PUBACK and self.hold_acks:
                        self.held.append(packet)
                        continue
                    writer.write(packet)
                await writer.drain()
