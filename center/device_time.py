"""Device times the center does not believe. Pure.

A relay's clock can be unset (year 2000 after a power loss), wrong by years, or simply far
ahead; the gateway's clock is synchronised. A device time further than the configured
limits from its record's gateway time is kept as received but flagged `implausible` in
`device_time_flags` (or `details.device_time_implausible` on a fault report), and the
center then orders and judges the record by its gateway time, as it does for a time the
relay itself marked invalid: a trip dated 2099 opens its ticket now, not in 2099.

`record_time` is that rule for every record: the time the store keeps as its
`event_time`, and the one tickets, drift checks and gateway silence judge it by.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from center.config import IngestConfig
from gateway import wire

IMPLAUSIBLE = "implausible"
FAULT_REPORT_FLAG = "device_time_implausible"


class DeviceClockCheck:
    def __init__(self, config: IngestConfig) -> None:
        self.ahead = timedelta(seconds=config.device_time_ahead_s)
        self.behind = timedelta(seconds=config.device_time_behind_s)

    def plausible(self, device_time: datetime, gateway_time: datetime) -> bool:
        return gateway_time - self.behind <= device_time <= gateway_time + self.ahead

    def judge(self, record: wire.Record) -> tuple[wire.Record, bool]:
        """The record, flagged when its device time is implausible; and whether it was."""
        if isinstance(record, wire.Event | wire.Measurement | wire.MeasurementSet):
            at, flags = record.device_time, record.device_time_flags
            if at is None or "invalid" in flags or IMPLAUSIBLE in flags:
                return record, False
            if self.plausible(at, record.gateway_time):
                return record, False
            update = {"device_time_flags": [*flags, IMPLAUSIBLE]}
            return record.model_copy(update=update), True
        if isinstance(record, wire.FaultReport) and record.fault_time is not None:
            if self.plausible(record.fault_time, record.gateway_time):
                return record, False
            details = {**record.details, FAULT_REPORT_FLAG: True}
            return record.model_copy(update={"details": details}), True
        return record, False


# --- the time the center orders and judges a record by ----------------------------------

# Device-time flags that make the center use gateway time instead: `invalid` from the
# relay, `implausible` from the check above.
_UNTRUSTED_TIME = frozenset({"invalid", IMPLAUSIBLE})


def in_utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken as UTC."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    offset = at.utcoffset()
    return (at - offset if offset else at).replace(tzinfo=UTC)


def event_time(record: wire.Event | wire.Measurement | wire.MeasurementSet) -> datetime:
    """Device time when it is trusted, else the gateway's receive time."""
    if record.device_time is not None and _UNTRUSTED_TIME.isdisjoint(record.device_time_flags):
        return in_utc(record.device_time)
    return in_utc(record.gateway_time)


def record_time(record: wire.Record) -> datetime:
    """A record's time: the trusted device time of an event or measurement, a disturbance
    record's trigger, a fault report's fault time unless found implausible; else the
    gateway's receive time. Stored as the record's `event_time`; tickets and silence
    judge by it."""
    if isinstance(record, wire.Event | wire.Measurement | wire.MeasurementSet):
        return event_time(record)
    if isinstance(record, wire.DisturbanceRecord):
        return in_utc(record.trigger_time)
    if (
        isinstance(record, wire.FaultReport)
        and record.fault_time is not None
        and not record.details.get(FAULT_REPORT_FLAG)
    ):
        return in_utc(record.fault_time)
    return in_utc(record.gateway_time)
