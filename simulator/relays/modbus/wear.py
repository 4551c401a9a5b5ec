"""The wear counters a simulated Modbus relay keeps, as a real one counts its breaker's life.

A relay whose profile maps the measurement `breaker_operations` counts one operation each
time its `breaker_closed` status goes from closed to open (the breaker opened: a trip or an
operator's command); one that maps `trip_count` counts one trip each time a trip point is
raised while none was (a three-phase trip raises three trip points but is one command). A
scenario presets a counter with a point step on `measurement:<name>` (e.g. a breaker near
its mechanical limit); later operations count on from there.
"""

from __future__ import annotations

BREAKER_OPERATIONS = "breaker_operations"
TRIP_COUNT = "trip_count"
BREAKER_STATUS = "breaker_closed"


class WearCounters:
    """Counter values by measurement name, for the counters the profile maps."""

    def __init__(self, measurements: set[str]) -> None:
        self.values: dict[str, int] = {
            name: 0 for name in (BREAKER_OPERATIONS, TRIP_COUNT) if name in measurements
        }
        self._breaker_closed: bool | None = None
        self._raised_trips: set[str] = set()

    def preset(self, name: str, value: float) -> None:
        if name in self.values:
            self.values[name] = int(value)

    def on_status(self, name: str, on: bool) -> str | None:
        """The counter that moved (its name), if this status change is a breaker opening."""
        if name != BREAKER_STATUS:
            return None
        opened = self._breaker_closed is True and not on
        self._breaker_closed = on
        return self._count(BREAKER_OPERATIONS) if opened else None

    def on_trip(self, point: str, raised: bool) -> str | None:
        """The counter that moved, if this trip point starts a new trip command."""
        first = raised and not self._raised_trips
        if raised:
            self._raised_trips.add(point)
        else:
            self._raised_trips.discard(point)
        return self._count(TRIP_COUNT) if first else None

    def _count(self, name: str) -> str | None:
        if name not in self.values:
            return None
        self.values[name] += 1
        return name
