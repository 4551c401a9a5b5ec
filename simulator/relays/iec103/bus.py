"""The transport of simulated IEC 103 relays: one serial bus shared by several relays.

A bus is a pty or a TCP listener, keyed by the scenario's `link.port`:

- a filesystem path (e.g. `/tmp/relay-sim/rs485-1`): the simulator opens a pty pair in
  raw mode and makes that path a symlink to the pty's slave side, like
  `socat pty,link=PATH`. The agent (or a test) opens the same path with pyserial.
  Parity must be N: a pty rejects even parity.
- `socket://HOST:PORT`: a TCP server, as a serial-to-Ethernet converter offers; one master
  at a time.

Relays naming the same port share the bus; the bus answers a frame through the relay with
that link address, and stays silent for addresses nobody has (as RS-485 does). With
`line_baud` set, answers come as late as a real line of that baud rate would bring them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from protocols.iec103.codec.frames import (
    FixedFrame,
    Frame,
    FrameExtractor,
    SingleCharFrame,
    VariableFrame,
    encode_frame,
)

log = logging.getLogger(__name__)


class BusMember(Protocol):
    link_address: int

    def handle(self, frame: Frame) -> bytes | None: ...


class SimulatedBus:
    def __init__(self, port: str) -> None:
        self.port = port
        self.members: dict[int, BusMember] = {}
        self.extractor = FrameExtractor()
        self.device_path: str | None = None  # the pty slave the master opens
        self._master_fd: int | None = None
        self._slave_fd: int | None = None
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.frames_in = 0
        # every primary frame, in the order the bus saw them (tests count poll turns on it)
        self.frames: list[FixedFrame | VariableFrame] = []
        # called with every chunk of bytes the master wrote, as read (a wire recording)
        self.taps: list[Callable[[bytes], None]] = []
        # A pty or a socket carries bytes at once; with `line_baud` set, each answer is
        # written only after the request and the answer would have crossed a real line
        # (`bits_per_char`: start, 8 data, parity, stop), so benchmarks see line timing.
        self.line_baud: int | None = None
        self.bits_per_char = 11

    async def start(self) -> None:
        if self.port.startswith("socket://"):
            url = urlparse(self.port)
            self._server = await asyncio.start_server(
                self._client, url.hostname or "127.0.0.1", url.port or 0
            )
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes as on a wire
        os.set_blocking(master, False)
        self._master_fd, self._slave_fd = master, slave
        self.device_path = os.ttyname(slave)
        if self.port != "pty":
            _symlink(Path(self.port), self.device_path)
        asyncio.get_running_loop().add_reader(master, self._readable)
        log.info("iec103 bus %s on %s", self.port, self.device_path)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            if self._writer is not None:
                self._writer.close()
            await self._server.wait_closed()
        if self._master_fd is not None:
            asyncio.get_running_loop().remove_reader(self._master_fd)
            os.close(self._master_fd)
            if self._slave_fd is not None:
                os.close(self._slave_fd)
            if self.port != "pty":
                _unlink(Path(self.port))
            self._master_fd = self._slave_fd = None

    def _readable(self) -> None:
        assert self._master_fd is not None
        try:
            data = os.read(self._master_fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO while nobody has the slave side open: nothing to read
            return
        self._feed(data)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = writer
        try:
            while data := await reader.read(4096):
                self._feed(data)
        except ConnectionError:
            pass
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None

    def _feed(self, data: bytes) -> None:
        for tap in self.taps:
            tap(data)
        for frame in self.extractor.feed(data):
            self.frames_in += 1
            if isinstance(frame, SingleCharFrame) or not frame.control.prm:
                continue
            self.frames.append(frame)
            member = self.members.get(frame.address)
            if member is None:
                continue
            answer = member.handle(frame)
            if not answer:
                continue
            if self.line_baud:
                # as on the wire: the request's octets, then the answer's, at the line rate
                octets = len(encode_frame(frame)) + len(answer)
                delay = octets * self.bits_per_char / self.line_baud
                asyncio.get_running_loop().call_later(delay, self._write, answer)
            else:
                self._write(answer)

    def _write(self, data: bytes) -> None:
        if self._master_fd is not None:
            os.write(self._master_fd, data)
        elif self._writer is not None:
            self._writer.write(data)


def _symlink(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    _unlink(link)
    link.symlink_to(target)


def _unlink(link: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        link.unlink()


_BUSES: dict[str, SimulatedBus] = {}


async def attach(port: str, member: BusMember) -> SimulatedBus:
    bus = _BUSES.get(port)
    if bus is None:
        bus = SimulatedBus(port)
        await bus.start()
        _BUSES[port] = bus
    if member.link_address in bus.members:
        raise ValueError(f"bus {port}: link address {member.link_address} taken")
    bus.members[member.link_address] = member
    return bus


async def detach(port: str, member: BusMember) -> None:
    bus = _BUSES.get(port)
    if bus is None:
        return
    bus.members.pop(member.link_address, None)
    if not bus.members:
        del _BUSES[port]
        await bus.stop()
