"""The simulated relay's wear counters: what counts as one breaker operation and one trip."""

from __future__ import annotations

from simulator.relays.modbus.wear import WearCounters


def test_an_opening_counts_once_and_a_three_phase_trip_is_one_trip() -> None:
    wear = WearCounters({"breaker_operations", "trip_count", "frequency"})
    assert wear.values == {"breaker_operations": 0, "trip_count": 0}
    wear.preset("breaker_operations", 9_998)
    assert wear.on_status("breaker_closed", False) is None  # open from the start: no operation
    wear.on_status("breaker_closed", True)
    assert [wear.on_trip(p, True) for p in ("a", "b", "c")] == ["trip_count", None, None]
    assert wear.on_status("breaker_closed", False) == "breaker_operations"
    assert wear.on_status("breaker_closed", False) is None  # still open: not a second one
    for p in ("a", "b", "c"):
        wear.on_trip(p, False)
    assert wear.on_trip("a", True) == "trip_count"
    assert wear.values == {"breaker_operations": 9_999, "trip_count": 2}


def test_a_profile_without_counters_counts_nothing() -> None:
    wear = WearCounters({"frequency"})
    wear.on_status("breaker_closed", True)
    assert wear.on_status("breaker_closed", False) is None
    assert wear.on_trip("a", True) is None
    assert wear.values == {}
