"""The center's Prometheus page (`GET /metrics` on the API): records ingested and rejected,
tickets by state, the broker session, webhook delivery, ticket-engine counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from center.ingest import Counters
from center.store import schema as s
from common.prometheus import Sample, render

HELP = {
    "relay_center_records_stored_total": "records stored (each record id once)",
    "relay_center_records_duplicate_total": "records delivered again and ignored",
    "relay_center_messages_rejected_total": "MQTT messages rejected, by reason",
    "relay_center_quarantined_total": "records (and unstorable messages) quarantined, by reason",
    "relay_center_device_time_implausible_total": (
        "records whose device time was too far from gateway time (judged by gateway time)"
    ),
    "relay_center_tickets": "tickets by state (muted children included)",
    "relay_center_mqtt_connected": "1 when the MQTT session is up and subscribed",
    "relay_center_mqtt_connections_total": "MQTT sessions opened since start",
    "relay_center_webhook_pending": "webhook deliveries waiting (not dead)",
    "relay_center_events_total": "ticket-engine and delivery counters, by name",
}

_STATES = ("open", "acknowledged", "resolved", "closed")


def ticket_states(conn: Connection) -> dict[str, int]:
    t = s.tickets.c
    counts = dict.fromkeys(_STATES, 0)
    for state, n in conn.execute(select(t.state, func.count()).group_by(t.state)):
        counts[state] = n
    return counts


def webhook_pending(conn: Connection) -> int:
    w = s.webhook_outbox.c
    q = select(func.count()).where(w.delivered_at.is_(None), w.dead.is_(False))
    return int(conn.execute(q).scalar() or 0)


def center_samples(
    counters: Counters, tickets: dict[str, int], pending: int, mqtt: dict[str, Any]
) -> list[Sample]:
    values = counters.snapshot()
    samples: list[Sample] = [
        ("relay_center_records_stored_total", {}, values.pop("records_stored", 0)),
        ("relay_center_records_duplicate_total", {}, values.pop("records_duplicate", 0)),
    ]
    for name in sorted(k for k in values if k.startswith("rejected_")):
        reason = name.removeprefix("rejected_")
        samples.append(("relay_center_messages_rejected_total", {"reason": reason}, values[name]))
    for name in sorted(k for k in values if k.startswith("quarantined_")):
        reason = name.removeprefix("quarantined_")
        samples.append(("relay_center_quarantined_total", {"reason": reason}, values.pop(name)))
    implausible = values.pop("device_time_implausible", 0)
    samples.append(("relay_center_device_time_implausible_total", {}, implausible))
    samples += [("relay_center_tickets", {"state": k}, v) for k, v in sorted(tickets.items())]
    up = bool(mqtt.get("connected")) and bool(mqtt.get("subscribed"))
    samples.append(("relay_center_mqtt_connected", {}, 1 if up else 0))
    samples.append(("relay_center_mqtt_connections_total", {}, mqtt.get("connections", 0)))
    samples.append(("relay_center_webhook_pending", {}, pending))
    for name, value in values.items():
        if not name.startswith("rejected_"):
            samples.append(("relay_center_events_total", {"name": name}, value))
    return samples


def page(conn: Connection, counters: Counters, mqtt: dict[str, Any]) -> str:
    samples = center_samples(counters, ticket_states(conn), webhook_pending(conn), mqtt)
    return render(samples, HELP)
