"""Reading a relay's settings through generic services (ASDU 21 asks, ASDU 10 answers).

Read-only: INF 240 (headings of all groups), then per group INF 241 twice, once for the
entries' descriptions (KOD 10, the setting names) and once for their actual values (KOD 1).
An answer may span several ASDU 10s (NGD CONT bit); they are collected by RII.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from protocols.iec103.codec.asdu_base import FUN_GENERIC, Asdu, Cot
from protocols.iec103.codec.asdu_generic import (
    INF_READ_GROUP,
    INF_READ_HEADINGS,
    KOD_ACTUAL_VALUE,
    KOD_DESCRIPTION,
    GenericCommand,
    GenericData,
    GenericDataSet,
    GenericItem,
    generic_value,
)
from protocols.observations import SettingsObservation, SettingValue

log = logging.getLogger(__name__)

SOURCE = "103 generic services"


class GenericIo(Protocol):
    """What the reader needs from the driver: send/confirm and poll-until."""

    async def send_asdu(self, relay: Any, asdu: Asdu) -> None: ...

    async def poll_until(self, relay: Any, done: Callable[[Asdu], bool]) -> Asdu | None: ...


class SettingsReader:
    _rii = 0  # shared across readers so a late answer never matches a new request

    def __init__(self, device_id: str, common_address: int) -> None:
        self.device_id = device_id
        self.common_address = common_address

    async def read(self, io: GenericIo, relay: Any) -> SettingsObservation | None:
        headings = await self._request(
            io, relay, INF_READ_HEADINGS, GenericItem(0, 0, KOD_DESCRIPTION)
        )
        if headings is None:
            return None
        groups = {
            s.group: str(generic_value(s) or f"group {s.group}")
            for s in headings
            if s.kod == KOD_DESCRIPTION
        }
        settings: list[SettingValue] = []
        seen: set[str] = set()
        for group, group_name in sorted(groups.items()):
            names = await self._request(
                io, relay, INF_READ_GROUP, GenericItem(group, 0, KOD_DESCRIPTION)
            )
            values = await self._request(
                io, relay, INF_READ_GROUP, GenericItem(group, 0, KOD_ACTUAL_VALUE)
            )
            if names is None or values is None:
                return None
            name_of = {s.entry: str(generic_value(s)) for s in names if s.entry}
            for s in values:
                if not s.entry:
                    continue
                name = name_of.get(s.entry, f"{group}.{s.entry}")
                if name in seen:  # the same name in two groups: qualify, never overwrite
                    name = f"{group_name}/{name}"
                seen.add(name)
                settings.append(SettingValue(name, generic_value(s), None, group_name))
        log.info(
            "device %s: read %d settings in %d groups", self.device_id, len(settings), len(groups)
        )
        return SettingsObservation(self.device_id, tuple(settings), SOURCE)

    async def _request(
        self, io: GenericIo, relay: Any, inf: int, item: GenericItem
    ) -> list[GenericDataSet] | None:
        SettingsReader._rii = rii = (SettingsReader._rii + 1) & 0xFF
        await io.send_asdu(
            relay,
            GenericCommand(
                cot=Cot.GENERIC_READ,
                common_address=self.common_address,
                fun=FUN_GENERIC,
                inf=inf,
                rii=rii,
                items=(item,),
            ),
        )
        sets: list[GenericDataSet] = []
        while True:
            answer = await io.poll_until(
                relay, lambda a: isinstance(a, GenericData) and a.rii == rii
            )
            if not isinstance(answer, GenericData):
                return None
            if answer.cot == Cot.GENERIC_READ_NACK:
                log.warning("device %s: generic read INF %d refused", self.device_id, inf)
                return None
            sets.extend(answer.sets)
            if not answer.more_follows:
                return sets
