"""The procedures of one relay's initialisation and its settings reads, over the
driver's exchanges (`ProcedureIo`): time sync, general interrogation, the list of
recorded disturbances, generic-services settings. Each lends the bus to the other relays
between its exchanges (the driver's `poll_until` and `drain_class1` do)."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from protocols.iec103.codec.asdu_base import FUN_GLOBAL, Cot
from protocols.iec103.codec.asdu_messages import GeneralInterrogation, GiTermination, TimeSync
from protocols.iec103.codec.time import cp56_from_datetime
from protocols.iec103.link import StationRefused
from protocols.iec103.relay import STEP_RECORD_LIST, STEP_TIME_SYNC, DataFlowWait, Relay
from protocols.iec103.settings import SettingsReader
from protocols.iec103.transfer import RecordIo, request_record_list

log = logging.getLogger(__name__)


class ProcedureIo(RecordIo, Protocol):
    async def drain_class1(self, relay: Relay) -> None: ...


async def run_steps(io: ProcedureIo, relay: Relay) -> None:
    """The initialisation steps after reset, each removed only once it has been done:
    a step stopped by DFC (`DataFlowWait`) is run again, from its start, later."""
    while relay.steps:
        step = relay.steps[0]
        if step == STEP_TIME_SYNC:
            await io.send_asdu(  # the time is taken when it is really sent
                relay,
                TimeSync(
                    cot=Cot.TIME_SYNC,
                    common_address=relay.config.common_address,
                    fun=FUN_GLOBAL,
                    inf=0,
                    time=cp56_from_datetime(datetime.now(UTC)),
                ),
            )
            relay.steps.popleft()
            await io.drain_class1(relay)
        elif step == STEP_RECORD_LIST:
            await request_record_list(io, relay)
            relay.steps.popleft()
        else:
            await interrogate(io, relay)
            relay.steps.popleft()
    relay.settings_due = relay.config.read_settings or bool(relay.settings_waiters)


async def interrogate(io: ProcedureIo, relay: Relay) -> None:
    relay.scn = (relay.scn + 1) & 0xFF
    scn = relay.scn
    await io.send_asdu(
        relay,
        GeneralInterrogation(
            cot=Cot.GI,
            common_address=relay.config.common_address,
            fun=FUN_GLOBAL,
            inf=0,
            scn=scn,
        ),
    )
    end = await io.poll_until(relay, lambda a: isinstance(a, GiTermination) and a.scn == scn)
    relay.counters["gi_completed" if end else "gi_incomplete"] += 1


async def read_settings(io: ProcedureIo, relay: Relay) -> None:
    relay.settings_due = False
    signalled, relay.settings_signalled = relay.settings_signalled, False
    interval = relay.config.settings_interval_s
    relay.next_settings = time.monotonic() + interval if interval else float("inf")
    waiters, relay.settings_waiters = relay.settings_waiters, []
    reader = SettingsReader(relay.id, relay.config.common_address)
    try:
        obs = await reader.read(io, relay)
    except DataFlowWait:
        # read again from the start once the relay's buffer has room
        relay.settings_due = True
        relay.settings_signalled |= signalled
        relay.settings_waiters = waiters + relay.settings_waiters
        raise
    except StationRefused as exc:
        log.warning("device %s: settings read refused: %s", relay.id, exc)
        relay.counters["settings_refused"] += 1
        obs = None
    if obs is not None:
        await io.deliver([dataclasses.replace(obs, signalled=signalled)])
    result = {} if obs is None else {s.name: s.value for s in obs.settings}
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(result)
