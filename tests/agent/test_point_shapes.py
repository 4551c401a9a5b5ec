"""A record filled in from its shape's template (`agent/point_shapes.py`) must be byte for
byte the record the full path makes, with the same replay key, topic and priority; and
the codec's promise that equal shapes make equal observations but for the device time must
hold for every value and quality octet, cause and time flag."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import point_shapes
from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from gateway.outbox import Outbox
from gateway.outbox_rows import Pending
from protocols.iec104.codec import SHAPED_TYPES, decode_asdu, encode_cp56
from protocols.observations import PointObservation
from protocols.profile_loader import load_profile
from tests.agent.test_fast_records import PROFILE as FAST_PROFILE

# The fast path's profile, and a point whose label is the gateway-time marker's text.
PROFILE = (
    FAST_PROFILE
    + """
[[points]]
address = "8"
name = "odd"
label = "1901-02-03T04:05:06.789012Z"
kind = "alarm"
"""
)

OWN_CA = 7
# Times with and without milliseconds, at the edges of their fields.
TIMES = [
    datetime(2026, 3, 1, 8, 15, 30, 123000, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC),
]
FLAGS = [(), ("invalid",), ("substituted", "summer_time")]
COTS = [3, 20, 3 | 0x80, 3 | 0x40, 44]  # spontaneous, interrogated, test, negative, unnamed
NOW = datetime(2026, 3, 1, 8, 15, 31, 7, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path: Path) -> DeviceContext:
    path = tmp_path / "shapes.toml"
    path.write_text(PROFILE)
    return DeviceContext("north", "gw-1", "relay.7", "iec104", load_profile(path))


def asdu(type_id: int, cot: int, ca: int, ioa: int, octet: int, cp56: bytes) -> bytes:
    return bytes([type_id, 1, cot, 0, ca & 0xFF, ca >> 8, ioa, 0, 0, octet]) + cp56


def observations(octets: range = range(256)) -> list[PointObservation]:
    out = []
    for type_id, cot, ca, ioa, octet in itertools.product(
        sorted(SHAPED_TYPES), COTS, [OWN_CA, 9], [1, 2, 4, 6, 8, 99], octets
    ):
        for at, flags in itertools.product(TIMES, FLAGS):
            out += decode_asdu("relay.7", OWN_CA, asdu(type_id, cot, ca, ioa, octet,
                                                        encode_cp56(at, flags)))  # fmt: skip
    return out


def test_equal_shapes_are_equal_observations_but_for_the_time() -> None:
    first: dict[object, PointObservation] = {}
    for obs in observations():
        assert obs.shape is not None
        assert obs.device_time is not None
        same_time = dataclasses.replace(obs, device_time=point_shapes.MARK_TIME)
        assert first.setdefault(obs.shape, same_time) == same_time
    assert len(first) == 2 * len(COTS) * 2 * 6 * 256 * 3  # the time flags are in the shape


def test_an_unreadable_time_names_no_shape() -> None:
    bad = asdu(30, 3, OWN_CA, 1, 1, bytes([0xFF, 0xFF, 0, 0, 1, 1, 26]))  # 65535 ms
    (obs,) = decode_asdu("relay.7", OWN_CA, bad)
    assert obs.device_time is None
    assert obs.shape is None


def records(box: Outbox, ctx: DeviceContext, obs: list[PointObservation]) -> tuple[object, ...]:
    """Each observation's records and replay keys, the events counted, the counters."""
    pipeline = Pipeline(box, {"relay.7": ctx})
    out: list[tuple[list[Pending], object]] = []
    for o in obs:  # one delivery each, so that no event is a replay of another
        pending, _, new = pipeline._records([o])
        out.append((pending, new))
    TEMPLATES.append(pipeline.shapes.made)
    return out, pipeline.status["relay.7"].events, pipeline.counters


TEMPLATES: list[int] = []


def test_filled_records_are_the_full_paths_byte_for_byte(
    tmp_path: Path, ctx: DeviceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.wire.utcnow", lambda: NOW)
    monkeypatch.setattr(point_shapes, "LIMIT", 10**6)  # so each template is made once
    obs = observations(range(0, 256, 5))
    box = Outbox(tmp_path / "outbox.db")
    box.open()
    try:
        shaped = records(box, ctx, obs)
        full = records(box, ctx, [dataclasses.replace(o, shape=None) for o in obs])
    finally:
        box.close()
    assert shaped == full
    # A template for every shape but point 8's (see below), none without shapes.
    assert TEMPLATES[-2:] == [len({o.shape for o in obs if o.address != "8"}), 0]


def test_templates_are_made_once_per_shape_and_never_for_a_marker_clash(
    ctx: DeviceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[PointObservation] = []
    real = point_shapes.make_template

    def counting(c: DeviceContext, o: PointObservation) -> point_shapes.Template | None:
        made.append(o)
        return real(c, o)

    monkeypatch.setattr(point_shapes, "make_template", counting)
    shapes = point_shapes.PointShapes()

    def trip(ioa: int, at: datetime) -> PointObservation:
        return decode_asdu("relay.7", OWN_CA, asdu(30, 3, OWN_CA, ioa, 1, encode_cp56(at)))[0]

    first = shapes.template(ctx, trip(1, TIMES[0]))
    assert first is not None
    assert shapes.template(ctx, trip(1, TIMES[1])) is first
    # Point 8's label is the gateway-time marker's text: no template, the full path.
    assert shapes.template(ctx, trip(8, TIMES[0])) is None
    assert shapes.template(ctx, trip(8, TIMES[1])) is None
    assert len(made) == 2  # one per shape; a clash is remembered as such
