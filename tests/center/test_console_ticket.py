"""The console's ticket page over HTTP (no browser), on SQLite and PostgreSQL: the summary,
the timeline in device time with millisecond offsets from the first event, the children
and the webhook deliveries, as the ticket's records made them."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.center.records import T0, Gateway
from tests.center.test_console import Console, console, trip_id  # noqa: F401 - fixture

S = timedelta(seconds=1)


def section(html: str, heading: str) -> str:
    return html.split(f"<h2>{heading}</h2>", 1)[1].split("</section>", 1)[0]


def text(html: str) -> str:
    return re.sub(r"\s+,", ",", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def test_summary_and_the_timeline_with_millisecond_offsets(console: Console) -> None:  # noqa: F811
    c, _ = console.login("vera")
    page = c.get(f"/tickets/{trip_id(console)}").text
    summary = text(page.split('<section class="summary">', 1)[1].split("</section>", 1)[0])
    for fact in (
        "State open",
        "Priority P1",
        "Site north",
        "Devices busbar, line1, line2",
        "Service point",
        "Occurrences 1",
        "Episode 1",
        "Reopened 0×",
    ):
        assert fact in summary, (fact, summary)
    timeline = section(page, "Timeline")
    rows = [
        text(r)
        for r in re.findall(r'<tr class="entry-[a-z]+ event [a-z]+">(.*?)</tr>', timeline, re.S)
    ]
    # device time to the millisecond, and the offset from the incident's first event (line
    # 1's start): line 2's start, both phase-A trips, the busbar's breaker-failure
    # initiation, line 1's reclose
    assert rows[0] == "2025-03-01 08:00:01.000Z +0 ms event line1 line1: start raised"
    seen = {r.split(" ", 4)[4]: r.split(" ")[2] for r in rows}
    assert seen["grouped line2 line2: start raised"] == "+3"
    assert seen["event line1 line1: trip_phase_a raised"] == "+21"
    assert seen["event line2 line2: trip_phase_a raised"] == "+24"
    assert seen["grouped busbar busbar: bf_init_phase_a raised"] == "+27"
    assert seen["event line1 line1: reclose raised"] == "+900"
    assert "2025-03-01 08:00:01.900Z +900 ms" in rows[-3]


def test_children_and_webhook_deliveries(console: Console) -> None:  # noqa: F811
    h = console.h
    gw = Gateway(gateway_id="gw2", site="south")
    h.send(gw.birth(T0))
    h.send(gw.alarm("f0", "comms_lost", "raised", T0 + S))
    h.at(T0 + 10 * S)
    h.send(gw.death(T0 + 10 * S))  # the site's comms ticket takes f0's as a muted child
    [site] = h.tickets(site="south", fault_class="site_comms")
    [child] = [t for t in h.tickets(site="south") if t["id"] != site["id"]]
    c, _ = console.login("vera")
    page = c.get(f"/tickets/{site['id']}").text
    children = text(section(page, "Children"))
    assert f"#{child['id']}" in children
    assert "muted" in children
    child_page = c.get(f"/tickets/{child['id']}").text
    assert f'<dt>Parent</dt><dd><a href="/tickets/{site["id"]}">' in child_page
    deliveries = section(page, "Webhook deliveries")
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(\d+)</td>", deliveries)
    assert rows
    assert {endpoint for endpoint, _ in rows} == {"hook"}
    assert "pending" in deliveries
