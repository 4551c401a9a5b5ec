"""The disturbance recorder of a simulated IEC 103 relay: its records and the relay side
of the transfer (IEC 60870-5-103 §7.4.3; the master side is `protocols/iec103/transfer.py`).

A record is synthesised from a `FaultSpec` (`simulator/waveforms.py`) and announced with
ASDU 23. The master's orders (ASDU 24) and acknowledgements (ASDU 25) queue the answers
(ASDUs 23, 26-31) here; the relay serves them as class-1 data after its events, so its
events keep their priority over a transfer.

Test hooks: a record's `abort_after` makes the relay abort its transfer (ASDU 31 TOO 34)
after that many ASDU 30, once; `orders` lists every ASDU 24/25 received as
(type, TOO, FAN, ACC); `acknowledged` the records positively acknowledged (TOO 64),
`refused` those negatively acknowledged (TOO 65); `values_served` counts the ASDU 30 the
master has polled (the relay's `interrupt_after` acts on it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from protocols.iec103.codec.asdu import encode_asdu
from protocols.iec103.codec.asdu_base import Asdu, Cot
from protocols.iec103.codec.asdu_disturbance import DisturbanceList, DisturbanceRecord
from protocols.iec103.codec.asdu_transfer import (
    MAX_VALUES_PER_ASDU,
    ChannelReady,
    DisturbanceAck,
    DisturbanceOrder,
    DisturbanceReady,
    DisturbanceValues,
    Tag,
    Tags,
    TagsReady,
    Too,
    TransferEnd,
)
from protocols.iec103.codec.time import cp32_from_datetime, cp56_from_datetime
from simulator.waveforms import FaultSpec, SynthRecord, synthesise

DIRECTORY_SIZE = 8  # records a relay keeps; older ones are overwritten
MAX_TAGS_PER_ASDU = 80  # (253 - 6 header - 5) / 3 octets per tag
DPI = {True: 2, False: 1}


@dataclass
class SimRecord:
    entry: DisturbanceRecord
    synth: SynthRecord
    first_sample: datetime
    abort_after: int | None = None


class RecordServer:
    def __init__(self, common_address: int, fun: int) -> None:
        self.common_address, self.fun = common_address, fun
        self.records: dict[int, SimRecord] = {}
        self.queue: deque[bytes] = deque()
        self.selected: SimRecord | None = None
        self.channel_index = 0
        self.values_sent = 0  # ASDU 30 queued in this transfer
        self.values_served = 0  # ASDU 30 the master has polled, all transfers
        self.orders: list[tuple[int, int, int, int]] = []
        self.acknowledged: list[int] = []
        self.refused: list[int] = []

    def add(
        self,
        fault_number: int,
        inception: datetime,
        spec: FaultSpec,
        *,
        abort_after: int | None = None,
    ) -> DisturbanceList:
        """Record a fault that started at `inception`; returns the directory to announce."""
        first = inception - timedelta(milliseconds=spec.pre_fault_ms)
        return self.keep(fault_number, inception, first, synthesise(spec), abort_after)

    def keep(
        self,
        fault_number: int,
        trigger: datetime,
        first_sample: datetime,
        synth: SynthRecord,
        abort_after: int | None = None,
    ) -> DisturbanceList:
        """Keep a record as it is (synthesised, or replayed from COMTRADE); returns the
        directory to announce."""
        entry = DisturbanceRecord(
            fault_number=fault_number, sof=0x01, time=cp56_from_datetime(trigger)
        )
        self.records.pop(entry.fault_number, None)  # a number used again is the newest
        self.records[entry.fault_number] = SimRecord(entry, synth, first_sample, abort_after)
        while len(self.records) > DIRECTORY_SIZE:
            del self.records[next(iter(self.records))]
        return self.directory(Cot.DISTURBANCE)

    def directory(self, cot: int) -> DisturbanceList:
        return DisturbanceList(
            cot=cot,
            common_address=self.common_address,
            fun=self.fun,
            inf=0,
            records=tuple(r.entry for r in self.records.values()),
        )

    def next_answer(self) -> bytes:
        """The next queued ASDU, for a class-1 poll."""
        raw = self.queue.popleft()
        if raw[0] == DisturbanceValues.TYPE_ID:
            self.values_served += 1
        return raw

    def reset(self) -> None:
        """A reset or restart of the relay ends any transfer in progress."""
        self.queue.clear()
        self.selected = None

    def handle(self, asdu: DisturbanceOrder | DisturbanceAck) -> None:
        self.orders.append((asdu.TYPE_ID, asdu.too, asdu.fault_number, asdu.channel))
        if isinstance(asdu, DisturbanceOrder):
            self._order(asdu)
        else:
            self._ack(asdu)

    def _order(self, order: DisturbanceOrder) -> None:
        too, fan = order.too, order.fault_number
        if too == Too.REQUEST_LIST:
            self._send(self.directory(Cot.DISTURBANCE))
        elif too == Too.SELECT_FAULT:
            self.reset()
            record = self.records.get(fan)
            if record is None:  # overwritten meanwhile
                self._send(self._end(Too.END_DATA_ABORTED_BY_RELAY, fan))
                return
            self.selected, self.channel_index, self.values_sent = record, 0, 0
            self._send(self._ready(record))
        elif too == Too.ABORT_DATA:
            self.reset()
        elif (record := self._current(fan)) is None:
            return
        elif too == Too.REQUEST_DATA:
            if record.synth.tags:
                self._send(TagsReady(**self._head(), fault_number=fan))
            else:
                self._offer_channel(record)
        elif too == Too.REQUEST_TAGS:
            self._send_tags(record)
        elif too == Too.REQUEST_CHANNEL:
            self._send_channel(record, order.channel)

    def _ack(self, ack: DisturbanceAck) -> None:
        too, fan = ack.too, ack.fault_number
        if too in (Too.DATA_OK, Too.DATA_NOT_OK):
            (self.acknowledged if too == Too.DATA_OK else self.refused).append(fan)
            self.selected = None
            return
        record = self._current(fan)
        if record is None:
            return
        if too in (Too.TAGS_OK, Too.TAGS_NOT_OK):
            self._offer_channel(record)
        elif too == Too.CHANNEL_OK:
            self.channel_index += 1
            self._offer_channel(record)
        elif too == Too.CHANNEL_NOT_OK:
            self._offer_channel(record)  # the same channel again

    def _current(self, fan: int) -> SimRecord | None:
        record = self.selected
        return record if record is not None and record.entry.fault_number == fan else None

    def _ready(self, record: SimRecord) -> DisturbanceReady:
        return DisturbanceReady(
            **self._head(),
            fault_number=record.entry.fault_number,
            faults=1,
            channels=len(record.synth.analog),
            elements=record.synth.samples,
            interval_us=record.synth.interval_us,
            time=cp32_from_datetime(record.first_sample),
        )

    def _offer_channel(self, record: SimRecord) -> None:
        fan = record.entry.fault_number
        if self.channel_index >= len(record.synth.analog):
            self._send(self._end(Too.END_DATA, fan))
            return
        channel = record.synth.analog[self.channel_index]
        self._send(
            ChannelReady(
                **self._head(),
                fault_number=fan,
                channel=channel.acc,
                primary=channel.primary,
                secondary=channel.secondary,
                reference=channel.reference,
            )
        )

    def _send_tags(self, record: SimRecord) -> None:
        fan = record.entry.fault_number
        tags = record.synth.tags
        at: dict[int, list[Tag]] = {0: [Tag(t.fun, t.inf, DPI[t.initial]) for t in tags]}
        for t in tags:
            for position, state in t.changes:
                at.setdefault(position, []).append(Tag(t.fun, t.inf, DPI[state]))
        for position, states in sorted(at.items()):
            for i in range(0, len(states), MAX_TAGS_PER_ASDU):
                chunk = tuple(states[i : i + MAX_TAGS_PER_ASDU])
                self._send(Tags(**self._head(), fault_number=fan, position=position, tags=chunk))
        self._send(self._end(Too.END_TAGS, fan))

    def _send_channel(self, record: SimRecord, acc: int) -> None:
        fan = record.entry.fault_number
        channel = next((c for c in record.synth.analog if c.acc == acc), None)
        if channel is None:
            self._send(self._end(Too.END_CHANNEL_ABORTED_BY_RELAY, fan, acc))
            return
        for first in range(0, len(channel.raw), MAX_VALUES_PER_ASDU):
            if record.abort_after is not None and self.values_sent >= record.abort_after:
                record.abort_after = None  # aborts once; the next attempt succeeds
                self.selected = None
                self._send(self._end(Too.END_DATA_ABORTED_BY_RELAY, fan))
                return
            values = channel.raw[first : first + MAX_VALUES_PER_ASDU]
            self._send(
                DisturbanceValues(
                    **self._head(), fault_number=fan, channel=acc, first=first, values=values
                )
            )
            self.values_sent += 1
        self._send(self._end(Too.END_CHANNEL, fan, acc))

    def _end(self, too: int, fan: int, acc: int = 0) -> TransferEnd:
        return TransferEnd(**self._head(), too=too, fault_number=fan, channel=acc)

    def _head(self) -> dict[str, int]:
        return {
            "cot": Cot.DISTURBANCE,
            "common_address": self.common_address,
            "fun": self.fun,
            "inf": 0,
        }

    def _send(self, asdu: Asdu) -> None:
        self.queue.append(encode_asdu(asdu))
