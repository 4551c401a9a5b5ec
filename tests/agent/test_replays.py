"""An event a relay sends again (the agent stored it, but died or lost the link before
acknowledging it) is stored once: within one run, across a restart of the agent (the
window is committed with the records), and never dropped when its first commit failed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.replays import STATE_NAME, WINDOW, NewKeys, ReplayFilter, replay_key
from gateway import wire
from gateway.outbox import Outbox, StateUpdate
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


def test_the_window_keeps_the_last_keys_and_is_saved_as_json_writes_it() -> None:
    keys = [replay_key(trip(ms)) for ms in range(WINDOW + 40)]
    assert all(k is not None for k in keys)
    window = ReplayFilter({})
    for at in range(0, len(keys), 7):  # commits of a few keys each
        new: NewKeys = {"line1": [k for k in keys[at : at + 7] if k is not None]}
        (saved,) = window.state(new)
        expected = [k for k in keys[: at + 7] if k is not None][-WINDOW:]
        assert written(saved) == json.dumps(expected)
        window.committed(new)
    assert [window.is_replay("line1", k, {}) for k in keys if k is not None] == (
        [False] * 40 + [True] * WINDOW
    )
    # Read back after a restart, with a row this code did not write: only keys kept.
    restarted = ReplayFilter({("line1", STATE_NAME): json.dumps(["x y", 5, *expected[-3:]])})
    assert written(restarted.state({"line1": [keys[0] or ""]})[0]) == json.dumps(
        [*expected[-3:], keys[0]]
    )


def written(update: StateUpdate) -> str:
    """What the outbox's writer stores for a state update, at its commit."""
    return update.value if isinstance(update.value, str) else update.value()


def test_a_window_holds_the_deliveries_queued_before_it_not_only_the_committed() -> None:
    """On the hot path several deliveries are in flight and a commit keeps one state row per
    device, its last: that row must hold the earlier deliveries' keys too, or after a crash
    their replays are stored again; a delivery whose commit failed drops out of it."""
    a, b, c = (replay_key(trip(ms)) or "" for ms in (0, 10, 20))
    window = ReplayFilter({})
    first: NewKeys = {"line1": [a]}
    second: NewKeys = {"line1": [b]}
    window.state(first)
    (second_row,) = window.state(second)  # built before the first is committed
    assert written(second_row) == json.dumps([a, b])
    window.abandoned(first)  # the first's commit failed
    assert written(second_row) == json.dumps([b])
    window.committed(second)
    third: NewKeys = {"line1": [c]}
    (third_row,) = window.state(third)
    assert written(third_row) == json.dumps([b, c])


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
