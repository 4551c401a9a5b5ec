"""CP32Time2a and CP56Time2a, the time tags of IEC 60870-5-103.

Every bit is kept, reserved ones included, so that `encode(decode(b)) == b` for any input:
the codec never "cleans" what a relay sent. Conversion to `datetime` is separate because a
CP32 tag has no date and must be completed against a reference clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from construct import BitsInteger, BitStruct, ConstructError, Flag, Int16ul, Struct

from protocols.errors import DecodeError

CP32 = Struct(
    "milliseconds" / Int16ul,
    "b2" / BitStruct("invalid" / Flag, "res1" / Flag, "minute" / BitsInteger(6)),
    "b3" / BitStruct("summer_time" / Flag, "res2" / BitsInteger(2), "hour" / BitsInteger(5)),
)

CP56 = Struct(
    "milliseconds" / Int16ul,
    "b2" / BitStruct("invalid" / Flag, "res1" / Flag, "minute" / BitsInteger(6)),
    "b3" / BitStruct("summer_time" / Flag, "res2" / BitsInteger(2), "hour" / BitsInteger(5)),
    "b4" / BitStruct("day_of_week" / BitsInteger(3), "day" / BitsInteger(5)),
    "b5" / BitStruct("res3" / BitsInteger(4), "month" / BitsInteger(4)),
    "b6" / BitStruct("res4" / Flag, "year" / BitsInteger(7)),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cp32Time:
    """Milliseconds within the minute, minute and hour; no date (CP32Time2a)."""

    milliseconds: int
    minute: int
    hour: int
    invalid: bool = False
    summer_time: bool = False
    res1: bool = False
    res2: int = 0

    @property
    def flags(self) -> tuple[str, ...]:
        return _flags(self.invalid, self.summer_time)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cp56Time:
    """A full time stamp (CP56Time2a); `year` is 0-99 meaning 2000-2099."""

    milliseconds: int
    minute: int
    hour: int
    day: int
    month: int
    year: int
    day_of_week: int = 0
    invalid: bool = False
    summer_time: bool = False
    res1: bool = False
    res2: int = 0
    res3: int = 0
    res4: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        return _flags(self.invalid, self.summer_time)


def _flags(invalid: bool, summer_time: bool) -> tuple[str, ...]:
    return tuple(name for name, on in (("invalid", invalid), ("summer_time", summer_time)) if on)


def cp32_from(c: Any) -> Cp32Time:
    return Cp32Time(
        milliseconds=c.milliseconds,
        minute=c.b2.minute,
        hour=c.b3.hour,
        invalid=c.b2.invalid,
        summer_time=c.b3.summer_time,
        res1=c.b2.res1,
        res2=c.b3.res2,
    )


def cp32_to(t: Cp32Time) -> dict[str, Any]:
    return {
        "milliseconds": t.milliseconds,
        "b2": {"invalid": t.invalid, "res1": t.res1, "minute": t.minute},
        "b3": {"summer_time": t.summer_time, "res2": t.res2, "hour": t.hour},
    }


def cp56_from(c: Any) -> Cp56Time:
    return Cp56Time(
        milliseconds=c.milliseconds,
        minute=c.b2.minute,
        hour=c.b3.hour,
        day=c.b4.day,
        month=c.b5.month,
        year=c.b6.year,
        day_of_week=c.b4.day_of_week,
        invalid=c.b2.invalid,
        summer_time=c.b3.summer_time,
        res1=c.b2.res1,
        res2=c.b3.res2,
        res3=c.b5.res3,
        res4=c.b6.res4,
    )


def cp56_to(t: Cp56Time) -> dict[str, Any]:
    return {
        **cp32_to(
            Cp32Time(
                milliseconds=t.milliseconds,
                minute=t.minute,
                hour=t.hour,
                invalid=t.invalid,
                summer_time=t.summer_time,
                res1=t.res1,
                res2=t.res2,
            )
        ),
        "b4": {"day_of_week": t.day_of_week, "day": t.day},
        "b5": {"res3": t.res3, "month": t.month},
        "b6": {"res4": t.res4, "year": t.year},
    }


def decode_cp32(data: bytes) -> Cp32Time:
    try:
        return cp32_from(CP32.parse(data))
    except (ConstructError, IndexError) as exc:
        raise DecodeError(f"CP32Time2a: {exc}") from exc


def encode_cp32(t: Cp32Time) -> bytes:
    return bytes(CP32.build(cp32_to(t)))


def decode_cp56(data: bytes) -> Cp56Time:
    try:
        return cp56_from(CP56.parse(data))
    except (ConstructError, IndexError) as exc:
        raise DecodeError(f"CP56Time2a: {exc}") from exc


def encode_cp56(t: Cp56Time) -> bytes:
    return bytes(CP56.build(cp56_to(t)))


# --- conversions -----------------------------------------------------------------------------
# Relays are synchronised by us in UTC (ASDU 6), so their tags are read as UTC; the SU flag
# is kept as a flag, never applied.


def cp56_from_datetime(when: datetime, *, invalid: bool = False) -> Cp56Time:
    utc = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return Cp56Time(
        milliseconds=utc.second * 1000 + utc.microsecond // 1000,
        minute=utc.minute,
        hour=utc.hour,
        day=utc.day,
        month=utc.month,
        year=utc.year % 100,
        day_of_week=utc.isoweekday(),
        invalid=invalid,
    )


def cp32_from_datetime(when: datetime, *, invalid: bool = False) -> Cp32Time:
    utc = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return Cp32Time(
        milliseconds=utc.second * 1000 + utc.microsecond // 1000,
        minute=utc.minute,
        hour=utc.hour,
        invalid=invalid,
    )


def cp56_to_datetime(t: Cp56Time) -> datetime:
    """Raises `DecodeError` for a tag that names no real instant (month 13, 61 s, ...)."""
    try:
        return datetime(
            2000 + t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.milliseconds // 1000,
            (t.milliseconds % 1000) * 1000,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise DecodeError(f"CP56Time2a out of range: {exc}") from exc


def cp32_to_datetime(t: Cp32Time, reference: datetime) -> datetime:
    """Complete a date-less CP32 tag with the date that puts it nearest to `reference`
    (an event is at most a few hours old when it reaches us; relays keep their own date)."""
    if t.hour > 23 or t.minute > 59 or t.milliseconds > 59_999:
        raise DecodeError(f"CP32Time2a out of range: {t}")
    ref = reference.astimezone(UTC)
    base = ref.replace(
        hour=t.hour,
        minute=t.minute,
        second=t.milliseconds // 1000,
        microsecond=(t.milliseconds % 1000) * 1000,
    )
    candidates = (base - timedelta(days=1), base, base + timedelta(days=1))
    return min(candidates, key=lambda c: abs(c - ref))
