"""The hot path's point records (`normalize.point_body`, written without the pydantic
model) must be byte for byte what the model gives, for every record kind a point becomes
(event, measurement), and must step aside wherever the model would change or refuse a
field."""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent import normalize
from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from gateway import wire
from gateway.outbox import Outbox
from protocols.observations import Cause, PointObservation, Scalar
from protocols.profile_loader import load_profile

PROFILE = """
[profile]
name = "fast-records"
protocol = "iec104"

[[points]]
address = "1"
name = "trip_a"
label = "Trip phase A"
kind = "trip"
severity = "critical"
phase = "A"

[[points]]
address = "2"
name = "healthy"
kind = "self_check"
inverted = true

[[points]]
address = "3"
name = "breaker"
kind = "status"

[[points]]
address = "4"
name = "current_a"
label = "Current phase A"
kind = "measurement"
unit = "A"

[[points]]
address = "5"
name = "energy"
kind = "measurement"

[[points]]
address = "6"
name = "ct_alarm"
kind = "alarm"
severity = "major"
"""

T = datetime(2026, 3, 1, 8, 15, 30, 123456, tzinfo=UTC)
CAUSES: list[Cause] = ["spontaneous", "interrogated", "requested", "periodic", "other"]
NOW = datetime(2026, 3, 1, 8, 15, 31, 7, tzinfo=UTC)
VALUES: list[Scalar] = [True, False, 0, -5, 2**70, 1.5, 5.0, -0.0, 1e-300, math.inf,
                        -math.inf, math.nan, "on", "intermediate",
                        'é \u2028 "quoted" \\ \x01', None]  # fmt: skip
DETAILS: list[dict[str, Scalar]] = [
    {},
    {"type": "M_SP_TB_1", "type_id": 30, "ioa": 1, "common_address": 7, "time_source": "cp56"},
    {"elapsed_ms": 12, "ratio": 0.25, "flag": True, "none": None, "text": "ünïcode"},
    {"nan": math.nan, "big": 2**64},
]


@pytest.fixture
def ctx(tmp_path: Path) -> DeviceContext:
    path = tmp_path / "fast-records.toml"
    path.write_text(PROFILE)
    return DeviceContext("north", "gw-1", "relay.7", "iec104", load_profile(path))


def observations() -> list[PointObservation]:
    out = []
    addresses = ["1", "2", "3", "4", "5", "6", "99", "7:1"]
    for address, value in itertools.product(addresses, VALUES):
        out.append(PointObservation("relay.7", address, value, ("IV",), T, (), "spontaneous"))
    for cause, details, measurement in itertools.product([*CAUSES, None], DETAILS, [False, True]):
        out.append(
            PointObservation(
                "relay.7", "3", 1, ("NT", "SB"), T, ("invalid", "summer_time"), cause, details,
                measurement, cause_raw="SPONTANEOUS" if cause else None,
            )
        )  # fmt: skip
    for address, phase, raised in itertools.product(["1", "2", "99"], [None, "B", "xyz"],
                                                     [None, True, False]):  # fmt: skip
        out.append(PointObservation("relay.7", address, 3, device_time=None, cause=None,
                                    phase=phase, raised=raised))  # fmt: skip
    return out


def test_every_point_record_kind_is_byte_identical_to_the_model(ctx: DeviceContext) -> None:
    kinds = set()
    for obs in observations():
        fast = normalize.point_body(ctx, obs, NOW)
        assert fast is not None, obs
        record = normalize.point_record(ctx, obs, NOW)
        kind, body, signal, point = fast
        assert body == wire.encode_body(record), obs
        assert (kind, point) == (record.kind, record.point)
        assert signal == (record.signal if isinstance(record, wire.Event) else None)
        kinds.add(kind)
    assert kinds == {"event", "measurement"}  # every kind `point_record` makes


@pytest.mark.parametrize(
    "change",
    [
        {"cause": "INTERROGATED_BY_STATION"},  # a legacy cause: the model moves it
        {"device_time": datetime(2026, 3, 1, 8, 15, 30)},  # naive: the model refuses it
        {"device_time": T.astimezone(timezone(timedelta(hours=2)))},  # not UTC
        {"value": b"on"},  # bytes: the model reads them as a string
        {"details": {"nested": {"a": 1}}},
        {"quality": ("IV", 3)},
    ],
)
def test_anything_the_model_would_change_or_refuse_takes_the_model(
    ctx: DeviceContext, change: dict[str, object]
) -> None:
    fields = {"device_id": "relay.7", "address": "1", "value": True, "device_time": T,
              "cause": "spontaneous", **change}  # fmt: skip
    obs = PointObservation(**fields)  # type: ignore[arg-type]
    assert normalize.point_body(ctx, obs, NOW) is None
    try:
        record = normalize.point_record(ctx, obs, NOW)
    except ValidationError:
        return  # refused, as before the fast path
    assert wire.encode_body(record)  # changed by the model (a legacy cause read)


def test_ids_the_model_refuses_take_the_model(tmp_path: Path, ctx: DeviceContext) -> None:
    bad = DeviceContext("north", "gw-1", "no spaces allowed", "iec104", ctx.profile)
    obs = PointObservation("no spaces allowed", "1", True, device_time=T, cause="spontaneous")
    assert normalize.point_body(bad, obs, NOW) is None
    with pytest.raises(ValidationError):
        normalize.point_record(bad, obs, NOW)


def test_the_pipeline_stores_what_the_model_would(tmp_path: Path, ctx: DeviceContext) -> None:
    box = Outbox(tmp_path / "outbox.db")
    box.open()
    try:
        pipeline = Pipeline(box, {"relay.7": ctx})
        obs = [o for o in observations() if o.cause != "spontaneous"]
        pipeline.deliver_blocking(obs)
        rows = box.read(10_000)
        assert len(rows) == len(obs)
        for row, o in zip(rows, obs, strict=True):
            stored = json.loads(row.body)
            expected = json.loads(wire.encode_body(normalize.point_record(ctx, o, NOW)))
            assert stored.pop("gateway_time") >= expected.pop("gateway_time")
            assert stored == expected
        assert pipeline.status["relay.7"].events == sum(
            1 for r in (normalize.point_record(ctx, o, NOW) for o in obs) if r.kind == "event"
        )
    finally:
        box.close()
