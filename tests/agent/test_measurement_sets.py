"""A poll's `measurements` record written without the model (`measurement_sets.pending`)
must be byte for byte what the model dumps, and step aside where it cannot say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent import measurement_sets
from agent.normalize import DeviceContext
from gateway import outbox_retention as retention
from gateway import wire
from protocols.observations import MeasurementsObservation, Scalar
from protocols.profile_loader import load_named

NOW = datetime(2026, 12, 2, 7, 52, 7, 612970, tzinfo=UTC)


def context() -> DeviceContext:
    return DeviceContext("north", "gw1", "f7", "modbus", load_named("feeder-protection-modbus"))


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
