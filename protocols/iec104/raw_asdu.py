"""Input c104 cannot name, kept as data: pure functions, no I/O.

A relay may legally send a cause of transmission in the private range 48-63, and may send
a type id c104 2.2.1 does not name or an ASDU whose structure c104 cannot decode (the APDU
guard diverts those, `guard.py`). None of them may be dropped: a cause c104 does not name
is reported by number (`cause_raw` `COT_48`, the number in `details.cot`; `cause` is
`other`), and a diverted ASDU becomes
an observation whose value is unknown, with its bytes in hex, its type id, its cause number
and why it was diverted, so it is stored and forwarded like any other point of the relay.
"""

from __future__ import annotations

from protocols.iec104.apdu_check import DUI_LEN, common_address, first_ioa
from protocols.iec104.codec import TYPE_NAMES, cause_of, cot_label
from protocols.observations import PointObservation, Scalar

UNKNOWN_TYPE = "unknown"


def diverted_observation(
    device_id: str, device_common_address: int, asdu: bytes, reason: str
) -> PointObservation:
    """A diverted ASDU as one observation: the value unknown, everything received kept."""
    ca = common_address(asdu)
    ioa = first_ioa(asdu)
    details: dict[str, Scalar] = {
        "type": TYPE_NAMES.get(asdu[0], UNKNOWN_TYPE) if asdu else UNKNOWN_TYPE,
        "raw": asdu.hex(),
        "diverted": reason,
    }
    if asdu:
        details["type_id"] = asdu[0]
    if len(asdu) >= DUI_LEN:
        details["cot"] = asdu[2] & 0x3F
        details["common_address"] = ca
        if asdu[2] & 0x80:
            details["test"] = True
        if asdu[2] & 0x40:
            details["negative"] = True
    if ioa is not None:
        details["ioa"] = ioa
    cot_raw = cot_label(asdu[2] & 0x3F) if len(asdu) >= DUI_LEN else None
    address = str(ioa if ioa is not None else 0)
    if ca is not None and ca != device_common_address:
        address = f"{ca}:{address}"
    return PointObservation(
        device_id=device_id,
        address=address,
        value=None,
        cause=cause_of(cot_raw) if cot_raw is not None else None,
        cause_raw=cot_raw,
        details=details,
    )
