"""The console's queue over HTTP (no browser), on SQLite and PostgreSQL: active tickets
counted by priority and state, and the filters the URL keeps (state, priority, service
point, fault class) beside those test_console.py covers (site, device, pages)."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.center.records import T0, Gateway
from tests.center.test_console import Console, console, trip_id  # noqa: F401 - fixture

S = timedelta(seconds=1)


def counts(html: str) -> dict[str, dict[str, int]]:
    table = html.split('<table class="counts"', 1)[1].split("</table>", 1)[0]
    out = {}
    for state, row in re.findall(r"<tr><th>(\w+)</th>(.*?)</tr>", table, re.S):
        values = [int(n) for n in re.findall(r">(\d+)</a></td>", row)]
        out[state] = dict(zip(("P1", "P2", "P3", "P4"), values, strict=True))
    return out


def listed(html: str) -> list[int]:
    return [int(t) for t in re.findall(r'data-ticket="(\d+)"', html)]


def test_counts_by_priority_and_state_and_the_filters_in_the_url(console: Console) -> None:  # noqa: F811
    h = console.h
    gw = Gateway(gateway_id="gw2", site="north", session=2)
    h.send(gw.birth(T0))
    h.send(gw.event("line2", "self_check_fail", True, T0 + S, signal="self_check"))
    trip = trip_id(console)
    [check] = h.tickets(fault_class="self_check")
    c, csrf = console.login("olga")
    assert c.post(f"/tickets/{check['id']}/acknowledge", data={"csrf": csrf}).status_code == 303

    page = c.get("/queue").text
    table = counts(page)
    assert table["open"]["P1"] == 1
    assert table["acknowledged"][check["priority"]] == 1
    assert sum(table["open"].values()) + sum(table["acknowledged"].values()) == 2
    assert 'href="/queue?state=open&amp;priority=P1"' in page

    assert listed(c.get("/queue?priority=P1").text) == [trip]
    assert listed(c.get("/queue?state=acknowledged").text) == [check["id"]]
    assert listed(c.get("/queue?fault_class=self_check").text) == [check["id"]]
    point = h.ticket(trip)["service_point"]
    assert sorted(listed(c.get(f"/queue?service_point={point}").text)) == sorted(
        [trip, check["id"]]
    )
    assert listed(c.get("/queue?service_point=nowhere").text) == []
    kept = c.get("/queue?priority=P1&fault_class=protection_operation").text
    assert re.search(r'<option value="P1" selected>', kept)
    assert re.search(r'<option value="protection_operation" selected>', kept)
