"""Records of points that a relay reports again and again, made once per shape.

A relay's events are a few states said many times: trip A raised, trip A cleared, each
time with a new time tag. Where the driver names what decides an observation apart from
its device time (`PointObservation.shape`: an IEC 104 single or double point's data unit
identifier, address, value and quality octet, time flags), the record's body and replay
key are made once for that shape and then filled in per event with the two times that
change: the gateway's and the device's. Filling costs a few joins, where the full path
(`normalize.point_body`, `replays.replay_key`) costs most of an event's time in the
agent's own code (docs/performance.md).

The template is made by the full path itself, run once with two marker times in place of
the real ones, and cut where the markers' text appears; so the filled record is byte for
byte what the full path gives (tests/agent/test_point_shapes.py). A record the full path
would not write without the model, or in which a marker's text appears other than once,
gets no template: its events take the full path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from datetime import UTC, datetime

from pydantic_core import to_json

from agent import normalize, replays
from agent.normalize import DeviceContext
from gateway import outbox_retention as retention
from gateway import wire
from gateway.outbox_rows import Pending
from protocols.observations import PointObservation

# Times no relay reports: the places the real times go are found by their text.
MARK_NOW = datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
MARK_TIME = datetime(1902, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
LIMIT = 4096  # shapes kept; a gateway's relays have a few per event point


@dataclasses.dataclass(frozen=True, slots=True)
class Template:
    kind: str
    signal: str | None
    point: str | None
    topic: str
    priority: int
    body: tuple[bytes, bytes, bytes]  # around the gateway's time, then the device's
    key: tuple[str, str] | None  # the replay key's text around the device time; None: none

    def stamp(self, device_time: datetime) -> tuple[bytes, str | None]:
        """The device time's JSON and the event's replay key (`replays.replay_key`), from
        one `isoformat`: a UTC time's JSON is its isoformat with "Z" for "+00:00"."""
        iso = device_time.isoformat()
        if iso.endswith("+00:00"):
            time_json = b'"' + iso[:-6].encode() + b'Z"'
        else:
            time_json = to_json(device_time)
        key = None if self.key is None else replays.key_of(self.key[0] + iso + self.key[1])
        return time_json, key

    def pending(self, now_json: bytes, time_json: bytes) -> Pending:
        head, middle, tail = self.body
        return Pending(self.topic, self.kind, head + now_json + middle + time_json + tail,
                       False, self.priority)  # fmt: skip


class PointShapes:
    """Per device and shape, its template, or None where the full path must run."""

    def __init__(self) -> None:
        self._templates: dict[tuple[str, Hashable], Template | None] = {}
        self._now: tuple[datetime, bytes] = (MARK_NOW, to_json(MARK_NOW))
        self.made = 0  # templates made

    def template(self, ctx: DeviceContext, obs: PointObservation) -> Template | None:
        """The shape's template (made on its first event); None without a shape."""
        if obs.shape is None or obs.device_time is None:
            return None
        key = (ctx.device_id, obs.shape)
        try:
            return self._templates[key]
        except KeyError:
            pass
        made = make_template(ctx, obs)
        if len(self._templates) >= LIMIT:
            self._templates.clear()
        self._templates[key] = made
        self.made += made is not None
        return made

    def now_json(self, now: datetime) -> bytes:
        """The gateway time's JSON, made once per delivery (one `now` for all of it)."""
        last, text = self._now
        if last is not now:
            text = to_json(now)
            self._now = (now, text)
        return text


def make_template(ctx: DeviceContext, obs: PointObservation) -> Template | None:
    marked = dataclasses.replace(obs, device_time=MARK_TIME)
    fast = normalize.point_body(ctx, marked, MARK_NOW)
    if fast is None:
        return None
    kind, body, signal, point = fast
    now_json, time_json = to_json(MARK_NOW), to_json(MARK_TIME)
    if body.count(now_json) != 1 or body.count(time_json) != 1:
        return None
    head, rest = body.split(now_json)
    if time_json not in rest:
        return None  # the device time before the gateway's: not a point record's order
    middle, tail = rest.split(time_json)
    key = None
    text = replays.replay_text(marked)
    if text is not None:
        iso = MARK_TIME.isoformat()
        if text.count(iso) != 1:
            return None
        before, after = text.split(iso)
        key = (before, after)
    return Template(
        kind,
        signal,
        point,
        wire.topic(ctx.site, ctx.gateway_id, kind, ctx.device_id),
        retention.priority(kind, signal),
        (head, middle, tail),
        key,
    )
