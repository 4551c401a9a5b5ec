"""Malformed answers (wrong byte count, bad CRC, exception codes, trailing garbage) are
counted per unit, the link resyncs, and nothing crashes."""

from __future__ import annotations

import pytest

from protocols.config import SerialBusConfig
from protocols.errors import DecodeError
from protocols.modbus.driver import ModbusDriver
from protocols.modbus.link import ModbusExceptionResponse, ModbusLink, UnitNoResponse
from simulator.relays.modbus.image import RegisterImage

from .helpers import RecordingSink, plan, profile, rtu_device, running, wait_until
from .hostile import HostileRtuServer


def _image() -> RegisterImage:
    section = profile().section
    assert section is not None
    image = RegisterImage(section)  # type: ignore[arg-type]
    image.write("holding", 0, list(range(1, 41)))
    return image


@pytest.mark.parametrize(
    ("mangle", "error", "counter"),
    [
        ("wrong_byte_count", (UnitNoResponse, DecodeError), "wrong_byte_count"),
        ("bad_crc", UnitNoResponse, "bad_crc"),
        ("exception", ModbusExceptionResponse, "exception_responses"),
        ("trailing_garbage", None, "trailing_garbage"),
    ],
)
async def test_each_malformed_answer_is_counted_and_the_link_resyncs(
    mangle: str, error: type[Exception] | tuple[type[Exception], ...] | None, counter: str
) -> None:
    server = HostileRtuServer(_image(), unit=5)
    port = await server.start()
    link = ModbusLink("hostile", bus=SerialBusConfig(id="b", port=f"socket://127.0.0.1:{port}"))
    await link.open()
    try:
        server.script.extend([mangle])
        if error is None:
            assert await link.read_registers(5, "holding", 0, 4, 0.5) == [1, 2, 3, 4]
        else:
            with pytest.raises(error):
                await link.read_registers(5, "holding", 0, 4, 0.5)
        # The next answer is good and decodes: the line resynced.
        for _ in range(3):
            assert await link.read_registers(5, "holding", 2, 3, 0.5) == [3, 4, 5]
        counters = link.unit_counters(5)
        assert getattr(counters, counter) == 1, counters
        assert counters.responses >= 3
    finally:
        link.close()
        await server.stop()


async def test_the_driver_survives_a_stream_of_malformed_answers() -> None:
    image = _image()
    server = HostileRtuServer(image, unit=5)
    port = await server.start()
    try:
        url = f"socket://127.0.0.1:{port}"
        bus = SerialBusConfig(id="b", port=url, parity="N", timeout_ms=300)
        driver = ModbusDriver(plan([rtu_device("f5", "b", 5, retries=3)], bus))
        sink = RecordingSink()
        server.cycle = ("good", "good", "bad_crc", "good", "trailing_garbage", "good",
                        "exception", "good", "wrong_byte_count", "good", "good")  # fmt: skip
        from simulator.relays.modbus.image import RegisterImage as _  # noqa: F401 - image is shared

        async with running(driver, sink) as task:
            for i in range(20):
                image.append_event(11, fields={"value": i})
                await wait_until(
                    lambda: len(sink.events()) >= i + 1,  # noqa: B023
                    what=f"event {i}",
                )
            assert not task.done()
        values = [e.details["value"] for e in sink.events()]
        assert all(isinstance(v, int) for v in values), values
        assert sorted({v for v in values if isinstance(v, int)}) == list(range(20))
        counters = driver.counters["f5"]
        for kind in ("bad_crc", "trailing_garbage", "exception_responses", "wrong_byte_count"):
            assert counters[kind] > 0, (kind, counters)
        assert set(server.function_codes) <= {3, 4}
    finally:
        await server.stop()
