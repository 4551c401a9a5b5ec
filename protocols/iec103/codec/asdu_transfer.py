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

from dataclasses import dataclass, fields
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

from protocols.iec103.codec.asdu_base import Asdu
from protocols.iec103.codec.time import CP32, Cp32Time, cp32_from, cp32_to

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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Flat(Asdu):
    """A body whose construct fields have the dataclass's names, one to one (`WIRE`
    renames the few that cannot: construct's containers are dicts, `values` is taken)."""

    WIRE: ClassVar[dict[str, str]] = {}

    @classmethod
    def _names(cls) -> list[str]:
        header = {f.name for f in fields(Asdu)}
        return [f.name for f in fields(cls) if f.name not in header]

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> Asdu:
        values = {name: body[cls.WIRE.get(name, name)] for name in cls._names()}
        return cls(**header, **cls._decoded(values))

    def to_body(self) -> dict[str, Any]:
        return {self.WIRE.get(n, n): getattr(self, n) for n in self._names()} | self._encoded()

    @classmethod
    def _decoded(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Wire values to field values, where they differ (times, lists)."""
        return values

    def _encoded(self) -> dict[str, Any]:
        """Field values to wire values, where they differ."""
        return {}


_ORDER = Struct(
    "too" / Int8ul, "tov" / Int8ul, "fault_number" / Int16ul, "channel" / Int8ul, Terminated
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Order(_Flat):
    """TOO, TOV, FAN, ACC: the layout 24, 25 and 31 share (5 octets)."""

    BODY: ClassVar[Any] = _ORDER

    too: int
    fault_number: int
    channel: int = 0
    tov: int = TOV_INSTANTANEOUS


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
class DisturbanceReady(_Flat):
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
    def _decoded(cls, values: dict[str, Any]) -> dict[str, Any]:
        return values | {"time": cp32_from(values["time"])}

    def _encoded(self) -> dict[str, Any]:
        return {"time": cp32_to(self.time)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelReady(_Flat):
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


@dataclass(frozen=True, slots=True, kw_only=True)
class TagsReady(_Flat):
    """ASDU 28: the record's tags (binary channels) are ready (4 octets after INF)."""

    TYPE_ID: ClassVar[int] = 28
    BODY: ClassVar[Any] = Struct(Padding(2), "fault_number" / Int16ul, Terminated)

    fault_number: int


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag: a binary point (FUN, INF) and its double-point state (DPI)."""

    fun: int
    inf: int
    dpi: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Tags(_Flat):
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
    def _decoded(cls, values: dict[str, Any]) -> dict[str, Any]:
        return values | {"tags": tuple(Tag(t.fun, t.inf, t.dpi & 0x03) for t in values["tags"])}

    def _encoded(self) -> dict[str, Any]:
        return {"tags": [{"fun": t.fun, "inf": t.inf, "dpi": t.dpi} for t in self.tags]}


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceValues(_Flat):
    """ASDU 30: consecutive samples of one channel: not used, TOV, FAN, ACC, NDV (number
    of values), NFE (number of the first element), NDV x SDV (signed 16 bits) (8 + 2i
    octets after INF)."""

    TYPE_ID: ClassVar[int] = 30
    WIRE: ClassVar[dict[str, str]] = {"values": "sdv"}
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
    def _decoded(cls, values: dict[str, Any]) -> dict[str, Any]:
        return values | {"values": tuple(values["values"])}


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
