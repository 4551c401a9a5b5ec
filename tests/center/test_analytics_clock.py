"""Clock quality per relay: the pure figures and verdicts, then the `clock_quality`
condition ticket through real ingest and the ticket engine on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from center.analytics.clock import ClockReading, ClockState, evaluate, figures, fold, judge
from center.analytics.config import ClockConfig
from gateway import wire
from tests.center.records import T0, Gateway, message

CFG = ClockConfig(min_spacing_s=0, min_samples=3, judge_samples=5)


def _readings(
    offsets_ms: list[float], every_s: float = 60.0, start: Any = T0
) -> list[ClockReading]:
    return [
        ClockReading(
            start + timedelta(seconds=i * every_s),
            start + timedelta(seconds=i * every_s, milliseconds=o),
        )
        for i, o in enumerate(offsets_ms)
    ]


def test_offsets_give_median_p95_and_verdict():
    st = fold(ClockState("s", "d", "g"), _readings([100, 120, 110, 900, 105]), CFG)
    figs = figures(st)
    assert figs.sample_count == 5
    assert figs.p50_ms == 110
    assert figs.p95_abs_ms == 900
    assert judge(st, CFG)[0] == "good"  # one late outlier does not move the median
    worse = fold(st, _readings([700, 710, 720, 730], start=T0 + timedelta(hours=1)), CFG)
    verdict, why = judge(worse, CFG)
    assert verdict == "offset"
    assert "median offset +710 ms over the newest 5" in why
    assert "threshold 500 ms" in why


def test_drift_per_day_is_the_slope():
    # +50 ms per hour = +1200 ms per day, sampled every 10 minutes for 6 hours
    offsets = [50 * (i / 6) for i in range(37)]
    st = fold(ClockState("s", "d", "g"), _readings(offsets, every_s=600), CFG)
    assert figures(st).drift_ms_per_day == 1200.0


def test_samples_are_spaced_and_windowed():
    cfg = ClockConfig(min_spacing_s=30, window_s=3600, min_samples=1)
    burst = [ClockReading(T0 + timedelta(seconds=i), T0) for i in range(100)]
    st = fold(ClockState("s", "d", "g"), burst, cfg)
    assert len(st.samples) == 4  # 0, 30, 60, 90 s
    later = fold(st, [ClockReading(T0 + timedelta(hours=2), T0 + timedelta(hours=2))], cfg)
    assert len(later.samples) == 1  # the old ones left the window
    assert later.timed_events == 101


def test_relay_flags_decide_before_offsets():
    good = fold(ClockState("s", "d", "g"), _readings([5, 6, 7]), CFG)
    st, change = evaluate(good, CFG)
    assert (st.verdict, change) == ("good", None)
    iv = fold(st, [ClockReading(T0 + timedelta(hours=1), T0, ("invalid",))], CFG)
    st, change = evaluate(iv, CFG)
    assert (st.verdict, st.bad, change) == ("invalid", True, True)
    assert len(st.samples) == 3  # an invalid tag is no reading of the clock
    sub = fold(st, [ClockReading(T0 + timedelta(hours=2), T0, ("substituted",))], CFG)
    st, change = evaluate(sub, CFG)
    assert (st.verdict, change, st.substituted_events) == ("good", False, 1)
    nosync = fold(st, [ClockReading(T0 + timedelta(hours=3), T0, ("invalid",), True)], CFG)
    st, change = evaluate(nosync, CFG)
    assert (st.verdict, change) == ("unsynchronised", True)


def test_an_hour_off_hints_at_local_time():
    st = fold(ClockState("s", "d", "g"), _readings([3_600_020] * 5), CFG)
    verdict, why = judge(st, CFG)
    assert verdict == "offset"
    assert "local (summer) time" in why


def _event(gw: Gateway, device: str, at: Any, offset_ms: float, **extra: Any) -> wire.Event:
    common = gw._common(device, at)
    return wire.Event(
        **common,
        address="1/1",
        point="start",
        signal="status",
        severity="info",
        value=True,
        device_time=at + timedelta(milliseconds=offset_ms),
        device_time_flags=extra.pop("flags", []),
        cause=extra.pop("cause", "spontaneous"),
        **extra,
    )


CONFIG = {
    "analytics": {"clock": {"min_samples": 3, "judge_samples": 3, "min_spacing_s": 0}},
    "tickets": {"auto_resolve_after_s": 60},
    "routing": {"regions": {"north": {"service_point": "sp-north"}},
                "sites": {"north": {"region": "north"}}},
}  # fmt: skip


def test_clock_ticket_opens_on_offset_and_resolves_when_good(make_harness):
    h = make_harness(CONFIG)
    gw = Gateway()
    at = [T0 + timedelta(minutes=i) for i in range(12)]
    h.at(at[0])
    h.send(*[_event(gw, "line1", at[i], 40) for i in range(3)])
    assert h.tickets(fault_class="clock_quality") == []
    # interrogated answers are no clock readings, however far off
    h.send(*[_event(gw, "line1", at[3 + i], 90_000, cause="INTERROGATED_BY_STATION")
             for i in range(3)])  # fmt: skip
    assert h.tickets(fault_class="clock_quality") == []
    h.send(*[_event(gw, "line1", at[6 + i], 1500) for i in range(2)])
    [t] = h.tickets(fault_class="clock_quality")
    assert (t["state"], t["priority"], t["service_point"]) == ("open", "P4", "sp-north")
    assert t["title"] == "Relay clock quality at north: line1"
    doc = h.ticket(t["id"])
    assert "median offset +1500 ms over the newest 3" in doc["timeline"][-1]["summary"]
    with h.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT verdict, bad, sample_count, p50_ms FROM clock_quality"
        ).one()
    assert (row[0], bool(row[1]), row[2], row[3]) == ("offset", True, 5, 40)
    h.send(*[_event(gw, "line1", at[8 + i], 20) for i in range(3)])  # set right again
    h.at(at[11] + timedelta(seconds=61))
    h.tick()
    [t] = h.tickets(fault_class="clock_quality")
    assert (t["state"], t["resolved_by"]) == ("resolved", "auto")


def test_invalid_flag_and_unanswered_sync_open_tickets(make_harness):
    h = make_harness(CONFIG)
    gw = Gateway()
    h.send(_event(gw, "line1", T0, 0, flags=["invalid"]))
    h.send(_event(gw, "line3", T0, 0, cause="other", cause_raw="time_sync", flags=["invalid"]))
    tickets = {t["devices"][0]: t for t in h.tickets(fault_class="clock_quality")}
    assert sorted(tickets) == ["line1", "line3"]
    assert (
        "marks its clock invalid (IV)"
        in h.ticket(tickets["line1"]["id"])["timeline"][-1]["summary"]
    )
    assert (
        "answer to the last time sync is marked invalid"
        in h.ticket(tickets["line3"]["id"])["timeline"][-1]["summary"]
    )


def test_duplicates_do_not_count_twice(make_harness):
    h = make_harness(CONFIG)
    gw = Gateway()
    events = [_event(gw, "line1", T0 + timedelta(minutes=i), 10) for i in range(3)]
    h.ingestor.ingest([message(*events)])
    h.ingestor.ingest([message(*events)])
    assert h.scalar("SELECT timed_events FROM clock_quality") == 3


def test_device_page_figures_and_chart(make_harness):
    from fastapi.testclient import TestClient

    from center.api import ApiContext, create_app

    token = "clock-token-0123456789"
    h = make_harness({**CONFIG, "api": {"tokens": [{"name": "ops", "token": token}]}})
    gw = Gateway()
    h.send(*[_event(gw, "line1", T0 + timedelta(minutes=i), 700) for i in range(4)])
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(ApiContext(h.config, h.engine, h.service, h.counters))) as api:
        doc = api.get("/api/v1/devices/north/line1/clock", headers=auth).json()
        assert (doc["verdict"], doc["sample_count"], doc["p50_ms"]) == ("offset", 4, 700)
        assert len(doc["samples"]) == 4
        svg = api.get("/api/v1/devices/north/line1/clock.svg", headers=auth)
        assert svg.status_code == 200
        assert svg.text.count("<circle") == 4
        assert api.get("/api/v1/devices/north/nope/clock", headers=auth).status_code == 404
        [row] = api.get("/api/v1/analytics/clock", headers=auth).json()
        assert row["bad"] is True
        assert "samples" not in row


def test_summer_time_is_said_and_counted_but_is_no_fault_by_itself():
    su = [
        ClockReading(r.gateway_at, r.device_at, ("summer_time",))
        for r in _readings([40, 45, 50, 55])
    ]
    st, change = evaluate(fold(ClockState("s", "d", "g"), su, CFG), CFG)
    assert (st.verdict, st.bad, change, st.summer_time_events) == ("good", False, None, 4)
    assert len(st.samples) == 4  # a summer-time tag is still a reading of the clock
    assert "stamps local summer time (SU): 4 of its 4 timed events" in st.summary
    # the hour a relay on summer time is off is an offset like any other, said plainly
    later = T0 + timedelta(hours=2)
    hour = [
        ClockReading(r.gateway_at, r.device_at, ("summer_time",))
        for r in _readings([3_600_040] * 5, start=later)
    ]
    st, change = evaluate(fold(st, hour, CFG), CFG)
    assert (st.verdict, change) == ("offset", True)
    assert "stamps local summer time (SU): 9 of its 9" in st.summary
    assert "?" not in st.summary  # no guess at local time when the relay says so
    # back on standard time: no longer said, the count keeps its history
    std = fold(st, _readings([3_600_040], start=later + timedelta(hours=1)), CFG)
    verdict, why = judge(std, CFG)
    assert verdict == "offset"
    assert std.summer_time_events == 9
    assert "(SU)" not in why


def test_a_relay_on_summer_time_shows_on_its_page_and_in_the_site_figures(make_harness):
    from tests.center.test_console import Console

    token = "clock-token-0123456789"
    h = make_harness({**CONFIG, "api": {"tokens": [{"name": "ops", "token": token}]}})
    gw = Gateway()
    at = [T0 + timedelta(minutes=i) for i in range(9)]
    h.send(*[_event(gw, "line1", at[i], 40, flags=["summer_time"]) for i in range(3)])
    h.send(*[_event(gw, "line2", at[i], 40) for i in range(3)])
    assert h.tickets(fault_class="clock_quality") == []  # SU alone opens nothing
    with h.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT device_id, verdict, summer_time_events, summary FROM clock_quality "
            "ORDER BY device_id"
        ).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [("line1", "good", 3), ("line2", "good", 0)]
    assert "stamps local summer time (SU): 3 of its 3 timed events" in rows[0][3]
    assert "(SU)" not in rows[1][3]

    console = Console(h)
    auth = {"Authorization": f"Bearer {token}"}
    stats = console.client().get("/api/v1/analytics/stats", headers=auth).json()["clock"]
    assert (stats["relays_summer_time"], stats["relays_bad"]) == (1, 0)
    assert stats["sites"][0]["summer_time"] == 1
    c, _ = console.login("vera")
    page = c.get("/devices/north/line1").text
    assert "<dt>Local summer time (SU)</dt><dd>3 of 3" in page
    assert "newest event on summer time" in page
    assert "On summer time (SU)" in c.get("/statistics").text

    # the hour it stamps ahead passes the offset threshold: that opens the ticket
    h.send(*[_event(gw, "line1", at[3 + i], 3_600_040, flags=["summer_time"]) for i in range(3)])
    [t] = h.tickets(fault_class="clock_quality")
    summary = h.ticket(t["id"])["timeline"][-1]["summary"]
    assert "median offset +3600.04 s" in summary
    assert "stamps local summer time (SU): 6 of its 6 timed events" in summary
