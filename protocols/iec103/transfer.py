"""Fetching one disturbance record from a relay (IEC 60870-5-103 §7.4.3), as the master.

    master                                  relay
    ASDU 24 select fault (TOO 1, FAN)   ->
                                        <-  ASDU 26 ready for disturbance data
    ASDU 24 request data (TOO 2)        ->
                                        <-  ASDU 28 ready for tags (if it has tags)
    ASDU 24 request tags (TOO 16)       ->
                                        <-  ASDU 29 ... , ASDU 31 end of tags (TOO 38)
    ASDU 25 tags OK (TOO 68)            ->
                  per channel:          <-  ASDU 27 ready for a channel (ACC, RPV, RSV, RFA)
    ASDU 24 request channel (TOO 8)     ->
                                        <-  ASDU 30 ... , ASDU 31 end of channel (TOO 35)
    ASDU 25 channel OK (TOO 66)         ->
                                        <-  ASDU 31 end of data (TOO 32)
    (the record is stored)
    ASDU 25 data OK (TOO 64)            ->

Every relay ASDU comes as class-1 data; `poll_until` polls for it and lends the bus to the
other relays between exchanges, and the relay's own events that arrive meanwhile are
delivered as usual. `fetch` returns the assembled record; the caller stores it and only
then sends the positive acknowledgement (`acknowledge`). Any deviation (an abort by the
relay, a timeout, a restart of the relay, an inconsistent record) raises `TransferFailed`;
the caller aborts with ASDU 24 TOO 3 and starts again from the selection later.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from protocols.iec103.codec.asdu_base import Asdu, Cot
from protocols.iec103.codec.asdu_disturbance import DisturbanceList, DisturbanceRecord
from protocols.iec103.codec.asdu_messages import Identification
from protocols.iec103.codec.asdu_transfer import (
    ChannelReady,
    DisturbanceAck,
    DisturbanceOrder,
    DisturbanceReady,
    DisturbanceValues,
    Tags,
    TagsReady,
    Too,
    TransferEnd,
)
from protocols.iec103.disturbance_record import RecordAssembly, RecordInvalid
from protocols.iec103.link import StationRefused
from protocols.iec103.relay import DataFlowWait, Relay
from protocols.iec103.settings import GenericIo
from protocols.observations import DisturbanceObservation, Observation

log = logging.getLogger(__name__)

# A relay that restarts says so with ASDU 5 (COT reset FCB/CU, start/restart, power on).
RESTART_COTS = frozenset({Cot.RESET_FCB, Cot.RESET_CU, Cot.START_RESTART, Cot.POWER_ON})
ABORTS = {
    Too.END_DATA_ABORTED_BY_RELAY: "the relay aborted the record",
    Too.END_DATA_ABORTED_BY_MASTER: "the record was aborted",
    Too.END_CHANNEL_ABORTED_BY_RELAY: "the relay aborted a channel",
    Too.END_CHANNEL_ABORTED_BY_MASTER: "a channel was aborted",
    Too.END_TAGS_ABORTED_BY_RELAY: "the relay aborted the tags",
    Too.END_TAGS_ABORTED_BY_MASTER: "the tags were aborted",
}


class TransferFailed(Exception):
    """The record was not transferred whole; the relay still has it."""


class RecordFetcher:
    def __init__(self, device_id: str, common_address: int, fun: int) -> None:
        self.device_id = device_id
        self.common_address = common_address
        self.fun = fun

    async def fetch(
        self, io: GenericIo, relay: Any, entry: DisturbanceRecord
    ) -> DisturbanceObservation:
        fan = entry.fault_number
        record = RecordAssembly(entry)
        try:
            await self.order(io, relay, Too.SELECT_FAULT, fan)
            ready = await self._expect(io, relay, fan, DisturbanceReady)
            assert isinstance(ready, DisturbanceReady)
            record.start(ready)
            await self.order(io, relay, Too.REQUEST_DATA, fan)
            while True:
                asdu = await self._expect(io, relay, fan, TagsReady | ChannelReady | TransferEnd)
                if isinstance(asdu, TagsReady):
                    await self._tags(io, relay, record)
                elif isinstance(asdu, ChannelReady):
                    await self._channel(io, relay, record, asdu)
                elif isinstance(asdu, TransferEnd) and asdu.too == Too.END_DATA:
                    return record.build(self.device_id)
                else:
                    raise TransferFailed(f"unexpected end of transmission: {asdu}")
        except RecordInvalid as exc:
            raise TransferFailed(str(exc)) from exc

    async def acknowledge(self, io: GenericIo, relay: Any, fan: int, ok: bool) -> None:
        """ASDU 25 for the whole record: TOO 64 once it is stored, 65 when it could not be."""
        too = Too.DATA_OK if ok else Too.DATA_NOT_OK
        await io.send_asdu(relay, self._asdu(DisturbanceAck, too, fan))

    async def abort(self, io: GenericIo, relay: Any, fan: int) -> None:
        """ASDU 24 TOO 3: the relay may drop what it prepared; the next try selects again."""
        await self.order(io, relay, Too.ABORT_DATA, fan)

    async def _tags(self, io: GenericIo, relay: Any, record: RecordAssembly) -> None:
        fan = record.fault_number
        await self.order(io, relay, Too.REQUEST_TAGS, fan)
        end = await self._collect(io, relay, fan, Tags, record.add_tags)
        if end.too != Too.END_TAGS:
            raise TransferFailed(ABORTS.get(end.too, f"tags ended with TOO {end.too}"))
        await io.send_asdu(relay, self._asdu(DisturbanceAck, Too.TAGS_OK, fan))

    async def _channel(
        self, io: GenericIo, relay: Any, record: RecordAssembly, ready: ChannelReady
    ) -> None:
        fan, acc = record.fault_number, ready.channel
        record.start_channel(ready)
        await self.order(io, relay, Too.REQUEST_CHANNEL, fan, acc)
        end = await self._collect(io, relay, fan, DisturbanceValues, record.add_values)
        if end.too != Too.END_CHANNEL:
            raise TransferFailed(ABORTS.get(end.too, f"channel ended with TOO {end.too}"))
        if not record.channel_complete(acc):
            await io.send_asdu(relay, self._asdu(DisturbanceAck, Too.CHANNEL_NOT_OK, fan, acc))
            raise TransferFailed(f"channel {acc} ended before all its samples came")
        await io.send_asdu(relay, self._asdu(DisturbanceAck, Too.CHANNEL_OK, fan, acc))

    async def _collect(
        self, io: GenericIo, relay: Any, fan: int, kind: type[Any], add: Callable[[Any], None]
    ) -> TransferEnd:
        """Feed every `kind` ASDU to `add` until the ASDU 31 that ends them."""
        while True:
            asdu = await self._expect(io, relay, fan, kind | TransferEnd)
            if isinstance(asdu, TransferEnd):
                return asdu
            add(asdu)

    async def _expect(self, io: GenericIo, relay: Any, fan: int, kinds: Any) -> Asdu:
        """The next transfer ASDU of this record; an abort or a restart of the relay, or
        none within the procedure timeout, is `TransferFailed`."""

        def done(asdu: Asdu) -> bool:
            if isinstance(asdu, Identification) and asdu.cot in RESTART_COTS:
                return True
            return isinstance(asdu, kinds) and getattr(asdu, "fault_number", None) == fan

        asdu = await io.poll_until(relay, done)
        if asdu is None:
            raise TransferFailed("no answer within the procedure timeout")
        if isinstance(asdu, Identification):
            raise TransferFailed("the relay restarted")
        if isinstance(asdu, TransferEnd) and asdu.too in ABORTS:
            raise TransferFailed(ABORTS[asdu.too])
        return asdu

    async def order(self, io: GenericIo, relay: Any, too: int, fan: int, acc: int = 0) -> None:
        await io.send_asdu(relay, self._asdu(DisturbanceOrder, too, fan, acc))

    def _asdu(self, cls: Callable[..., Asdu], too: int, fan: int, acc: int = 0) -> Asdu:
        return cls(
            cot=Cot.DISTURBANCE,
            common_address=self.common_address,
            fun=self.fun,
            inf=0,
            too=too,
            fault_number=fan,
            channel=acc,
        )


class RecordIo(GenericIo, Protocol):
    """What the record procedures need from the driver, beyond send and poll-until."""

    async def deliver(self, observations: Sequence[Observation]) -> None: ...


async def request_record_list(io: RecordIo, relay: Relay) -> None:
    """ASDU 24 TOO 24 after the initialisation: records the relay announced while the
    agent was away are queued too. A relay that refuses it (NACK) stays up."""
    fetcher = RecordFetcher(relay.id, relay.config.common_address, relay.record_fun)
    try:
        await fetcher.order(io, relay, Too.REQUEST_LIST, 0)
    except StationRefused:
        relay.counters["record_list_refused"] += 1
        log.info("device %s: no list of recorded disturbances (refused)", relay.id)
        return
    if await io.poll_until(relay, lambda a: isinstance(a, DisturbanceList)) is None:
        relay.counters["record_list_missing"] += 1


async def fetch_record(io: RecordIo, relay: Relay, entry: DisturbanceRecord) -> None:
    """One record, whole: stored (`deliver`) before the relay gets the positive ASDU 25.
    A failure leaves it queued, to be fetched again from its selection."""
    assert relay.records is not None
    fetcher = RecordFetcher(relay.id, relay.config.common_address, relay.record_fun)
    fan = entry.fault_number
    try:
        record = await fetcher.fetch(io, relay, entry)
    except (TransferFailed, StationRefused) as exc:
        _failed(relay, entry, str(exc))
        with contextlib.suppress(StationRefused, DataFlowWait):
            await fetcher.abort(io, relay, fan)
        return
    try:
        await io.deliver([record])
    except Exception as exc:  # noqa: BLE001 - whatever the store says, the relay keeps it
        log.error("device %s: record %d not stored: %r", relay.id, fan, exc)
        _failed(relay, entry, f"not stored: {exc!r}")
        with contextlib.suppress(StationRefused, DataFlowWait):
            await fetcher.acknowledge(io, relay, fan, ok=False)
        return
    relay.records.done(entry)
    relay.counters["records_fetched"] += 1
    log.info("device %s: disturbance record %d stored", relay.id, fan)
    with contextlib.suppress(StationRefused):
        await fetcher.acknowledge(io, relay, fan, ok=True)


def _failed(relay: Relay, entry: DisturbanceRecord, reason: str) -> None:
    assert relay.records is not None
    relay.counters["records_failed"] += 1
    retry = relay.records.failed(entry, time.monotonic(), relay.config.offline_retry_s)
    log.warning(
        "device %s: disturbance record %d: %s; %s",
        relay.id,
        entry.fault_number,
        reason,
        "fetched again later" if retry else "given up",
    )
    if not retry:
        relay.counters["records_abandoned"] += 1
