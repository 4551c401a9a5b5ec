"""A relay's answer to a time sync (ASDU 6, COT time_sync) becomes an observation, so the
center can judge its clock: taken (IV clear) or not, and how far off."""

from __future__ import annotations

from datetime import UTC, datetime

from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_base import Cot
from protocols.iec103.codec.asdu_messages import TimeSync
from protocols.iec103.codec.time import Cp56Time, cp56_from_datetime
from protocols.iec103.observe import observations
from protocols.observations import PointObservation

AT = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)


def _answer(time: Cp56Time) -> TimeSync:
    sent = TimeSync(cot=Cot.TIME_SYNC, common_address=1, fun=255, inf=0, time=time)
    decoded = decode_asdu(encode_asdu(sent))  # as it arrives from the relay
    assert isinstance(decoded, TimeSync)
    return decoded


def test_a_taken_sync_reports_the_relays_clock():
    [obs] = observations("line3", _answer(cp56_from_datetime(AT)), AT)
    assert isinstance(obs, PointObservation)
    assert (obs.address, obs.value, obs.cause, obs.cause_raw) == (
        "255/0",
        True,
        "other",
        "time_sync",
    )
    assert obs.device_time == AT
    assert obs.device_time_flags == ()


def test_an_invalid_clock_is_flagged():
    [obs] = observations("line3", _answer(cp56_from_datetime(AT, invalid=True)), AT)
    assert isinstance(obs, PointObservation)
    assert obs.value is False
    assert obs.device_time_flags == ("invalid",)
