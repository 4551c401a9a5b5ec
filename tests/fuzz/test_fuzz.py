"""100,000 hostile inputs each for the IEC 103 codec (with the driver's observations and
the stream's resync) and for Modbus answers (pymodbus' client-side framing, the link's
classification, the driver's register decoding): nothing escapes but the errors each
decoder names (`simulator/harness/fuzz.py`). `bench/fuzz.py` runs 1,000,000 of each."""

from __future__ import annotations

from simulator.harness.fuzz import fuzz_iec103, fuzz_modbus

INPUTS = 100_000


def test_iec103_codec_observations_and_resync() -> None:
    out = fuzz_iec103(INPUTS)
    print(dict(out))
    # Every path really ran, with both outcomes where there are two.
    assert out["asdu decoded"] > 1_000
    assert out["asdu rejected"] > 10_000
    assert out["frame rejected"] > 10_000
    assert out["bad frames"] > 10_000
    # After noise or a damaged frame, the stream finds the next good frame every time.
    assert out["resynced"] == INPUTS // 3
    assert out["resync missed"] == 0


def test_modbus_answers_and_register_content() -> None:
    out = fuzz_modbus(INPUTS)
    print(dict(out))
    assert out["answer decoded"] > 5_000
    assert out["answer rejected"] > 50
    assert out["answer incomplete"] > 10_000
    assert out["exception answer"] > 10
    assert out["content decoded"] > 5_000
    assert out["content rejected"] > 5_000
