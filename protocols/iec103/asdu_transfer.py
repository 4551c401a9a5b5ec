"""ASDUs 24-31: the transfer of a disturbance record (IEC 60870-5-103 §7.3.1.19-7.3.1.27,
procedure §7.4.3). Layouts, octet by octet, with their sources: `README.md`, "Disturbance
records".

Pure codec, no I/O. Control direction: 24 (order), 25 (acknowledgement). Monitor
direction: 26 (ready for disturbance data), 27 (ready for a channel), 28 (ready for tags),
29 (tags), 30 (disturbance values), 31 (end of transmission). Every one is a single
information object (VSQ 81H), COT 31.

The standard puts one "not used" octet between INF and TOV in 26, 27 and 30 (and two
before FAN in 28); it is decoded whatever its value and encoded as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from construct import (
    Array,
    Float32l,
    Int8ul,
    Int16sl,
    Int16ul,
    Padding,
    Rebuild,
    Struct,
    Terminated,
    len_,
    this,
)

from protocols.iec103.asdu_base import Asdu
from protocols.iec103.time import CP32, Cp32Time, cp32_from, cp32_to

TOV_INSTANTANEOUS = 1  # type of disturbance values: instantaneous values


class Too:
    """Type of order (TOO), §7.2.6.x."""

    SELECT_FAULT = 1
    REQUEST_DATA = 2
    ABORT_DATA = 3
    REQUEST_CHANNEL = 8
    ABORT_CHANNEL = 9
    REQUEST_TAGS = 16
    ABORT_TAGS = 17
    REQUEST_LIST = 24
    END_DATA = 32
    END_DATA_ABORTED_BY_MASTER = 33
    END_DATA_ABORTED_BY_RELAY = 34
    END_CHANNEL = 35
    END_CHANNEL_ABORTED_BY_MASTER = 36
    END_CHANNEL_ABORTED_BY_RELAY = 37
    END_TAGS = 38
    END_TAGS_ABORTED_BY_MASTER = 39
    END_TAGS_ABORTED_BY_RELAY = 40
    DATA_OK = 64
    DATA_NOT_OK = 65
    CHANNEL_OK = 66
    CHANNEL_NOT_OK = 67
    TAGS_OK = 68
    TAGS_NOT_OK = 69


_ORDER = Struct(
    "too" / Int8ul, "tov" / Int8ul, "fault_number" / Int16ul, "channel" / Int8ul, Terminated
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Order(Asdu):
    """TOO, TOV, FAN, ACC: the layout 24, 25 and 31 share (5 octets)."""

    BODY: ClassVar[Any] = _ORDER

    too: int
    fault_number: int
    channel: int = 0
    tov: int = TOV_INSTANTANEOUS

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> _Order:
        return cls(
            **header,
            too=body.too,
            tov=body.tov,
            fault_number=body.fault_number,
            channel=body.channel,
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "too": self.too,
            "tov": self.tov,
            "fault_number": self.fault_number,
            "channel": self.channel,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceOrder(_Order):
    """ASDU 24, master to relay: select a fault, request data/tags/a channel, abort, or
    request the list of recorded disturbances."""

    TYPE_ID: ClassVar[int] = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceAck(_Order):
    """ASDU 25, master to relay: positive or negative acknowledgement of the whole record
    (TOO 64/65), of a channel (66/67) or of the tags (68/69)."""

    TYPE_ID: ClassVar[int] = 25


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferEnd(_Order):
    """ASDU 31: end of the tags, of a channel, or of the whole record (TOO 32-40)."""

    TYPE_ID: ClassVar[int] = 31


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceReady(Asdu):
    """ASDU 26: the selected record is ready (15 octets after INF)."""

    TYPE_ID: ClassVar[int] = 26
    BODY: ClassVar[Any] = Struct(
        Padding(1),  # not used
        "tov" / Int8ul,
        "fault_number" / Int16ul,
        "faults" / Int16ul,  # NOF: number of grid faults
        "channels" / Int8ul,  # NOC
        "elements" / Int16ul,  # NOE: information elements (samples) per channel
        "interval_us" / Int16ul,  # INT: interval between elements, µs
        "time" / CP32,  # time of the first element
        Terminated,
    )

    fault_number: int
    faults: int
    channels: int
    elements: int
    interval_us: int
    time: Cp32Time
    tov: int = TOV_INSTANTANEOUS

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> DisturbanceReady:
        return cls(
            **header,
            tov=body.tov,
            fault_number=body.fault_number,
            faults=body.faults,
            channels=body.channels,
            elements=body.elements,
            interval_us=body.interval_us,
            time=cp32_from(body.time),
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "tov": self.tov,
            "fault_number": self.fault_number,
            "faults": self.faults,
            "channels": self.channels,
            "elements": self.elements,
            "interval_us": self.interval_us,
            "time": cp32_to(self.time),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelReady(Asdu):
    """ASDU 27: one channel is ready, with its rated primary (RPV) and secondary (RSV)
    values and its reference factor (RFA), each an IEEE 754 float (17 octets after INF)."""

    TYPE_ID: ClassVar[int] = 27
    BODY: ClassVar[Any] = Struct(
        Padding(1),  # not used
        "tov" / Int8ul,
        "fault_number" / Int16ul,
        "channel" / Int8ul,  # ACC
        "primary" / Float32l,  # RPV
        "secondary" / Float32l,  # RSV
        "reference" / Float32l,  # RFA
        Terminated,
    )

    fault_number: int
    channel: int
    primary: float
    secondary: float
    reference: float
    tov: int = TOV_INSTANTANEOUS

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> ChannelReady:
        return cls(
            **header,
            tov=body.tov,
            fault_number=body.fault_number,
            channel=body.channel,
            primary=body.primary,
            secondary=body.secondary,
            reference=body.reference,
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "tov": self.tov,
            "fault_number": self.fault_number,
            "channel": self.channel,
            "primary": self.primary,
            "secondary": self.secondary,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TagsReady(Asdu):
    """ASDU 28: the record's tags (binary channels) are ready (4 octets after INF)."""

    TYPE_ID: ClassVar[int] = 28
    BODY: ClassVar[Any] = Struct(Padding(2), "fault_number" / Int16ul, Terminated)

    fault_number: int

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> TagsReady:
        return cls(**header, fault_number=body.fault_number)

    def to_body(self) -> dict[str, Any]:
        return {"fault_number": self.fault_number}


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag: a binary point (FUN, INF) and its double-point state (DPI)."""

    fun: int
    inf: int
    dpi: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Tags(Asdu):
    """ASDU 29: tags at one tag position (the element number where they apply):
    FAN, NOT (number of tags), TAP, then NOT x (FUN, INF, DPI) (5 + 3i octets)."""

    TYPE_ID: ClassVar[int] = 29
    BODY: ClassVar[Any] = Struct(
        "fault_number" / Int16ul,
        "count" / Rebuild(Int8ul, len_(this.tags)),
        "position" / Int16ul,
        "tags" / Array(this.count, Struct("fun" / Int8ul, "inf" / Int8ul, "dpi" / Int8ul)),
        Terminated,
    )

    fault_number: int
    position: int
    tags: tuple[Tag, ...]

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> Tags:
        tags = tuple(Tag(t.fun, t.inf, t.dpi & 0x03) for t in body.tags)
        return cls(**header, fault_number=body.fault_number, position=body.position, tags=tags)

    def to_body(self) -> dict[str, Any]:
        return {
            "fault_number": self.fault_number,
            "position": self.position,
            "tags": [{"fun": t.fun, "inf": t.inf, "dpi": t.dpi} for t in self.tags],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceValues(Asdu):
    """ASDU 30: consecutive samples of one channel: not used, TOV, FAN, ACC, NDV (number
    of values), NFE (number of the first element), NDV x SDV (signed 16 bits) (8 + 2i
    octets after INF)."""

    TYPE_ID: ClassVar[int] = 30
    BODY: ClassVar[Any] = Struct(
        Padding(1),  # not used
        "tov" / Int8ul,
        "fault_number" / Int16ul,
        "channel" / Int8ul,
        "count" / Rebuild(Int8ul, len_(this.sdv)),
        "first" / Int16ul,
        "sdv" / Array(this.count, Int16sl),  # single disturbance values
        Terminated,
    )

    fault_number: int
    channel: int
    first: int
    values: tuple[int, ...]
    tov: int = TOV_INSTANTANEOUS

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> DisturbanceValues:
        return cls(
            **header,
            tov=body.tov,
            fault_number=body.fault_number,
            channel=body.channel,
            first=body.first,
            values=tuple(body.sdv),
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "tov": self.tov,
            "fault_number": self.fault_number,
            "channel": self.channel,
            "first": self.first,
            "sdv": list(self.values),
        }


# The most values one ASDU 30 can carry: a variable frame's L field counts C, A and the
# ASDU (at most 255), so the ASDU is at most 253 octets: 6 header + 8 + 2 x 119.
MAX_VALUES_PER_ASDU = 119

TRANSFER_TYPES: tuple[type[Asdu], ...] = (
    DisturbanceOrder,
    DisturbanceAck,
    DisturbanceReady,
    ChannelReady,
    TagsReady,
    Tags,
    DisturbanceValues,
    TransferEnd,
)
