"""A poll's `measurements` record written without the model (`measurement_sets.pending`)
must be byte for byte what the model dumps, and step aside where it cannot say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent import measurement_sets
from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from gateway import outbox_retention as retention
from gateway import wire
from gateway.outbox import Outbox
from protocols.observations import Cause, MeasurementsObservation, PointObservation, Scalar
from protocols.profile_loader import load_named

NOW = datetime(2026, 12, 2, 7, 52, 7, 612970, tzinfo=UTC)


PROFILE = "feeder-protection-modbus"


def context() -> DeviceContext:
    return DeviceContext("north", "gw1", "f7", "modbus", load_named(PROFILE))


def poll(values: dict[str, Scalar], units: dict[str, str] | None = None) -> MeasurementsObservation:
    return MeasurementsObservation("f7", values, "periodic", "measurement_read", units or {})


@pytest.mark.parametrize(
    "values",
    [
        {"measurement:current_phase_a": 412, "measurement:frequency": 49.98},
        {"measurement:frequency": float("nan"), "measurement:spare": float("inf")},
        {"measurement:spare": -1.5, "measurement:flag": True, "measurement:text": "x"},
        {"measurement:none": None, "measurement:big": 2**40, "measurement:neg": -0.0},
        {},
    ],
)
def test_the_body_is_what_the_model_dumps(values: dict[str, Scalar]) -> None:
    ctx, obs = context(), poll(values, {"measurement:spare": "kV", "measurement:frequency": "x"})
    fast = measurement_sets.pending(ctx, obs, NOW, 1 << 20)
    assert fast is not None
    assert fast.body == wire.encode_body(measurement_sets.record(ctx, obs, NOW))
    assert fast.topic == "relay/v1/north/gw1/measurements/f7"
    assert (fast.kind, fast.bulk) == ("measurements", False)
    assert fast.priority == retention.priority("measurements")


def test_labels_follow_the_units_the_driver_gives() -> None:
    ctx = context()
    first = measurement_sets.pending(ctx, poll({"measurement:spare": 1.0}, {}), NOW, 1 << 20)
    second = measurement_sets.pending(
        ctx, poll({"measurement:spare": 1.0}, {"measurement:spare": "kV"}), NOW, 1 << 20
    )
    assert first is not None
    assert second is not None
    assert b'"units":{}' in first.body
    assert b'"units":{"measurement:spare":"kV"}' in second.body


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 12, 2, 8, tzinfo=timezone(timedelta(hours=1))), datetime(2026, 12, 2, 7)],
)
def test_a_time_not_in_utc_takes_the_model(now: datetime) -> None:
    assert measurement_sets.pending(context(), poll({"measurement:x": 1}), now, 1 << 20) is None


def test_a_value_the_fast_path_does_not_know_takes_the_model() -> None:
    obs = MeasurementsObservation("f7", {"measurement:x": 1.5j})  # type: ignore[dict-item]
    assert measurement_sets.pending(context(), obs, NOW, 1 << 20) is None


def test_a_body_over_the_limit_takes_the_model() -> None:
    assert measurement_sets.pending(context(), poll({"measurement:x": 1}), NOW, 50) is None


def test_only_measurements_may_wait_for_a_shared_commit() -> None:
    waits = MeasurementsObservation("f7", {}, commit_within_s=0.025)
    sooner = MeasurementsObservation("f7", {}, commit_within_s=0.01)
    assert measurement_sets.commit_within([waits, sooner]) == 0.01
    assert measurement_sets.commit_within([waits, MeasurementsObservation("f7", {})]) == 0.0
    assert measurement_sets.commit_within([]) == 0.0


async def test_a_lone_poll_is_stored_as_the_general_path_stores_it(tmp_path: Path) -> None:
    """`Pipeline.deliver`'s shortcut for one poll (`measurement_sets.alone`) stores the
    record, and counts the values, as the general path does for the same poll delivered
    beside another."""
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.open()
    try:
        pipeline = Pipeline(outbox, {"f7": context()})
        values: dict[str, Scalar] = {
            "measurement:current_phase_a": 412,
            "measurement:frequency": 49.98,
        }
        lone = poll(values, {"measurement:frequency": "Hz"})
        assert measurement_sets.alone(pipeline.contexts, [lone], 1 << 20) is not None
        await pipeline.deliver([lone])
        await pipeline.deliver([lone, lone])  # not alone: the general path
        bodies = [json.loads(row.body) for row in outbox.read(10)]
        assert len(bodies) == 3
        for body in bodies:
            body.pop("gateway_time")
        assert bodies[0] == bodies[1] == bodies[2]
        assert pipeline.counters["measurements"] == 6
        stranger = MeasurementsObservation("nobody", values)
        assert measurement_sets.alone(pipeline.contexts, [stranger], 1 << 20) is None
        await pipeline.deliver([stranger])
        assert pipeline.counters["observations_unknown_device"] == 1
        assert len(outbox.read(10)) == 3
    finally:
        outbox.close()


def test_only_one_poll_and_nothing_else_is_alone() -> None:
    contexts = {"f7": context()}
    one = poll({"measurement:x": 1})
    assert measurement_sets.alone(contexts, [one, one], 1 << 20) is None
    assert measurement_sets.alone(contexts, [], 1 << 20) is None
    point = PointObservation("f7", "measurement:x", 1)
    assert measurement_sets.alone(contexts, [point], 1 << 20) is None
    assert measurement_sets.alone(contexts, [one], 50) is None  # too large: the model's path


@pytest.mark.parametrize(
    ("cause", "cause_raw"),
    [("periodic", "measurement_read"), (None, None), ("interrogated", 'say "when"\n')],
)
def test_every_cause_is_written_as_the_model_writes_it(
    cause: Cause | None, cause_raw: str | None
) -> None:
    """The parts written once per device and cause (`_head`, `_tail`) are the model's."""
    for device in ("f7", "bay-2.feeder_1"):
        ctx = DeviceContext("north", "gw1", device, "modbus", load_named(PROFILE))
        obs = MeasurementsObservation(device, {"measurement:frequency": 49.98}, cause, cause_raw)
        fast = measurement_sets.pending(ctx, obs, NOW, 1 << 20)
        assert fast is not None
        assert fast.body == wire.encode_body(measurement_sets.record(ctx, obs, NOW))
