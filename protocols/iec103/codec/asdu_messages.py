"""Message ASDUs: 1 and 2 (time-tagged messages, the relay's events), 4 (fault location),
5 (identification: the firmware report), 6 (time sync), 7 and 8 (general interrogation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from construct import Bytes, Float32l, Int8ul, Int16ul, Struct, Terminated

from protocols.iec103.codec.asdu_base import Asdu
from protocols.iec103.codec.time import (
    CP32,
    CP56,
    Cp32Time,
    Cp56Time,
    cp32_from,
    cp32_to,
    cp56_from,
    cp56_to,
)

DPI_NAMES = {0: "transient", 1: "off", 2: "on", 3: "error"}


def dpi_value(dpi: int) -> bool | None:
    """DPI 2 is on, 1 is off; 0 (transient) and 3 (error) are no state at all."""
    return {1: False, 2: True}.get(dpi)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeTaggedMessage(Asdu):
    TYPE_ID: ClassVar[int] = 1
    BODY: ClassVar[Any] = Struct("dpi" / Int8ul, "time" / CP32, "sin" / Int8ul, Terminated)

    dpi: int
    time: Cp32Time
    sin: int = 0

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> TimeTaggedMessage:
        return cls(**header, dpi=body.dpi, time=cp32_from(body.time), sin=body.sin)

    def to_body(self) -> dict[str, Any]:
        return {"dpi": self.dpi, "time": cp32_to(self.time), "sin": self.sin}


@dataclass(frozen=True, slots=True, kw_only=True)
class RelativeTimeMessage(Asdu):
    """ASDU 2: a protection event inside a fault: relative time since the fault started
    and the fault number, which tie a start, its trips and the disturbance record together."""

    TYPE_ID: ClassVar[int] = 2
    BODY: ClassVar[Any] = Struct(
        "dpi" / Int8ul,
        "relative_time" / Int16ul,
        "fault_number" / Int16ul,
        "time" / CP32,
        "sin" / Int8ul,
        Terminated,
    )

    dpi: int
    relative_time: int
    fault_number: int
    time: Cp32Time
    sin: int = 0

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> RelativeTimeMessage:
        return cls(
            **header,
            dpi=body.dpi,
            relative_time=body.relative_time,
            fault_number=body.fault_number,
            time=cp32_from(body.time),
            sin=body.sin,
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "dpi": self.dpi,
            "relative_time": self.relative_time,
            "fault_number": self.fault_number,
            "time": cp32_to(self.time),
            "sin": self.sin,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultLocation(Asdu):
    """ASDU 4: time-tagged measurand with relative time (short-circuit location, ohms)."""

    TYPE_ID: ClassVar[int] = 4
    BODY: ClassVar[Any] = Struct(
        "scl" / Float32l,
        "relative_time" / Int16ul,
        "fault_number" / Int16ul,
        "time" / CP32,
        Terminated,
    )

    scl: float
    relative_time: int
    fault_number: int
    time: Cp32Time

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> FaultLocation:
        return cls(
            **header,
            scl=body.scl,
            relative_time=body.relative_time,
            fault_number=body.fault_number,
            time=cp32_from(body.time),
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "scl": self.scl,
            "relative_time": self.relative_time,
            "fault_number": self.fault_number,
            "time": cp32_to(self.time),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Identification(Asdu):
    """ASDU 5: compatibility level, 8 manufacturer octets, 4 software-id octets."""

    TYPE_ID: ClassVar[int] = 5
    BODY: ClassVar[Any] = Struct(
        "col" / Int8ul, "manufacturer" / Bytes(8), "software" / Bytes(4), Terminated
    )

    col: int
    manufacturer: bytes
    software: bytes

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> Identification:
        return cls(
            **header,
            col=body.col,
            manufacturer=bytes(body.manufacturer),
            software=bytes(body.software),
        )

    def to_body(self) -> dict[str, Any]:
        return {"col": self.col, "manufacturer": self.manufacturer, "software": self.software}

    @property
    def manufacturer_text(self) -> str:
        return _text(self.manufacturer)

    @property
    def software_text(self) -> str:
        """Printable software ids read as text ("V4.7"), others as hex: never guessed."""
        if all(0x20 <= b < 0x7F or b == 0 for b in self.software):
            return _text(self.software)
        return self.software.hex()


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip("\x00 ")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeSync(Asdu):
    TYPE_ID: ClassVar[int] = 6
    BODY: ClassVar[Any] = Struct("time" / CP56, Terminated)

    time: Cp56Time

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> TimeSync:
        return cls(**header, time=cp56_from(body.time))

    def to_body(self) -> dict[str, Any]:
        return {"time": cp56_to(self.time)}


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneralInterrogation(Asdu):
    TYPE_ID: ClassVar[int] = 7
    BODY: ClassVar[Any] = Struct("scn" / Int8ul, Terminated)

    scn: int

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> GeneralInterrogation:
        return cls(**header, scn=body.scn)

    def to_body(self) -> dict[str, Any]:
        return {"scn": self.scn}


@dataclass(frozen=True, slots=True, kw_only=True)
class GiTermination(Asdu):
    TYPE_ID: ClassVar[int] = 8
    BODY: ClassVar[Any] = Struct("scn" / Int8ul, Terminated)

    scn: int

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> GiTermination:
        return cls(**header, scn=body.scn)

    def to_body(self) -> dict[str, Any]:
        return {"scn": self.scn}


MESSAGE_TYPES: tuple[type[Asdu], ...] = (
    TimeTaggedMessage,
    RelativeTimeMessage,
    FaultLocation,
    Identification,
    TimeSync,
    GeneralInterrogation,
    GiTermination,
)
