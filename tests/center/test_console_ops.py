"""The console's gateways and operations pages over HTTP (no browser), on SQLite and
PostgreSQL: what they show comes from the records that arrived (births, health, deaths,
rejected messages, sequence gaps, webhook deliveries), not only a page that loads."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from center.ingest import Message
from gateway import wire
from tests.center.records import T0, Gateway, message, seed_records
from tests.center.test_console import Console


def cells(html: str, table: str) -> list[list[str]]:
    """The text of each body row's cells of the first `<table class="{table}">` (or the
    table under the heading `table`)."""
    if table.startswith("<h2>"):
        html = html.split(table, 1)[1]
        body = html.split("</table>", 1)[0]
    else:
        body = html.split(f'<table class="{table}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]


@pytest.fixture
def ops(make_harness: Any) -> Console:
    """gw1: born, reports a health record (4 queued, the oldest 95 s, line2's link down),
    sends the seed's incident with one record lost on the way (a gap), then stops (a
    death). One message of garbage arrives on its topic."""
    h = make_harness()
    gw = Gateway()
    h.send(gw.birth(T0, health_interval_s=60))
    health = wire.Health(
        site=gw.site, gateway_id=gw.gateway_id, session=gw.session, seq=0, gateway_time=T0,
        connection=gw.connection, outbox_depth=4, outbox_oldest_age_s=95.0,
        links={"line1": True, "line2": False}, health_interval_s=60,
    )  # fmt: skip
    h.send(health)
    records = seed_records(gw)
    for r in records[:3] + records[4:]:  # the 4th never arrives
        h.send(r)
    h.lost_seq = records[3].seq
    good = message(records[0])
    h.ingestor.ingest([Message(good.topic, b"\xff\xfe garbage")])
    return Console(h)


def test_gateways_show_health_links_and_the_death_with_its_ticket(ops: Console) -> None:
    c, _ = ops.login("vera")
    [row] = cells(c.get("/gateways").text, "gateways")
    gateway, site, state, agent, session, birth, death, _seen, depth, oldest, links, comms = row
    assert (gateway, site, state, agent, session) == ("gw1", "north", "online", "test", "1/1")
    assert birth != "–"
    assert death == "–"
    assert (depth, oldest) == ("4", "1.6 min")
    assert links.split() == ["line1", "line2"]
    assert comms == "none"
    gateways_html = c.get("/gateways").text
    assert 'class="status offline">line2' in gateways_html  # the link that is down

    gw = Gateway()
    gw.connection = 1
    ops.h.at(T0 + timedelta(minutes=1))
    ops.h.send(gw.death(T0 + timedelta(minutes=1)))
    [row] = cells(c.get("/gateways").text, "gateways")
    assert row[2] == "offline"
    assert re.fullmatch(r"#\d+ P\d", row[11]), row[11]  # its site_comms ticket


def test_operations_show_rejections_gaps_backlog_and_latency(ops: Console) -> None:
    c, _ = ops.login("vera")
    html = c.get("/operations").text
    assert cells(html, "<h2>Rejected messages by reason</h2>")[0] == ["malformed", "1"]
    [gap] = cells(html, "<h2>Sequence gaps</h2>")
    lost = ops.h.lost_seq  # the record held back, and seq 1 that the birth's count skipped
    assert gap[:3] == ["gw1", "1", "north"]
    assert gap[4] == "2"
    assert f"{lost}–{lost}" in gap[5].split()
    backlog = cells(html, "<h2>Webhook backlog</h2>")
    assert backlog
    assert backlog[0][0] == "hook"
    assert int(backlog[0][1]) >= 1
    tiles = re.sub(
        r"<[^>]+>", " ", html.split('<section class="tiles">', 1)[1].split("</section>")[0]
    )
    assert re.search(r"\b1\s+messages rejected", tiles), tiles
    assert re.search(r"\b1\s+sessions with sequence gaps", tiles), tiles
    assert "(no tickets since start)" not in tiles
    # device time to ticket: the harness's records are old, so the figure itself is large
    latency = r"event-to-ticket p99\s+\(p50 [\d.,]+ \w+, max [\d.,]+ \w+, 1 tickets"
    assert re.search(latency, tiles), tiles
