"""The center's Prometheus page, after real ingest into both backends."""

from __future__ import annotations

from fastapi.testclient import TestClient

from center.api import ApiContext, create_app
from center.ingest import Message
from tests.center.records import T0, Gateway, seed_records


def metric(page: str, line_start: str) -> float:
    (line,) = [x for x in page.splitlines() if x.startswith(line_start + " ")]
    return float(line.split()[-1])


def test_metrics_count_records_rejections_and_tickets_by_state(make_harness):
    h = make_harness()
    gw = Gateway()
    seed = seed_records(gw)
    for r in seed + seed:  # delivered twice: stored once
        h.send(r)
    h.send(gw.event("line2", "self_check_fail", True, T0, signal="self_check"))
    h.ingestor.ingest([Message("relay/v1/north/gw1/event/line1", b"{not json")])
    ctx = ApiContext(h.config, h.engine, h.service, h.counters, lambda: {"mqtt": {}})
    with TestClient(create_app(ctx)) as client:
        answer = client.get("/metrics")  # no token, like /healthz
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    page = answer.text
    assert metric(page, "relay_center_records_stored_total") == len(seed) + 1
    assert metric(page, "relay_center_records_duplicate_total") == len(seed)
    assert "# TYPE relay_center_records_stored_total counter" in page
    rejected = [x for x in page.splitlines() if x.startswith("relay_center_messages_rejected")]
    assert len(rejected) == 1, page
    assert rejected[0].endswith(" 1"), page
    assert metric(page, 'relay_center_tickets{state="open"}') == 2
    assert metric(page, 'relay_center_tickets{state="closed"}') == 0
    assert "# TYPE relay_center_tickets gauge" in page
    assert metric(page, "relay_center_mqtt_connected") == 0
    assert metric(page, 'relay_center_events_total{name="tickets_opened"}') == 2
