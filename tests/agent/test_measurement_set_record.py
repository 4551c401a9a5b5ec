"""One Modbus poll's measurands become one `measurements` record, built without validation
on the hot path: its body must still be what the contract accepts."""

from __future__ import annotations

from agent.normalize import DeviceContext
from agent.pipeline import Pipeline
from gateway import outbox_retention as retention
from gateway import wire
from gateway.outbox import Outbox
from protocols.observations import MeasurementsObservation
from protocols.profile_loader import load_named
from tests.agent.test_pipeline import records


def test_a_poll_is_one_record_that_the_contract_accepts(box: Outbox) -> None:
    ctx = DeviceContext("north", "gw1", "f7", "modbus", load_named("feeder-protection-modbus"))
    pipeline = Pipeline(box, {"f7": ctx})
    values = {
        "measurement:current_phase_a": 412,
        "measurement:frequency": 49.98,
        "measurement:spare": -1.5,  # read by the [modbus] section, not named by [[points]]
    }
    units = {"measurement:frequency": "hertz", "measurement:spare": "kV"}
    pipeline.deliver_blocking(
        [MeasurementsObservation("f7", values, "periodic", "measurement_read", units)]
    )
    (record,) = records(box)  # decoded by the contract, as the center decodes it
    assert isinstance(record, wire.MeasurementSet)
    assert record.values == values
    assert record.points == {
        "measurement:current_phase_a": "current_phase_a",
        "measurement:frequency": "frequency",
    }
    # the profile's point gives the unit; the driver's fills in where the profile has none
    assert record.units == {
        "measurement:current_phase_a": "A",
        "measurement:frequency": "Hz",
        "measurement:spare": "kV",
    }
    assert (record.cause, record.cause_raw) == ("periodic", "measurement_read")
    assert (record.site, record.gateway_id, record.device_id) == ("north", "gw1", "f7")
    assert record.seq == 1
    assert pipeline.counters["measurements"] == 3
    (row,) = box.read(10)
    assert row.topic == "relay/v1/north/gw1/measurements/f7"
    assert row.kind == "measurements"


def test_a_poll_is_evicted_first_like_a_single_measurement() -> None:
    assert retention.priority("measurements") == retention.priority("measurement")
    assert retention.priority("measurements") == retention.MEASUREMENT
