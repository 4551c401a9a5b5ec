"""The c104 information objects a simulated IEC 104 relay sends for its points' values.

Pure: a value, its quality flags and its device time in, a c104 `Information` out. Kept
apart from the relay (`simulator.relays.iec104.relay`), which owns the server, its buffer
and pacing, because tests and the load generator build the same objects to set points directly.

Time: c104 reads a datetime's wall-clock fields as *local* time and ignores tzinfo, so an
aware device time is converted to naive local time before c104 sees it; the wire then
carries the right UTC. (In a DST zone's repeated autumn hour c104 may pick the wrong
offset; run simulators with TZ=UTC where that matters.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import c104

KIND_TYPES = {
    "trip": "M_EP_TD_1",
    "start": "M_SP_TB_1",
    "alarm": "M_SP_TB_1",
    "status": "M_SP_TB_1",
    "self_check": "M_SP_TB_1",
    "measurement": "M_ME_TF_1",
}
SUPPORTED_TYPES = ("M_SP_TB_1", "M_DP_TB_1", "M_EP_TD_1", "M_ME_TF_1", "M_ME_NC_1")
_QUALITY = {
    "IV": c104.Quality.Invalid,
    "NT": c104.Quality.NonTopical,
    "SB": c104.Quality.Substituted,
    "BL": c104.Quality.Blocked,
    "OV": c104.Quality.Overflow,
    "EI": c104.Quality.ElapsedTimeInvalid,
}
_DOUBLE = {
    "off": c104.Double.OFF,
    "on": c104.Double.ON,
    "intermediate": c104.Double.INTERMEDIATE,
    "indeterminate": c104.Double.INDETERMINATE,
}
_EVENT = {"off": c104.EventState.OFF, "on": c104.EventState.ON,
          "intermediate": c104.EventState.INTERMEDIATE,
          "indeterminate": c104.EventState.INDETERMINATE}  # fmt: skip


def local_naive(at: datetime) -> datetime:
    """An aware datetime as the naive local wall-clock time c104 expects."""
    if at.tzinfo is None:
        raise ValueError("device times must be aware")
    return at.astimezone().replace(tzinfo=None)


def make_info(type_name: str, value: Any, quality: list[str], at: datetime) -> c104.Information:
    """The c104 information object for one value of a point of `type_name`."""
    q: Any = c104.Quality()
    for name in quality:
        q = q | _QUALITY[name]  # c104's stubs do not declare Quality's operators
    recorded = local_naive(at)
    state = _state_name(value)
    if type_name == "M_SP_TB_1":
        return c104.SingleInfo(on=state == "on", quality=q, recorded_at=recorded)
    if type_name == "M_DP_TB_1":
        return c104.DoubleInfo(state=_DOUBLE[state], quality=q, recorded_at=recorded)
    if type_name == "M_EP_TD_1":
        return c104.ProtectionEventInfo(
            state=_EVENT[state], elapsed_ms=c104.UInt16(0), quality=q, recorded_at=recorded
        )
    if type_name in ("M_ME_TF_1", "M_ME_NC_1"):
        return c104.ShortInfo(actual=float(value or 0.0), quality=q, recorded_at=recorded)
    raise ValueError(f"unsupported type {type_name}")


def _state_name(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.lower() in _DOUBLE else ("on" if value else "off")
    return "on" if value else "off"
