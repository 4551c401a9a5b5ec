"""Generic services: ASDU 21 (generic command, our read request) and ASDU 10 (generic data,
the relay's answer). We use them read-only, to fetch settings groups:

- INF 240: read the headings of all groups (answer: one entry per group, KOD 10 text);
- INF 241: read all entries of one group (answer: one data set per entry, with the KOD
  asked for: 1 actual value, 10 description).

A data set keeps its GDD (type, size, number) and raw data octets, so any type round-trips;
`generic_value` interprets the common ones.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

from construct import (
    Array,
    BitsInteger,
    BitStruct,
    Bytes,
    Flag,
    Int8ul,
    Struct,
    Terminated,
    this,
)

from protocols.iec103.codec.asdu_base import Asdu

INF_READ_HEADINGS = 240
INF_READ_GROUP = 241
KOD_ACTUAL_VALUE = 1
KOD_DESCRIPTION = 10


class DataType:
    """GDD data types (IEC 60870-5-103 §7.2.6.32) that `generic_value` interprets."""

    TEXT = 1
    BITSTRING = 2
    UINT = 3
    INT = 4
    REAL32 = 7
    REAL64 = 8
    DOUBLE_POINT = 9
    SINGLE_POINT = 10
    REPLY = 22


def _data_length(ctx: Any) -> int:
    size, number = ctx.data_size, ctx.gdd3.number
    if ctx.data_type == DataType.BITSTRING:
        return int(math.ceil(size / 8) * number)
    return int(size * number)


DATA_SET = Struct(
    "group" / Int8ul,
    "entry" / Int8ul,
    "kod" / Int8ul,
    "data_type" / Int8ul,
    "data_size" / Int8ul,
    "gdd3" / BitStruct("cont" / Flag, "number" / BitsInteger(7)),
    "data" / Bytes(_data_length),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericDataSet:
    group: int
    entry: int
    kod: int
    data_type: int
    data_size: int
    number: int
    data: bytes
    cont: bool = False

    @classmethod
    def of_value(
        cls, group: int, entry: int, value: bool | int | float | str, kod: int = 1
    ) -> GenericDataSet:
        """Encode one value with the GDD a relay would choose for it."""
        if isinstance(value, str):
            raw = value.encode("latin-1")
            return cls(
                group=group,
                entry=entry,
                kod=kod,
                data_type=DataType.TEXT,
                data_size=len(raw),
                number=1,
                data=raw,
            )
        if isinstance(value, bool):
            return cls(
                group=group,
                entry=entry,
                kod=kod,
                data_type=DataType.SINGLE_POINT,
                data_size=1,
                number=1,
                data=bytes([int(value)]),
            )
        if isinstance(value, int):
            return cls(
                group=group,
                entry=entry,
                kod=kod,
                data_type=DataType.INT,
                data_size=4,
                number=1,
                data=value.to_bytes(4, "little", signed=True),
            )
        return cls(
            group=group,
            entry=entry,
            kod=kod,
            data_type=DataType.REAL32,
            data_size=4,
            number=1,
            data=struct.pack("<f", value),
        )


def generic_value(ds: GenericDataSet) -> bool | int | float | str | None:
    """The value of a single-element data set, or the hex of anything else.

    R32 values are rounded to 7 significant digits, float32's precision, so that a
    setting of 4.2 reads back 4.2 and not 4.199999809 (no spurious settings drift)."""
    data = ds.data
    if ds.number == 1:
        t, n = ds.data_type, len(data)
        if t == DataType.TEXT:
            return data.decode("latin-1").rstrip("\x00")
        if t == DataType.UINT and n:
            return int.from_bytes(data, "little")
        if t == DataType.INT and n:
            return int.from_bytes(data, "little", signed=True)
        if t == DataType.REAL32 and n == 4:
            return float(f"{struct.unpack('<f', data)[0]:.7g}")
        if t == DataType.REAL64 and n == 8:
            return float(struct.unpack("<d", data)[0])
        if t == DataType.SINGLE_POINT and n == 1:
            return bool(data[0] & 0x01)
        if t == DataType.DOUBLE_POINT and n == 1:
            return {1: False, 2: True}.get(data[0] & 0x03)
    return data.hex() if data else None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericData(Asdu):
    """ASDU 10. `more_follows` (NGD CONT) says the answer continues in the next ASDU 10."""

    TYPE_ID: ClassVar[int] = 10
    BODY: ClassVar[Any] = Struct(
        "rii" / Int8ul,
        "ngd" / BitStruct("cont" / Flag, "count" / Flag, "no" / BitsInteger(6)),
        "sets" / Array(this.ngd.no, DATA_SET),
        Terminated,
    )

    rii: int
    sets: tuple[GenericDataSet, ...]
    more_follows: bool = False
    counter: bool = False

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> GenericData:
        sets = tuple(
            GenericDataSet(
                group=s.group,
                entry=s.entry,
                kod=s.kod,
                data_type=s.data_type,
                data_size=s.data_size,
                number=s.gdd3.number,
                cont=s.gdd3.cont,
                data=bytes(s.data),
            )
            for s in body.sets
        )
        return cls(
            **header,
            rii=body.rii,
            sets=sets,
            more_follows=body.ngd.cont,
            counter=body.ngd.count,
        )

    def to_body(self) -> dict[str, Any]:
        if len(self.sets) > 63:
            raise ValueError("at most 63 generic data sets fit one ASDU 10")
        return {
            "rii": self.rii,
            "ngd": {"cont": self.more_follows, "count": self.counter, "no": len(self.sets)},
            "sets": [
                {
                    "group": s.group,
                    "entry": s.entry,
                    "kod": s.kod,
                    "data_type": s.data_type,
                    "data_size": s.data_size,
                    "gdd3": {"cont": s.cont, "number": s.number},
                    "data": s.data,
                }
                for s in self.sets
            ],
        }


@dataclass(frozen=True, slots=True)
class GenericItem:
    """One generic identification asked for by ASDU 21: group, entry and kind of data."""

    group: int
    entry: int
    kod: int = KOD_ACTUAL_VALUE


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericCommand(Asdu):
    """ASDU 21. `rii` (return information identifier) comes back in the ASDU 10 answer."""

    TYPE_ID: ClassVar[int] = 21
    BODY: ClassVar[Any] = Struct(
        "rii" / Int8ul,
        "nog" / Int8ul,
        "idents" / Array(this.nog, Struct("group" / Int8ul, "entry" / Int8ul, "kod" / Int8ul)),
        Terminated,
    )

    rii: int
    items: tuple[GenericItem, ...] = ()

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> GenericCommand:
        items = tuple(GenericItem(i.group, i.entry, i.kod) for i in body.idents)
        return cls(**header, rii=body.rii, items=items)

    def to_body(self) -> dict[str, Any]:
        return {
            "rii": self.rii,
            "nog": len(self.items),
            "idents": [{"group": i.group, "entry": i.entry, "kod": i.kod} for i in self.items],
        }


GENERIC_TYPES: tuple[type[Asdu], ...] = (GenericData, GenericCommand)
