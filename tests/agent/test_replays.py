"""An event a relay sends again (the agent stored it, but died or lost the link before
acknowledging it) is stored once: within one run, across a restart of the agent (the
window is committed with the records), and never dropped when its first commit failed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.replays import WINDOW, ReplayFilter, replay_key
from gateway import wire
from gateway.outbox import Outbox
from protocols.observations import Cause, PointObservation
from tests.agent.test_pipeline import make_pipeline, records

T0 = datetime(2026, 3, 1, 8, 15, 30, tzinfo=UTC)


def trip(ms: int, value: bool = True, cause: Cause = "spontaneous") -> PointObservation:
    return PointObservation(
        "line1", "1011", value, device_time=T0 + timedelta(milliseconds=ms), cause=cause
    )


def events(box: Outbox) -> list[tuple[object, object, object]]:
    return [(r.value, r.device_time, r.cause) for r in records(box) if isinstance(r, wire.Event)]


def test_a_replay_is_stored_once_and_a_new_event_is_not_taken_for_one(box: Outbox) -> None:
    pipeline = make_pipeline(box)
    pipeline.deliver_blocking([trip(0), trip(10, False)])
    pipeline.deliver_blocking([trip(10, False), trip(20)])  # the relay resends its last one
    # An interrogation answers with the state and its time tag, every time: never a replay.
    pipeline.deliver_blocking([trip(20, cause="interrogated")])
    pipeline.deliver_blocking([trip(20, cause="interrogated")])
    assert events(box) == [
        (True, T0, "spontaneous"),
        (False, T0 + timedelta(milliseconds=10), "spontaneous"),
        (True, T0 + timedelta(milliseconds=20), "spontaneous"),
        (True, T0 + timedelta(milliseconds=20), "interrogated"),
        (True, T0 + timedelta(milliseconds=20), "interrogated"),
    ]
    assert pipeline.counters["replays_dropped"] == 1


def test_a_replay_after_the_agent_restarted_is_stored_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    box.open()
    make_pipeline(box).deliver_blocking([trip(0), trip(10, False)])
    box.close()
    box = Outbox(tmp_path / "outbox.sqlite")  # a new process on the same state
    box.open()
    try:
        pipeline = make_pipeline(box)
        pipeline.deliver_blocking([trip(10, False), trip(20)])
        assert [e[1] for e in events(box)] == [T0 + timedelta(milliseconds=ms)
                                               for ms in (0, 10, 20)]  # fmt: skip
        assert pipeline.counters["replays_dropped"] == 1
    finally:
        box.close()


class FailingOnce(Outbox):
    """The outbox's commit fails once (disk full), then works."""

    failures = 1

    def append_blocking(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return super().append_blocking(*args, **kwargs)


def test_an_event_whose_commit_failed_is_stored_when_it_comes_again(tmp_path: Path) -> None:
    box = FailingOnce(tmp_path / "outbox.sqlite")
    box.open()
    try:
        pipeline = make_pipeline(box)
        with pytest.raises(OSError, match="No space left"):
            pipeline.deliver_blocking([trip(0)])
        pipeline.deliver_blocking([trip(0)])  # the relay kept it, and sends it again
        assert [e[1] for e in events(box)] == [T0]
        assert pipeline.counters["replays_dropped"] == 0
    finally:
        box.close()


def test_the_window_keeps_the_last_keys_and_a_restart_reads_back_only_keys() -> None:
    keys = [k for k in (replay_key(trip(ms)) for ms in range(WINDOW + 40)) if k is not None]
    assert len(keys) == WINDOW + 40
    window = ReplayFilter({})
    for at in range(0, len(keys), 7):  # commits of a few keys each
        window.committed({"line1": keys[at : at + 7]})
    assert [window.is_replay("line1", k, {}) for k in keys] == [False] * 40 + [True] * WINDOW
    # Read back after a restart, with a row this code did not write: only keys kept.
    restarted = ReplayFilter({"line1": ["x y", "", *keys[-3:]]})
    assert [restarted.is_replay("line1", k, {}) for k in ("x y", "", *keys[-4:])] == [
        False, False, False, True, True, True]  # fmt: skip


def test_deliveries_in_flight_on_the_hot_path_are_recognised_after_a_restart(
    tmp_path: Path,
) -> None:
    """`post` (the IEC 104 hot path) queues deliveries without waiting: each stores its own
    keys in its commit, so a restart knows every one that was committed."""
    box = Outbox(tmp_path / "outbox.sqlite")
    box.open()
    pipeline = make_pipeline(box)
    outcomes: list[BaseException | None] = []
    for ms in range(0, 50, 10):
        pipeline.post([trip(ms, value=ms % 20 == 0)], outcomes.append, 0.01)
    box.close()  # the writer commits what was queued, then stops
    assert outcomes == [None] * 5
    box = Outbox(tmp_path / "outbox.sqlite")
    box.open()
    try:
        pipeline = make_pipeline(box)
        pipeline.deliver_blocking([trip(ms, value=ms % 20 == 0) for ms in range(0, 60, 10)])
        assert len(events(box)) == 6
        assert pipeline.counters["replays_dropped"] == 5
    finally:
        box.close()


@pytest.mark.parametrize(
    "details",
    [{}, {"type": "M_SP_TB_1", "ioa": 1011}, {"flag": True}, {"flag": 1}, {"x": 0.0},
     {"x": -0.0}, {"x": float("nan")}, {"b": None, "a": "z"}],
)  # fmt: skip
def test_a_key_is_the_same_however_often_its_details_were_seen(
    details: dict[str, object],
) -> None:
    def key() -> str | None:
        return replay_key(PointObservation("line1", "1011", True, device_time=T0,
                                           cause="spontaneous", details=details))  # type: ignore[arg-type]  # fmt: skip

    raw = "|".join(("1011", T0.isoformat(), "True", "", repr(sorted(details.items()))))
    expected = hashlib.blake2b(raw.encode(), digest_size=6).hexdigest()
    assert key() == key() == expected
