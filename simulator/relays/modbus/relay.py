"""Simulated Modbus relays on pymodbus' server (3.16 `SimDevice`), over TCP or RTU.

Scenario `link` keys (validated by `SimLink`):

    link = { transport = "tcp", port = 15020, unit_id = 1 }                   # Modbus TCP
    link = { transport = "rtu", port = "socket://127.0.0.1:15021", unit_id = 3 }  # RTU over TCP
    link = { transport = "rtu", port = "/tmp/ttyA", unit_id = 2 }             # a pty / serial

Relays whose links name the same endpoint share one server (a TCP gateway or an RS-485
bus); each answers on its own unit id. Point steps on `event:<code>` append a record to the
relay's ring (its phase and value fields as the profile's `[modbus.event_log]` maps them;
start and trip points also drive the relay's fault report, see `faults.py`), on
`status:<name>` set a bit, on `measurement:<name>` set a value; breaker openings and trips
move the relay's wear counters where its profile maps them (`wear.py`). `offline`
makes the relay stop answering (its unit is dropped from the server; a TCP endpoint with no
relay left closes, dropping connections).

Every request the server receives is counted by function code (`Endpoint.function_codes`):
the wire-level proof that the agent never writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from common.config import StrictModel
from profiles.model import PointSpec, Profile
from protocols.modbus import codec
from protocols.modbus.profile import ModbusProfile
from simulator.relays.modbus.faults import FaultRecorder
from simulator.relays.modbus.image import TABLES, RegisterImage
from simulator.relays.modbus.wear import WearCounters
from simulator.scenario import RelaySpec

log = logging.getLogger(__name__)

# Read function codes -> the table they address.
_FC_TABLE = {1: "coils", 2: "discrete", 3: "holding", 4: "input"}
# Placeholder unit on an RTU endpoint whose relays are all offline (never a real unit id).
_NOBODY = 255


class SimLink(StrictModel):
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int | str = Field(description="tcp: port number; rtu: socket://host:port or a tty")
    unit_id: int = Field(default=1, ge=1, le=247)
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "N"


class Endpoint:
    """One pymodbus server (TCP port, socket:// RTU, or tty) and the relays behind it."""

    def __init__(self, link: SimLink) -> None:
        self.link = link
        self.relays: dict[int, ModbusRelay] = {}
        self.function_codes: Counter[int] = Counter()
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    @property
    def closed(self) -> bool:
        return self._server is None

    @property
    def key(self) -> str:
        return f"{self.link.transport}:{self.link.host}:{self.link.port}"

    def _record(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU | None:
        """Count every request by function code; drop those for absent or offline units.

        pymodbus' SimCore answers an unknown unit with an exception, but a dead unit on a
        real bus is silent: returning None here makes the server send nothing.
        """
        if sending:
            return pdu
        self.function_codes[int(pdu.function_code)] += 1
        target = self.relays.get(int(pdu.dev_id))
        if target is None or not target.online:
            return None
        return pdu

    async def restart(self) -> None:
        """(Re)build the server with the relays currently online."""
        await self.close()
        online = [r for r in self.relays.values() if r.online]
        if not online and self.link.transport == "tcp":
            return  # a vanished TCP relay refuses connections
        devices = [r.sim_device() for r in self.relays.values()] or [_placeholder()]
        if self.link.transport == "tcp":
            server: ModbusTcpServer | ModbusSerialServer = ModbusTcpServer(
                devices,
                address=(self.link.host, int(self.link.port)),
                trace_pdu=self._record,  # type: ignore[arg-type]
            )
        else:
            server = ModbusSerialServer(
                devices,
                framer=FramerType.RTU,
                port=str(self.link.port),
                baudrate=self.link.baudrate,
                parity=self.link.parity,
                trace_pdu=self._record,  # type: ignore[arg-type]
            )
        await server.serve_forever(background=True)
        self._server = server
        log.info("modbus sim %s: serving units %s", self.key, sorted(r.unit for r in online))

    async def close(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
            await asyncio.sleep(0)  # let the transport close before a rebind


# Endpoints shared by relays of one process, keyed by transport:host:port.
_ENDPOINTS: dict[str, Endpoint] = {}


def endpoint_for(link: SimLink) -> Endpoint:
    probe = Endpoint(link)
    return _ENDPOINTS.setdefault(probe.key, probe)


class ModbusRelay:
    """One simulated relay: a register image, a unit id, an endpoint."""

    def __init__(self, spec: RelaySpec, profile: Profile) -> None:
        if not isinstance(profile.section, ModbusProfile):
            raise ValueError(f"relay {spec.id}: profile {profile.name!r} has no [modbus] section")
        try:
            self.link = SimLink.model_validate(spec.link)
        except ValidationError as exc:
            raise ValueError(f"relay {spec.id}: link: {exc}") from exc
        self.spec = spec
        self.profile = profile
        self.section: ModbusProfile = profile.section
        self.unit = self.link.unit_id
        self.image = RegisterImage(self.section)
        report = self.section.fault_report
        self.faults = FaultRecorder(report) if report is not None else None
        self.wear = WearCounters({m.name for m in self.section.measurements})
        self.online = True
        self.endpoint: Endpoint | None = None
        ident = spec.identity
        self.image.set_identity(
            ident.model, ident.serial, ident.firmware_version, ident.checksum, ident.manufacturer
        )
        for name, value in spec.settings.items():
            self.image.set_setting(name, value)
        # A relay starts healthy: status bits whose set state is the normal one ("healthy",
        # a watchdog) are set, as a real relay's are after its self-test.
        for point in profile.points:
            kind, _, name = point.address.partition(":")
            if kind == "status" and point.inverted:
                self.image.set_status(name, True)

    def sim_device(self) -> SimDevice:
        blocks: list[list[SimData]] = []
        for table in TABLES:
            bits = table in ("coils", "discrete")
            size = len(self.image.tables[table]) * (16 if bits else 1)
            kind = DataType.BITS if bits else DataType.REGISTERS
            blocks.append([SimData(0, count=size, values=False if bits else 0, datatype=kind)])
        coils, discrete, holding, inputs = blocks
        return SimDevice(
            id=self.unit, simdata=(coils, discrete, holding, inputs), action=self._action
        )

    async def _action(  # noqa: PLR0917 - the signature pymodbus calls
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Fill pymodbus' registers from the image on every read; refuse every write."""
        if set_values is not None or function_code not in _FC_TABLE:
            log.error("modbus sim %s: refused write function %d", self.spec.id, function_code)
            return ExcCodes.ILLEGAL_FUNCTION
        table = _FC_TABLE[function_code]
        first = address // 16 if table in ("coils", "discrete") else address
        offset = first - start_address
        registers[offset : offset + count] = self.image.read(table, first, count)
        return None

    # --- SimulatedRelay -----------------------------------------------------------------------

    async def start(self) -> None:
        self.endpoint = endpoint_for(self.link)
        if self.unit in self.endpoint.relays and self.endpoint.relays[self.unit] is not self:
            raise ValueError(f"relay {self.spec.id}: unit {self.unit} already on {self.link}")
        self.endpoint.relays[self.unit] = self
        await self.endpoint.restart()

    async def stop(self) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            return
        endpoint.relays.pop(self.unit, None)
        if endpoint.relays:
            await endpoint.restart()
        else:
            await endpoint.close()
            _ENDPOINTS.pop(endpoint.key, None)
        self.endpoint = None

    async def emit(
        self,
        point: PointSpec,
        value: bool | int | float | str | None,
        quality: list[str],
        device_time: datetime,
    ) -> None:
        kind, _, name = point.address.partition(":")
        if kind == "event":
            self.append_event(int(name), bool(value), device_time, self._event_fields(point, value))
            if self.faults is not None:
                report = self.faults.observe(
                    point.name, point.kind, point.phase, bool(value), device_time
                )
                if report is not None:
                    self.image.write_fault_report(report)
            if point.kind == "trip":
                self._count(self.wear.on_trip(point.name, bool(value)))
        elif kind == "status":
            self.image.set_status(name, bool(value))
            self._count(self.wear.on_status(name, bool(value)))
        elif kind == "measurement":
            self.image.set_measurement(name, float(value or 0))
            self.wear.preset(name, float(value or 0))
        else:
            raise ValueError(f"relay {self.spec.id}: cannot emit {point.address!r}")

    def _count(self, counter: str | None) -> None:
        """Serve a wear counter's new value in its input register."""
        if counter is not None:
            self.image.set_measurement(counter, self.wear.values[counter])

    def _event_fields(
        self, point: PointSpec, value: bool | int | float | str | None
    ) -> dict[str, int | float]:
        """The record's phase and value fields, as the profile says the relay writes them."""
        ring = self.section.event_log
        fields: dict[str, int | float] = {}
        if ring is None:
            return fields
        if ring.phase is not None and point.phase is not None:
            fields[ring.phase.field] = codec.phase_value(ring.phase, point.phase)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if ring.value is not None and number:
            assert isinstance(value, int | float)
            raw_type = ring.field_type(ring.value.field)
            fields[ring.value.field] = codec.unscaled(value, ring.value, raw_type)
        return fields

    def append_event(
        self,
        code: int,
        raised: bool = True,
        when: datetime | None = None,
        fields: dict[str, int | float] | None = None,
    ) -> int:
        ring = self.section.event_log
        known = {f.name for f in ring.fields} if ring else set()
        return self.image.append_event(
            code, raised, when, {k: v for k, v in (fields or {}).items() if k in known}
        )

    async def set_online(self, online: bool) -> None:
        """Offline: the unit goes silent; a TCP endpoint with nobody left online closes."""
        if online == self.online:
            return
        self.online = online
        endpoint = self.endpoint
        if endpoint is None or endpoint.link.transport != "tcp":
            return
        if not any(r.online for r in endpoint.relays.values()):
            await endpoint.close()
        elif online and endpoint.closed:
            await endpoint.restart()

    async def set_setting(self, name: str, value: bool | int | float | str) -> None:
        self.image.set_setting(name, value)

    async def set_firmware(self, version: str) -> None:
        self.image.set_identity(firmware=version)


def _placeholder() -> SimDevice:
    data = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
    regs = [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(id=_NOBODY, simdata=(data, list(data), regs, list(regs)))


def make_relay(spec: RelaySpec, profile: Profile) -> ModbusRelay:
    return ModbusRelay(spec, profile)


def describe(relay: ModbusRelay) -> dict[str, Any]:
    return {"id": relay.spec.id, "unit": relay.unit, "link": relay.link.model_dump()}
