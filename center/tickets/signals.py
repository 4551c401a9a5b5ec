"""Records to signals: what each record means for tickets. Pure functions."""

from __future__ import annotations

from center.device_time import event_time, in_utc
from center.tickets.model import COMMS, PROTECTION, SELF_CHECK, SITE_COMMS, Mode, Signal
from gateway import wire


def _event_signal(record: wire.Event) -> Signal | None:
    on = record.active
    point = record.point or f"address {record.address}"
    summary = f"{record.device_id}: {record.label or point} {'raised' if on else 'cleared'}"
    if record.asked:
        summary += f" (found {record.cause})"

    def make(fault_class: str, mode: Mode, grouped: bool = False) -> Signal:
        return Signal(
            site=record.site,
            subject=record.device_id or f"@{record.gateway_id}",
            device_id=record.device_id,
            gateway_id=record.gateway_id,
            fault_class=fault_class,
            mode=mode,
            raised=on,
            severity=record.severity,
            at=event_time(record),
            summary=summary,
            ref=record.record_id,
            grouped=grouped,
            asked=record.asked,
        )

    if record.signal in ("trip", "start"):
        return make(PROTECTION, "discrete", grouped=True)
    if record.signal == "self_check":
        return make(SELF_CHECK, "condition")
    if record.signal == "alarm":
        return make(f"alarm.{point}", "condition")
    if record.signal in ("status", "unknown"):
        return make(PROTECTION, "context")
    return None  # measurement-like events open nothing


def _alarm_signal(
    record: wire.Alarm, discrete_codes: frozenset[str], ignored: frozenset[str]
) -> Signal | None:
    if record.code in ignored:
        return None
    code, on = record.code, record.state == "raised"
    if code == "comms_restored":
        code, on = "comms_lost", False
    site_level = record.device_id is None
    mode: Mode = "discrete" if code in discrete_codes else "condition"
    fault_class = code
    if code == "comms_lost":
        fault_class, mode = (SITE_COMMS if site_level else COMMS), "condition"
    return Signal(
        site=record.site,
        subject=f"@{record.gateway_id}" if site_level else str(record.device_id),
        device_id=record.device_id,
        gateway_id=record.gateway_id,
        fault_class=fault_class,
        mode=mode,
        raised=on,
        severity=record.severity,
        at=in_utc(record.gateway_time),
        summary=record.message,
        ref=record.record_id,
    )


def signal_for(
    record: wire.Record,
    discrete_codes: frozenset[str] = frozenset({"events_lost"}),
    ignored: frozenset[str] = frozenset(),
) -> Signal | None:
    """The signal an outbox record carries (lifecycle records: see lifecycle_signal)."""
    if isinstance(record, wire.Event):
        return _event_signal(record)
    if isinstance(record, wire.Alarm):
        return _alarm_signal(record, discrete_codes, ignored)
    return None


def lifecycle_signal(record: wire.Birth | wire.Death, current: bool) -> Signal | None:
    """A death raises the site's comms condition, a birth clears it; `current` says the
    record is newer than the other kind already seen (a stale will raises nothing)."""
    if not current:
        return None
    died = isinstance(record, wire.Death)
    what = f"gateway {record.gateway_id} " + (
        f"offline ({record.reason}, connection {record.connection})"
        if isinstance(record, wire.Death)
        else f"online (session {record.session}, connection {record.connection})"
    )
    return Signal(
        site=record.site,
        subject=f"@{record.gateway_id}",
        device_id=None,
        gateway_id=record.gateway_id,
        fault_class=SITE_COMMS,
        mode="condition",
        raised=died,
        severity="major",
        at=in_utc(record.gateway_time),
        summary=what,
    )
