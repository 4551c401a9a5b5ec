"""`relay-center incident export` on both backends: steps at their relative times, relays
from the inventory, and the incident's disturbance records written beside the scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from center.incident import LEAD_IN_MS, ExportError, export
from gateway import comtrade, wire
from simulator.scenario import load_scenario
from tests.center.disturbance_support import transfer
from tests.center.records import Gateway, seed_records
from tests.center.test_disturbance_intake import send_all, send_seed


def birth_with_inventory(gw: Gateway) -> wire.Birth:
    devices = [
        wire.DeviceInventory(device_id=d, protocol="iec104", profile=p)
        for d, p in (
            ("line1", "line-protection"),
            ("line2", "line-protection"),
            ("busbar", "busbar-protection"),
        )
    ]
    return gw.birth().model_copy(update={"devices": devices})


def test_export_writes_a_scenario_the_simulator_loads_with_its_records(
    make_harness: Any, tmp_path: Path
) -> None:
    h = make_harness()
    gw = Gateway()
    h.send(birth_with_inventory(gw))
    send_seed(h, gw)
    m, chunks = transfer(gw)
    send_all(h, m, chunks)
    [ticket] = h.tickets(fault_class="protection_operation")
    out = tmp_path / "lab" / "incident.toml"
    out.parent.mkdir()
    with h.engine.connect() as conn:
        written = export(conn, ticket["id"], out, None)
    assert written[0] == out
    assert len(written) == 3

    scenario = load_scenario(out)  # validates relays, points and the record files
    # The seed's events but the breaker's state before the fault, in order.
    expected = [(e.device_id, e.point, e.value) for e in seed_records(Gateway())[1:]]
    assert [(s.relay, s.point, s.value) for s in scenario.steps] == expected
    first = scenario.steps[0]
    assert (first.relay, first.point, first.at_ms) == ("line1", "start", LEAD_IN_MS)
    trip = next(s for s in scenario.steps if (s.relay, s.point) == ("line2", "trip_phase_a"))
    assert trip.at_ms == LEAD_IN_MS + 24
    [ref] = scenario.disturbances
    assert (ref.relay, ref.fault_number, ref.trigger_at_ms) == ("line1", 17, LEAD_IN_MS + 21)
    record = comtrade.read(
        scenario.record_file(ref, "cfg").read_bytes(), scenario.record_file(ref, "dat").read_bytes()
    )
    assert record.device == "line1"
    assert len(record.analog) == 6
    assert "AG fault" in out.read_text()  # the analysis, as a comment for the engineer


def test_a_relay_that_only_recorded_the_fault_is_exported_with_a_lab_link(
    make_harness: Any, tmp_path: Path
) -> None:
    """An IEC 103 relay that recorded the fault without an event of its own on the ticket
    is still a relay of the scenario, on a bus the simulator serves as it is."""
    h = make_harness()
    gw = Gateway()
    recorder = wire.DeviceInventory(
        device_id="line3-103", protocol="iec103", profile="line-protection-103"
    )
    birth = birth_with_inventory(gw)
    h.send(birth.model_copy(update={"devices": [*birth.devices, recorder]}))
    send_seed(h, gw)
    send_all(h, *transfer(gw, device_id="line3-103"))
    [ticket] = h.tickets(fault_class="protection_operation")
    out = tmp_path / "incident.toml"
    with h.engine.connect() as conn:
        export(conn, ticket["id"], out, None)

    scenario = load_scenario(out)
    assert [r.id for r in scenario.relays] == ["busbar", "line1", "line2", "line3-103"]
    assert scenario.relay("line3-103").link == {
        "port": "socket://127.0.0.1:21034",
        "link_address": 1,
        "common_address": 1,
    }
    assert {s.relay for s in scenario.steps} == {"busbar", "line1", "line2"}
    assert [d.relay for d in scenario.disturbances] == ["line3-103"]


def test_export_of_an_unknown_ticket_says_so(make_harness: Any, tmp_path: Path) -> None:
    h = make_harness()
    with h.engine.connect() as conn, pytest.raises(ExportError, match="no ticket 42"):
        export(conn, 42, tmp_path / "x.toml", None)
    assert not (tmp_path / "x.toml").exists()


def test_export_without_an_inventory_names_the_device_and_the_remedy(
    make_harness: Any, tmp_path: Path
) -> None:
    h = make_harness()
    send_seed(h, Gateway())
    [ticket] = h.tickets(fault_class="protection_operation")
    with h.engine.connect() as conn, pytest.raises(ExportError, match=r"device busbar: .*--relays"):
        export(conn, ticket["id"], tmp_path / "x.toml", None)
