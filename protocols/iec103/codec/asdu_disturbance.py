"""ASDU 23: the list of recorded disturbances (FAN, SOF, CP56Time2a per record).

We only read the directory: a new fault number becomes an event "disturbance record N
available", so the service center can ask for the record. The transfer itself (ASDUs 24-31)
is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from construct import Array, Int8ul, Int16ul, Struct, Terminated, this

from protocols.iec103.codec.asdu_base import Asdu
from protocols.iec103.codec.time import CP56, Cp56Time, cp56_from, cp56_to


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceRecord:
    fault_number: int
    sof: int  # status of fault: TP bit 0, TM bit 1, TEST bit 2, OTEV bit 3
    time: Cp56Time

    @property
    def trip(self) -> bool:
        return bool(self.sof & 0x01)

    @property
    def transmitted(self) -> bool:
        return bool(self.sof & 0x02)

    @property
    def test(self) -> bool:
        return bool(self.sof & 0x04)

    @property
    def other_event(self) -> bool:
        return bool(self.sof & 0x08)


@dataclass(frozen=True, slots=True, kw_only=True)
class DisturbanceList(Asdu):
    """The record count is the VSQ number (SQ=0 on the wire)."""

    TYPE_ID: ClassVar[int] = 23
    BODY: ClassVar[Any] = Struct(
        "records"
        / Array(
            this._params.vsq & 0x7F,  # noqa: SLF001 - construct's parse context, not a member
            Struct("fault_number" / Int16ul, "sof" / Int8ul, "time" / CP56),
        ),
        Terminated,
    )

    records: tuple[DisturbanceRecord, ...]
    vsq: int = 0

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> DisturbanceList:
        records = tuple(
            DisturbanceRecord(fault_number=r.fault_number, sof=r.sof, time=cp56_from(r.time))
            for r in body.records
        )
        return cls(**header, records=records)

    def to_body(self) -> dict[str, Any]:
        return {
            "records": [
                {"fault_number": r.fault_number, "sof": r.sof, "time": cp56_to(r.time)}
                for r in self.records
            ]
        }


DISTURBANCE_TYPES: tuple[type[Asdu], ...] = (DisturbanceList,)
