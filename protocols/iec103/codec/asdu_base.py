"""What every 103 ASDU shares: the header `TYP VSQ COT CA FUN INF` and the class layout the
family modules (`asdu_messages`, `asdu_measurands`, `asdu_generic`, `asdu_disturbance`)
follow. `asdu` ties the families together."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar

from construct import ConstructError, Int8ul, Struct


def compiled(construct: Any) -> Any:
    """construct's compiled form parses ~10x faster; a struct it cannot compile (one with a
    Python callable inside) stays interpreted. Same results and errors either way."""
    try:
        return construct.compile()
    except (SyntaxError, NotImplementedError, KeyError, TypeError):
        return construct


# What a parse of bad bytes may raise: construct's own errors from interpreted structs,
# struct/index errors from compiled ones. The codec turns them all into DecodeError.
PARSE_ERRORS: tuple[type[Exception], ...] = (ConstructError, struct.error, IndexError, ValueError)

HEADER = Struct(
    "type_id" / Int8ul,
    "vsq" / Int8ul,
    "cot" / Int8ul,
    "common_address" / Int8ul,
    "fun" / Int8ul,
    "inf" / Int8ul,
).compile()
HEADER_SIZE = 6

# Causes of transmission (IEC 60870-5-103 §7.2.3), named as observations carry them.
COT_NAMES: dict[int, str] = {
    1: "spontaneous",
    2: "cyclic",
    3: "reset_fcb",
    4: "reset_cu",
    5: "start_restart",
    6: "power_on",
    7: "test_mode",
    8: "time_sync",
    9: "general_interrogation",
    10: "gi_termination",
    11: "local_operation",
    12: "remote_operation",
    20: "command_ack",
    21: "command_nack",
    31: "disturbance_data",
    40: "generic_write",
    41: "generic_write_nack",
    42: "generic_read",
    43: "generic_read_nack",
    44: "generic_write_confirm",
}


class Cot:
    SPONTANEOUS = 1
    CYCLIC = 2
    RESET_FCB = 3
    RESET_CU = 4
    START_RESTART = 5
    POWER_ON = 6
    TIME_SYNC = 8
    GI = 9
    GI_END = 10
    DISTURBANCE = 31
    GENERIC_READ = 42
    GENERIC_READ_NACK = 43


FUN_GLOBAL = 255  # function type of GI and time sync
FUN_GENERIC = 254  # function type of generic services


def cot_name(cot: int) -> str:
    return COT_NAMES.get(cot, f"cot_{cot}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Asdu:
    """Header fields every ASDU carries; subclasses add their information elements.

    `vsq` is kept as received (relays disagree on it for ASDU 3/9), so re-encoding a
    decoded ASDU gives back the same bytes.
    """

    TYPE_ID: ClassVar[int] = 0
    BODY: ClassVar[Any] = None

    cot: int
    common_address: int
    fun: int
    inf: int
    vsq: int = 0x81

    @classmethod
    def from_body(cls, header: dict[str, int], body: Any) -> Asdu:
        raise NotImplementedError

    def to_body(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def address(self) -> str:
        """The point address form of observations: `"<fun>/<inf>"`."""
        return f"{self.fun}/{self.inf}"


def header_fields(header: Any) -> dict[str, int]:
    return {
        "cot": header.cot,
        "common_address": header.common_address,
        "fun": header.fun,
        "inf": header.inf,
        "vsq": header.vsq,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownAsdu(Asdu):
    """A well-framed ASDU of a type this codec does not decode: kept whole, never dropped."""

    type_id: int
    payload: bytes = b""
