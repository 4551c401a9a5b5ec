"""Device times the center does not believe. Pure.

A relay's clock can be unset (year 2000 after a power loss), wrong by years, or simply far
ahead; the gateway's clock is synchronised. A device time further than the configured
limits from its record's gateway time is kept as received but flagged `implausible` in
`device_time_flags` (or `details.device_time_implausible` on a fault report), and the
center then orders and judges the record by its gateway time, as it does for a time the
relay itself marked invalid: a trip dated 2099 opens its ticket now, not in 2099.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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
