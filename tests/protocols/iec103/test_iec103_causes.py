"""Why a 103 relay sent a value, from the ASDU's cause of transmission on the wire: the
answers to a general interrogation (COT 9) are states, not changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocols.iec103.codec.asdu import decode_asdu, encode_asdu
from protocols.iec103.codec.asdu_measurands import Measurand, Measurands2
from protocols.iec103.codec.asdu_messages import TimeTaggedMessage
from protocols.iec103.codec.time import cp32_from_datetime
from protocols.iec103.observe import observations
from protocols.observations import PointObservation

NOW = datetime(2031, 7, 4, 13, 37, 42, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cot", "cause", "raw"),
    [
        (1, "spontaneous", "spontaneous"),
        (9, "interrogated", "general_interrogation"),
        (11, "spontaneous", "local_operation"),
        (12, "spontaneous", "remote_operation"),
        (7, "other", "test_mode"),
        (20, "other", "command_ack"),
    ],
)
def test_a_messages_cause_of_transmission_says_why_it_was_sent(
    cot: int, cause: str, raw: str
) -> None:
    asdu = TimeTaggedMessage(
        cot=cot, common_address=1, fun=128, inf=69, dpi=2, time=cp32_from_datetime(NOW), sin=3
    )
    (obs,) = observations("relay1", decode_asdu(encode_asdu(asdu)), NOW)
    assert isinstance(obs, PointObservation)
    assert (obs.cause, obs.cause_raw) == (cause, raw)


def test_cyclic_measurands_are_periodic() -> None:
    asdu = Measurands2(cot=2, common_address=1, fun=128, inf=148, values=(Measurand.of(0.25),))
    (obs,) = observations("relay1", decode_asdu(encode_asdu(asdu)), NOW)
    assert isinstance(obs, PointObservation)
    assert (obs.cause, obs.cause_raw, obs.measurement) == ("periodic", "cyclic", True)
