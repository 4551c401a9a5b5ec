"""Incident playback: a ticket's incident as a scenario `relay-sim --scenario` replays.

`relay-center incident export TICKET -o incident.toml` writes, in the simulator's scenario
format (simulator/scenario.py), the devices of the incident as relays (protocol and
profile from their birth inventory, identity from the newest firmware report, settings
from the newest snapshot, links from `--relays` or lab defaults), and every event on the
ticket's timeline as a step at its time relative to the first (plus a lead-in, so the
replaying agent has connected and interrogated first). Complete disturbance records of the
incident are written beside the file as COMTRADE and listed under `[[disturbances]]` with
their trigger time on the same time line; their relays are in the scenario even without
an event of their own, and their announcements (IEC 103 ASDU 23 events) are not steps:
the simulated relay announces a replayed record itself. Pure text building; the CLI does
the I/O.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, select, tuple_

from center.device_time import event_time
from center.disturbance import queries as disturbances
from center.store import schema as s
from center.store.queries import get_ticket
from gateway import wire

LEAD_IN_MS = 2000
# Lab links for relays `--relays` does not cover (consecutive ports per relay).
DEFAULT_104_PORT = 24041
DEFAULT_103_PORT = 21031
# An IEC 103 relay's "disturbance record available" event (ASDU 23, its `details.type`).
RECORD_LIST_ASDU = 23


class ExportError(Exception):
    """The ticket cannot be exported (unknown, or without events)."""


@dataclass
class Incident:
    ticket_id: int
    title: str
    events: list[wire.Event]
    devices: dict[str, dict[str, Any]]  # device id -> its devices-table row
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)  # complete disturbance records


def load_incident(conn: Connection, ticket_id: int) -> Incident:
    doc = get_ticket(conn, ticket_id)
    if doc is None:
        raise ExportError(f"no ticket {ticket_id}")
    refs = [tuple(e["record"]) for e in doc["timeline"] if e["record"]]
    r = s.records.c
    rows = (
        conn.execute(
            select(r.body).where(
                r.kind == "event", tuple_(r.gateway_id, r.session, r.seq).in_(refs)
            )
        ).all()
        if refs
        else []
    )
    events = sorted((wire.Event.model_validate_json(body) for (body,) in rows), key=event_time)
    if not events:
        raise ExportError(f"ticket {ticket_id} has no events to replay")
    site = doc["site"]
    records = [
        rec
        for rec in disturbances.list_records(conn, ticket_id=ticket_id)
        if rec["status"] == "complete"
    ]
    # a relay that only recorded the fault (no event of its own) is in the incident too
    ids = sorted({e.device_id for e in events if e.device_id} | {r["device_id"] for r in records})
    d = s.devices.c
    devices = {
        row["device_id"]: dict(row)
        for row in conn.execute(
            select(s.devices).where(d.site == site, d.device_id.in_(ids))
        ).mappings()
    }
    incident = Incident(ticket_id, doc["title"], events, devices)
    sn = s.settings_snapshots.c
    for device in ids:
        newest = conn.execute(
            select(sn.settings)
            .where(and_(sn.site == site, sn.device_id == device))
            .order_by(sn.id.desc())
            .limit(1)
        ).scalar()
        if newest:
            incident.settings[device] = {k: v["value"] for k, v in json.loads(newest).items()}
    for rec in records:
        found = disturbances.files(conn, rec["id"])
        assert found is not None
        incident.records.append({**rec, "files": found})
    return incident


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _relay_links(relays_from: str | None) -> dict[str, dict[str, Any]]:
    if not relays_from:
        return {}
    data = tomllib.loads(relays_from)
    return {r["id"]: r for r in data.get("relays", []) if isinstance(r, dict) and "id" in r}


def scenario_text(
    incident: Incident,
    relays_from: str | None = None,
    files_dir: str = "",
) -> tuple[str, dict[str, bytes]]:
    """The scenario TOML and the files to write beside it (relative path -> bytes)."""
    known = _relay_links(relays_from)
    t0 = event_time(incident.events[0])
    out = [
        f"# Incident of ticket {incident.ticket_id}: {incident.title}",
        "# Exported by relay-center incident export; replay with relay-sim --scenario FILE.",
        "[scenario]",
        f"name = {_toml_value(f'incident-{incident.ticket_id}')}",
        f"description = {_toml_value(incident.title)}",
    ]
    devices = sorted(
        {e.device_id for e in incident.events if e.device_id}
        | {r["device_id"] for r in incident.records}
    )
    for i, device in enumerate(devices):
        out += _relay_lines(incident, device, i, known.get(device, {}))
    skipped = announced = 0
    for e in incident.events:
        if e.point is None or e.device_id is None:
            skipped += 1  # an address its profile does not name cannot be replayed by name
            continue
        if e.details.get("type") == RECORD_LIST_ASDU:
            announced += 1  # the relay announces a record itself when it replays one
            continue
        at_ms = LEAD_IN_MS + round((event_time(e) - t0).total_seconds() * 1000)
        out += [
            "",
            "[[steps]]",
            f"at_ms = {at_ms}",
            f"relay = {_toml_value(e.device_id)}",
            f"point = {_toml_value(e.point)}",
            f"value = {_toml_value(e.value if e.value is not None else True)}",
        ]
        if e.quality:
            out.append(f"quality = {_toml_value([q for q in e.quality if q in _QUALITY])}")
    if skipped:
        out.insert(2, f"# {skipped} event(s) of addresses without a profile point were left out.")
    if announced:
        out.insert(
            2, f"# {announced} record announcement(s) left out: [[disturbances]] replay them."
        )
    files: dict[str, bytes] = {}
    for rec in incident.records:
        name, cfg, dat = rec["files"]
        base = f"{files_dir}/{name}" if files_dir else name
        files[f"{base}.cfg"], files[f"{base}.dat"] = cfg, dat
        trigger = datetime.fromisoformat(rec["trigger_time"])
        out += [
            "",
            "[[disturbances]]",
            f"relay = {_toml_value(rec['device_id'])}",
            f"fault_number = {rec['fault_number']}",
            f"trigger_at_ms = {LEAD_IN_MS + round((trigger - t0).total_seconds() * 1000)}",
            f"cfg = {_toml_value(base + '.cfg')}",
            f"dat = {_toml_value(base + '.dat')}",
            f"# {rec['analysis']['summary']}",
        ]
    return "\n".join(out) + "\n", files


def _relay_lines(incident: Incident, device: str, i: int, relay: dict[str, Any]) -> list[str]:
    """The [[relays]] table of one device: the --relays scenario's entry first, else what the
    center knows of it from its gateway's birth inventory."""
    row = incident.devices.get(device, {})
    protocol = relay.get("protocol") or row.get("protocol")
    profile = relay.get("profile") or row.get("profile")
    if not protocol or not profile:
        raise ExportError(
            f"device {device}: protocol and profile unknown (no birth inventory from its "
            "gateway yet); give them with --relays SCENARIO"
        )
    link = relay.get("link") or _lab_link(protocol, i)
    identity = relay.get("identity") or {
        k: row[k] for k in ("model", "serial", "firmware_version") if row.get(k)
    }
    if row.get("manufacturer") and "manufacturer" not in identity:
        identity = {"manufacturer": row["manufacturer"], **identity}
    out = [
        "",
        "[[relays]]",
        f"id = {_toml_value(device)}",
        f"protocol = {_toml_value(protocol)}",
        f"profile = {_toml_value(profile)}",
        f"link = {_toml_value(link)}",
    ]
    if identity:
        out.append(f"identity = {_toml_value(identity)}")
    settings = relay.get("settings") or incident.settings.get(device)
    if settings:
        out.append(f"settings = {_toml_value(settings)}")
    return out


_QUALITY = ("IV", "NT", "SB", "BL", "OV")


def _lab_link(protocol: str, i: int) -> dict[str, Any]:
    """A link on this machine for the i-th relay, for protocols whose simulator serves it
    unchanged (IEC 104 on a TCP port; IEC 103 on a bus of its own behind socket://)."""
    if protocol == "iec104":
        return {"port": DEFAULT_104_PORT + i, "common_address": i + 1}
    if protocol == "iec103":
        port = f"socket://127.0.0.1:{DEFAULT_103_PORT + i}"
        return {"port": port, "link_address": 1, "common_address": 1}
    return {}


def export(conn: Connection, ticket_id: int, output: Path, relays_from: Path | None) -> list[Path]:
    """Write the scenario and its COMTRADE files; returns what was written."""
    incident = load_incident(conn, ticket_id)
    text, files = scenario_text(
        incident,
        relays_from.read_text() if relays_from else None,
        files_dir=f"{output.stem}-records" if incident.records else "",
    )
    written = []
    for rel, data in files.items():
        path = output.parent / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    output.write_text(text)
    return [output, *written]
