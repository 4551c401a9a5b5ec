"""Pure answers of a simulated IEC 103 relay to a general interrogation (ASDU 7) and to a
generic-services read of its settings (ASDU 21): the ASDUs it queues as class-1 data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from profiles.model import Profile
from protocols.iec103.codec.asdu_base import FUN_GENERIC, FUN_GLOBAL, Asdu, Cot
from protocols.iec103.codec.asdu_generic import (
    INF_READ_GROUP,
    INF_READ_HEADINGS,
    KOD_DESCRIPTION,
    GenericCommand,
    GenericData,
    GenericDataSet,
)
from protocols.iec103.codec.asdu_messages import GiTermination, TimeTaggedMessage
from protocols.iec103.codec.time import cp32_from_datetime

SETTINGS_GROUP = 1
MAX_ASDU10 = 200  # octets of generic data sets per ASDU 10, to stay inside one frame


def gi_answers(
    profile: Profile, states: Mapping[str, int], scn: int, common_address: int
) -> list[tuple[Asdu, Any]]:
    """Every point's state (ASDU 1, COT 9), then the termination with the scan number."""
    t = cp32_from_datetime(datetime.now(UTC))
    out: list[tuple[Asdu, Any]] = []
    for point in profile.points:
        if point.kind == "measurement" or "." in point.address:
            continue
        fun, inf = (int(x) for x in point.address.split("/"))
        message = TimeTaggedMessage(
            cot=Cot.GI,
            common_address=common_address,
            fun=fun,
            inf=inf,
            dpi=states.get(point.address, 1),
            time=t,
        )
        out.append((message, ("gi", point.address)))
    end = GiTermination(
        cot=Cot.GI_END, common_address=common_address, fun=FUN_GLOBAL, inf=0, scn=scn
    )
    out.append((end, ("gi_end", scn)))
    return out


def generic_read_answers(
    cmd: GenericCommand, settings: Mapping[str, bool | int | float | str], common_address: int
) -> list[GenericData]:
    """One settings group: its heading (INF 240), its entries' names (KOD 10) or values
    (INF 241), in as many ASDU 10 as it takes (NGD CONT bit)."""
    item = cmd.items[0]
    sets: list[GenericDataSet] = []
    if cmd.inf == INF_READ_HEADINGS:
        sets = [GenericDataSet.of_value(SETTINGS_GROUP, 0, "settings", KOD_DESCRIPTION)]
    elif cmd.inf == INF_READ_GROUP and item.group == SETTINGS_GROUP:
        for i, name in enumerate(settings, 1):
            value = name if item.kod == KOD_DESCRIPTION else settings[name]
            sets.append(GenericDataSet.of_value(SETTINGS_GROUP, i, value, item.kod))
    cot = Cot.GENERIC_READ if sets or cmd.inf == INF_READ_GROUP else Cot.GENERIC_READ_NACK
    chunks: list[list[GenericDataSet]] = [[]]
    size = 0
    for s in sets:
        if chunks[-1] and (size + 6 + len(s.data) > MAX_ASDU10 or len(chunks[-1]) == 63):
            chunks.append([])
            size = 0
        chunks[-1].append(s)
        size += 6 + len(s.data)
    return [
        GenericData(
            cot=cot,
            common_address=common_address,
            fun=FUN_GENERIC,
            inf=cmd.inf,
            rii=cmd.rii,
            sets=tuple(chunk),
            more_follows=n < len(chunks) - 1,
        )
        for n, chunk in enumerate(chunks)
    ]
