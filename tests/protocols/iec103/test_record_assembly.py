"""The pure parts of a record transfer: assembling ASDUs 26-30 into one observation
(consistency checks, scaling, tags) and the queue of records still to fetch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocols.iec103.codec.asdu_disturbance import DisturbanceRecord
from protocols.iec103.codec.asdu_transfer import (
    ChannelReady,
    DisturbanceReady,
    DisturbanceValues,
    Tag,
    Tags,
)
from protocols.iec103.codec.time import cp32_from_datetime, cp56_from_datetime
from protocols.iec103.disturbance_record import RecordAssembly, RecordInvalid, channel_scale
from protocols.iec103.records import MAX_ATTEMPTS, RecordQueue

HEAD = {"cot": 31, "common_address": 1, "fun": 128, "inf": 0}
FAULT = datetime(2026, 12, 2, 0, 1, 2, 345_000, tzinfo=UTC)


def entry(fan: int = 7, when: datetime = FAULT) -> DisturbanceRecord:
    return DisturbanceRecord(fault_number=fan, sof=0x01, time=cp56_from_datetime(when))


def ready(channels: int = 1, elements: int = 4) -> DisturbanceReady:
    first = cp32_from_datetime(FAULT - timedelta(milliseconds=100))
    return DisturbanceReady(
        **HEAD, fault_number=7, faults=1, channels=channels, elements=elements,
        interval_us=1000, time=first,
    )  # fmt: skip


def channel(
    acc: int = 1, rpv: float = 1200.0, rsv: float = 1.0, rfa: float = 100.0
) -> ChannelReady:
    return ChannelReady(
        **HEAD, fault_number=7, channel=acc, primary=rpv, secondary=rsv, reference=rfa
    )


def values(first: int, *samples: int, acc: int = 1, fan: int = 7) -> DisturbanceValues:
    return DisturbanceValues(**HEAD, fault_number=fan, channel=acc, first=first, values=samples)


def test_a_whole_record_with_its_scaling_and_tags() -> None:
    record = RecordAssembly(entry())
    record.start(ready(channels=2))
    record.add_tags(
        Tags(**HEAD, fault_number=7, position=0, tags=(Tag(128, 69, 1), Tag(128, 27, 2)))
    )
    record.add_tags(
        Tags(**HEAD, fault_number=7, position=2, tags=(Tag(128, 69, 2), Tag(128, 84, 2)))
    )
    record.add_tags(
        Tags(**HEAD, fault_number=7, position=3, tags=(Tag(128, 27, 1), Tag(128, 69, 0)))
    )
    record.start_channel(channel(1, rfa=100.0))
    record.add_values(values(0, 100, -200))
    record.add_values(values(2, 300, 0))
    record.start_channel(channel(70, rpv=10.0, rsv=2.0, rfa=5.0))
    record.add_values(values(1, 1, 2, 3, 4, acc=70))  # a relay numbering from 1
    obs = record.build("relay1")
    assert obs.trigger_time == FAULT
    assert obs.first_sample_time == FAULT - timedelta(milliseconds=100)
    assert obs.sample_interval_us == 1000
    ia, private = obs.analog
    assert (ia.name, ia.unit, ia.phase, ia.samples) == ("IA", "A", "A", (100, -200, 300, 0))
    assert ia.scale == 12.0  # RPV / (RSV x RFA) = 1200 / (1 x 100): 100 counts are 1,200 A
    assert (private.name, private.unit, private.phase, private.scale) == ("ACC70", "", None, 1.0)
    digital = {d.name: (d.initial, d.changes) for d in obs.digital}
    assert digital == {
        "128/27": (True, ((3, False),)),
        "128/69": (False, ((2, True),)),  # the transient DPI at 3 is left out
        "128/84": (False, ((2, True),)),  # first tagged on at 2: off before
    }
    assert obs.details["trip"] is True
    assert obs.details["samples"] == 4


@pytest.mark.parametrize(
    ("feed", "problem"),
    [
        (lambda r: r.add_values(values(1, 1, 2)), "before its ASDU 27"),
        (lambda r: (r.start_channel(channel()), r.add_values(values(2, 1))), "gap or repeat"),
        (
            lambda r: (r.start_channel(channel()), r.add_values(values(0, 1, 2)),
                       r.add_values(values(1, 3, 4))),
            "gap or repeat",
        ),
        (lambda r: r.start_channel(channel(rfa=0.0)), "0 divides"),
        (lambda r: r.start_channel(channel(rpv=float("nan"))), "not finite"),
        (lambda r: r.add_values(values(0, 1, fan=8)), "fault number 8"),
        (lambda r: (r.start_channel(channel()), r.add_values(values(0, 1, 2))), "incomplete"),
        (lambda r: None, "0 channels, ASDU 26 announced 1"),
    ],
)  # fmt: skip
def test_an_inconsistent_record_is_refused(feed, problem: str) -> None:
    record = RecordAssembly(entry())
    record.start(ready())

    def feed_and_build() -> None:  # a problem shows while fed or at the end
        feed(record)
        record.build("relay1")

    with pytest.raises(RecordInvalid, match=problem):
        feed_and_build()


def test_channel_scale_is_primary_per_count() -> None:
    # 1200/1 A CT, RFA 4284.5: 4284.5 counts are 1 A secondary, 1,200 A primary
    assert channel_scale(1200.0, 1.0, 4284.5) * 4284.5 == pytest.approx(1200.0)


def test_the_queue_gives_the_oldest_first_and_gives_up_after_its_attempts(tmp_path: Path) -> None:
    queue = RecordQueue("relay1", tmp_path / "relay1.json")
    first, second = entry(1), entry(2, FAULT + timedelta(seconds=1))
    assert queue.offer((first, second)) == [first, second]
    assert queue.offer((first,)) == []  # already queued
    assert queue.due(0.0) == first
    for attempt in range(1, MAX_ATTEMPTS):
        assert queue.failed(first, now=10.0, retry_s=5.0)
        assert queue.due(14.9) is None, attempt
        assert queue.due(15.0) == first, attempt
    assert not queue.failed(first, now=20.0, retry_s=5.0)  # given up
    assert queue.due(25.0) == second
    queue.done(second)
    assert queue.due(100.0) is None
    # a restarted agent does not fetch the stored one again, but a new one with the same
    # fault number (the relay wrapped its numbers) is a new record
    again = RecordQueue("relay1", tmp_path / "relay1.json")
    assert again.was_fetched(second)
    assert again.offer((second, entry(2, FAULT + timedelta(days=1)))) != []
    assert len(again.pending) == 1


def test_an_unreadable_state_file_is_reported_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "relay1.json"
    state.write_text("{not json")
    queue = RecordQueue("relay1", state)
    assert "unreadable" in caplog.text
    assert str(state) in caplog.text
    queue.offer((entry(1),))
    queue.done(entry(1))
    assert len(json.loads(state.read_text())["fetched"]) == 1
