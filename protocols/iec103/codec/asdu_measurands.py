"""Measurand ASDUs 3 and 9: a list of 16-bit measurands, each `value:13 | RES | ER | OV`.

The value is a fraction of the relay's nominal range (x 1.2 or x 2.4 of rated, fixed by the
FUN/INF); the scale to engineering units belongs to the profile's `[iec103] scale`.
The number of values comes from the length, because relays disagree on the VSQ of these
ASDUs (81H by the standard's tables, N by others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from construct import GreedyRange, Int16ul, Struct, Terminated

from protocols.iec103.codec.asdu_base import Asdu


@dataclass(frozen=True, slots=True)
class Measurand:
    """One raw measurand word, kept whole (bit 2 is reserved but round-trips)."""

    raw: int

    @property
    def overflow(self) -> bool:
        return bool(self.raw & 0x01)

    @property
    def error(self) -> bool:
        return bool(self.raw & 0x02)

    @property
    def value(self) -> float:
        """(raw as i16 >> 3) / 4096: the signed 13-bit fraction in [-1, 1)."""
        signed = self.raw - 0x10000 if self.raw & 0x8000 else self.raw
        return (signed >> 3) / 4096

    @property
    def quality(self) -> tuple[str, ...]:
        return tuple(q for q, on in (("OV", self.overflow), ("ER", self.error)) if on)

    @classmethod
    def of(cls, value: float, *, overflow: bool = False, error: bool = False) -> Measurand:
        """Encode a fraction; values outside [-1, 1) saturate and set OV, as relays do."""
        scaled = round(value * 4096)
        if scaled > 4095 or scaled < -4096:
            overflow = True
            scaled = max(-4096, min(4095, scaled))
        word = (scaled << 3) & 0xFFFF
        return cls(word | (0x01 if overflow else 0) | (0x02 if error else 0))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Measurands(Asdu):
    BODY: ClassVar[Any] = Struct("words" / GreedyRange(Int16ul), Terminated)

    values: tuple[Measurand, ...]

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> _Measurands:
        return cls(**header, values=tuple(Measurand(v) for v in body.words))

    def to_body(self) -> dict[str, Any]:
        return {"words": [m.raw for m in self.values]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurands1(_Measurands):
    """ASDU 3: up to four measurands (I, or I/V/P/Q per INF 144-147)."""

    TYPE_ID: ClassVar[int] = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurands2(_Measurands):
    """ASDU 9: up to nine measurands (IL1-3, VL1-3, P, Q, f for INF 148)."""

    TYPE_ID: ClassVar[int] = 9


MEASURAND_TYPES: tuple[type[Asdu], ...] = (Measurands1, Measurands2)
