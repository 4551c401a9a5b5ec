"""The sink every driver delivers into: observations become records in the outbox.

One pipeline serves the whole daemon. It is called from the event loop (`deliver`) and
from library threads (`deliver_blocking`); both return only once the records are committed,
which is what lets drivers acknowledge the device. `submit` (c104's receive threads)
returns at once with a future of the commit: the 104 link holds the relay's
acknowledgement until it completes.

It also owns the state that turns observations into *changes*: link up/down into
comms alarms, and firmware/settings into reports only when their hash changed (the last
hash is committed with the record, so a restart resends nothing unchanged), and drops
an event a relay sends again that was stored already (`agent/replays.py`).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agent import disturbance, measurement_sets, normalize
from agent.normalize import DeviceContext
from agent.point_shapes import PointShapes, Template
from agent.replays import NewKeys, ReplayFilter, replay_key
from gateway import comtrade, wire
from gateway import outbox_retention as retention
from gateway.outbox import Outbox, Pending, StateUpdate
from gateway.outbox_rows import Done
from protocols.observations import (
    ConditionObservation,
    DisturbanceObservation,
    FaultReportObservation,
    IdentityObservation,
    LinkStateObservation,
    MeasurementsObservation,
    Observation,
    PointObservation,
    SettingsObservation,
)

log = logging.getLogger(__name__)


@dataclass
class DeviceStatus:
    """What `relay-agent status` shows per device."""

    link_up: bool | None = None  # None: not known yet
    link_reason: str = ""
    link_changed: datetime | None = None
    last_event: str | None = None
    last_event_time: datetime | None = None
    events: int = 0
    unknown_points: int = 0


class Pipeline:
    def __init__(
        self,
        outbox: Outbox,
        contexts: dict[str, DeviceContext],
        chunk_bytes: int = disturbance.DEFAULT_CHUNK_BYTES,
        max_message_bytes: int = wire.MAX_PAYLOAD_BYTES,
    ) -> None:
        self.outbox = outbox
        self.chunk_bytes = chunk_bytes
        # A record whose body exceeds this could never leave in one message: refused here.
        self.max_body_bytes = (
            max_message_bytes - wire.ENVELOPE_OVERHEAD_BYTES - wire.STAMP_OVERHEAD_BYTES
        )
        self.contexts = contexts
        self.status = {device_id: DeviceStatus() for device_id in contexts}
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        saved = outbox.device_state()
        self.replays = ReplayFilter(outbox.recent_keys())
        self.shapes = PointShapes()
        self._hashes = {key: value for key, value in saved.items() if key[1].endswith("_hash")}
        self._settings: dict[str, dict[str, dict[str, Any]]] = {
            device_id: json.loads(value)
            for (device_id, name), value in saved.items()
            if name == "settings_content"
        }

    # --- ObservationSink ---------------------------------------------------------------

    async def deliver(self, observations: Sequence[Observation]) -> None:
        if poll := measurement_sets.alone(self.contexts, observations, self.max_body_bytes):
            self.counters["measurements"] += len(poll[1].values)  # a Modbus poll's
            await self.outbox.append([poll[0]], (), poll[1].commit_within_s)
            return
        records, state, new = self._records(observations)
        within = measurement_sets.commit_within(observations)  # periodic: may share a commit
        if records or state:
            await self.outbox.append(records, state, within, keys=new)
        self.replays.committed(new)

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        records, state, new = self._records(observations)
        if records or state:
            self.outbox.append_blocking(records, state, keys=new)
        self.replays.committed(new)

    def submit(self, observations: Sequence[Observation]) -> concurrent.futures.Future[None]:
        """`BackgroundSink`: queued for the outbox's next group commit, returns at once.
        Always queued, even with nothing to write, so the future keeps commit order."""
        records, state, new = self._records(observations)
        future = self.outbox.submit(records, state, keys=new)
        future.add_done_callback(lambda done: self._committed(done, new))
        return future

    def post(
        self, observations: Sequence[Observation], done: Done, commit_within_s: float = 0.0
    ) -> None:
        """`submit` without a Future (the IEC 104 hot path, `durable_ack.py`): `done` gets
        None or the commit's error, on the writer thread, in commit order (`Outbox.post`)."""
        records, state, new = self._records(observations)

        def committed(error: BaseException | None) -> None:
            if error is None:
                self.replays.committed(new)
            done(error)

        self.outbox.post(records, state, committed, commit_within_s, keys=new)

    def _committed(self, done: concurrent.futures.Future[None], new: NewKeys) -> None:
        """A background commit ended: its events count as seen only if it succeeded."""
        if done.exception() is None:
            self.replays.committed(new)

    # --- agent-side records ---------------------------------------------------------------

    async def append_record(
        self, record: BaseModel, device_id: str | None = None, state: Sequence[StateUpdate] = ()
    ) -> None:
        """A record the agent makes itself (audit, gateway alarms), with any state that
        must be committed along with it."""
        await self.outbox.append([self._pending(record, device_id)], state)

    # --- internals -------------------------------------------------------------------------

    def _pending(self, record: BaseModel, device_id: str | None, bulk: bool = False) -> Pending:
        kind = str(getattr(record, "kind"))  # noqa: B009 - every wire record has one
        site, gateway_id = str(getattr(record, "site")), str(getattr(record, "gateway_id"))  # noqa: B009
        body = wire.encode_body(record)
        if len(body) > self.max_body_bytes:
            return self._pending(self._too_large(record, kind, len(body)), device_id)
        signal = getattr(record, "signal", None)
        return Pending(
            wire.topic(site, gateway_id, kind, device_id),
            kind,
            body,
            bulk,
            retention.priority(kind, signal if isinstance(signal, str) else None),
        )

    def _too_large(self, record: BaseModel, kind: str, size: int) -> wire.Alarm:
        """A record that no message could carry: refused here, at creation, and said so,
        rather than stored to be rejected by the center after the broker took it."""
        self.counters["records_too_large"] += 1
        alarm = normalize.too_large_alarm(record, kind, size, self.max_body_bytes)
        log.error("%s", alarm.message)
        return alarm

    def _records(
        self, observations: Sequence[Observation]
    ) -> tuple[list[Pending], list[StateUpdate], NewKeys]:
        now = wire.utcnow()
        records: list[Pending] = []
        state: list[StateUpdate] = []
        new: NewKeys = {}
        for obs in observations:
            ctx = self.contexts.get(obs.device_id)
            if ctx is None:
                self.counters["observations_unknown_device"] += 1
                log.warning("observation for unconfigured device %r dropped", obs.device_id)
                continue
            if isinstance(obs, PointObservation):
                shape = self.shapes.template(ctx, obs)
                if shape is not None and obs.device_time is not None:  # a template has one
                    time_json, key = shape.stamp(obs.device_time)
                else:
                    shape, key, time_json = None, replay_key(obs), b""
                if key is not None and self.replays.is_replay(ctx.device_id, key, new):
                    self.counters["replays_dropped"] += 1  # stored before: acknowledge only
                else:
                    records.append(self._point(ctx, obs, now, shape, time_json))
                continue
            if isinstance(obs, DisturbanceObservation):
                records.extend(self._disturbance(ctx, obs, now))
                continue
            record = self._record(ctx, obs, now, state)
            if isinstance(record, BaseModel):
                record = self._pending(record, ctx.device_id)
            if record is not None:
                records.append(record)
        return records, state, new

    def _point(
        self,
        ctx: DeviceContext,
        obs: PointObservation,
        now: datetime,
        shape: Template | None,
        time_json: bytes,
    ) -> Pending:
        """The hot path: the record filled in from its shape's template (with the device
        time's JSON, `Template.stamp`), else its body written without the model where it
        can be (`normalize.point_body`, byte for byte the same), else through it."""
        if shape is not None:
            pending = shape.pending(self.shapes.now_json(now), time_json)
            if len(pending.body) <= self.max_body_bytes:
                self._count_point(ctx, obs, shape.kind, shape.point, now)
                return pending
        fast = normalize.point_body(ctx, obs, now)
        if fast is None or len(fast[1]) > self.max_body_bytes:
            record = normalize.point_record(ctx, obs, now)
            self._count_point(ctx, obs, record.kind, record.point, now)
            return self._pending(record, ctx.device_id)
        kind, body, signal, point = fast
        self._count_point(ctx, obs, kind, point, now)
        return Pending(
            wire.topic(ctx.site, ctx.gateway_id, kind, ctx.device_id),
            kind,
            body,
            False,
            retention.priority(kind, signal),
        )

    def _count_point(
        self,
        ctx: DeviceContext,
        obs: PointObservation,
        kind: str,
        point: str | None,
        now: datetime,
    ) -> None:
        if kind != "event":
            self.counters["measurements"] += 1
            return
        status = self.status[ctx.device_id]
        self.counters["events"] += 1
        status.events += 1
        status.last_event = point or obs.address
        status.last_event_time = obs.device_time or now
        if point is None:
            status.unknown_points += 1
            self.counters["unknown_points"] += 1
            log.warning(
                "device %s: address %s is not in profile %s; forwarded as unknown",
                ctx.device_id,
                obs.address,
                ctx.profile.name,
            )

    def _record(
        self, ctx: DeviceContext, obs: Observation, now: datetime, state: list[StateUpdate]
    ) -> BaseModel | Pending | None:
        if isinstance(obs, MeasurementsObservation):
            self.counters["measurements"] += len(obs.values)
            fast = measurement_sets.pending(ctx, obs, now, self.max_body_bytes)
            return fast or measurement_sets.record(ctx, obs, now)
        if isinstance(obs, LinkStateObservation):
            return self._link_state(ctx, obs, now)
        if isinstance(obs, ConditionObservation):
            self.counters["alarms"] += 1
            return normalize.condition_record(ctx, obs, now)
        if isinstance(obs, IdentityObservation):
            report = normalize.firmware_record(ctx, obs, now)
            if not self._changed(ctx.device_id, "firmware_hash", report.hash, state):
                return None
            self.counters["firmware_reports"] += 1
            return report
        if isinstance(obs, SettingsObservation):
            return self._settings_snapshot(ctx, obs, now, state)
        if isinstance(obs, FaultReportObservation):
            self.counters["fault_reports"] += 1
            return disturbance.fault_report_record(ctx, obs, now)
        raise TypeError(f"not an observation: {obs!r}")

    def _disturbance(
        self, ctx: DeviceContext, obs: DisturbanceObservation, now: datetime
    ) -> list[Pending]:
        """The manifest in the main lane, its chunks right behind it in the bulk lane."""
        try:
            manifest, chunks = disturbance.transfer_records(ctx, obs, now, self.chunk_bytes)
        except comtrade.ComtradeError as exc:
            # The relay will be told the record arrived: say loudly what was lost instead.
            self.counters["disturbance_unwritable"] += 1
            log.error("device %s: disturbance record %d: %s", ctx.device_id, obs.fault_number, exc)
            alarm = normalize.condition_record(
                ctx,
                ConditionObservation(
                    ctx.device_id,
                    "disturbance_unwritable",
                    "raised",
                    f"disturbance record {obs.fault_number} not representable: {exc}",
                    severity="minor",
                ),
                now,
            )
            return [self._pending(alarm, ctx.device_id)]
        self.counters["disturbance_records"] += 1
        log.info(
            "device %s: disturbance record %d queued (%d bytes in %d chunks)",
            ctx.device_id,
            obs.fault_number,
            manifest.size,
            manifest.chunks,
        )
        return [
            self._pending(manifest, ctx.device_id),
            *(self._pending(c, ctx.device_id, bulk=True) for c in chunks),
        ]

    def _link_state(
        self, ctx: DeviceContext, obs: LinkStateObservation, now: datetime
    ) -> wire.Alarm | None:
        status = self.status[ctx.device_id]
        with self._lock:
            previous = status.link_up
            if previous == obs.up:
                return None
            status.link_up, status.link_reason, status.link_changed = obs.up, obs.reason, now
        if obs.up and previous is None:
            log.info("device %s: link up", ctx.device_id)
            return None  # first contact: nothing was lost
        log.warning(
            "device %s: link %s%s",
            ctx.device_id,
            "up" if obs.up else "down",
            f" ({obs.reason})" if obs.reason else "",
        )
        self.counters["comms_restored" if obs.up else "comms_lost"] += 1
        return normalize.comms_alarm(ctx, obs.up, obs.reason, now)

    def _changed(self, device_id: str, name: str, value: str, state: list[StateUpdate]) -> bool:
        with self._lock:
            if self._hashes.get((device_id, name)) == value:
                return False
            self._hashes[(device_id, name)] = value
        state.append(StateUpdate(device_id, name, value))
        return True

    def _settings_snapshot(
        self,
        ctx: DeviceContext,
        obs: SettingsObservation,
        now: datetime,
        state: list[StateUpdate],
    ) -> wire.SettingsSnapshot | None:
        content = normalize.settings_content(obs)
        digest = normalize.content_hash(content)
        with self._lock:
            previous = self._settings.get(ctx.device_id)
        reason = normalize.snapshot_reason(previous is None, obs.signalled)
        if not self._changed(ctx.device_id, "settings_hash", digest, state):
            return None
        with self._lock:
            self._settings[ctx.device_id] = content
        state.append(StateUpdate(ctx.device_id, "settings_content", json.dumps(content)))
        self.counters["settings_snapshots"] += 1
        return normalize.settings_record(ctx, content, previous, reason, now)

    def link_down_all(self, device_ids: Sequence[str], reason: str) -> list[Observation]:
        """Observations the supervisor delivers when a driver dies."""
        return [LinkStateObservation(d, False, reason) for d in device_ids]

    def inventory(self) -> list[wire.DeviceInventory]:
        return [
            wire.DeviceInventory(
                device_id=device_id,
                protocol=ctx.protocol,
                profile=ctx.profile.name,
                firmware_hash=self._hashes.get((device_id, "firmware_hash")),
                settings_hash=self._hashes.get((device_id, "settings_hash")),
            )
            for device_id, ctx in self.contexts.items()
        ]
