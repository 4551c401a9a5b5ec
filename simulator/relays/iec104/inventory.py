"""What a simulated IEC 104 relay serves at the points its profile's `[iec104]` section maps:
its identity and settings (from the scenario) and the settings-changed signal.

Pure: values to (c104 type name, information object), per IOA. Types: text as `M_BO_NA_1`
words (`protocols.iec104.profile.encode_text`), float `M_ME_NC_1`, int `M_ME_NB_1`, bool and
the signal `M_SP_NA_1`.
"""

from __future__ import annotations

from typing import Any

import c104

from protocols.iec104.profile import Iec104ProfileSection, SettingPoint, TextPoints, encode_text
from simulator.scenario import IdentitySpec

SettingValueT = bool | int | float | str
StatePoint = tuple[str, c104.Information]  # (c104 type name, what it holds)


def _word(value: int) -> c104.Information:
    # c104 2.2.1's Byte32(int) loses the value (only bit 31 survives, verified): pass bytes.
    return c104.BinaryInfo(blob=c104.Byte32(value.to_bytes(4, "big")))


def text_points(points: TextPoints, text: str) -> dict[str, StatePoint]:
    words = encode_text(text, points.words)
    return {a: ("M_BO_NA_1", _word(w)) for a, w in zip(points.addresses(), words, strict=True)}


def setting_points(item: SettingPoint, value: SettingValueT) -> dict[str, StatePoint]:
    address = str(item.ioa)
    if item.type == "text":
        return text_points(TextPoints(ioa=item.ioa, words=item.words), str(value))
    if item.type == "bool":
        return {address: ("M_SP_NA_1", c104.SingleInfo(on=bool(value)))}
    if isinstance(value, str):
        raise ValueError(f"setting {item.name!r} is {item.type}, the scenario gives {value!r}")
    if item.type == "int":
        return {address: ("M_ME_NB_1", c104.ScaledInfo(actual=c104.Int16(int(value))))}
    return {address: ("M_ME_NC_1", c104.ShortInfo(actual=float(value)))}


def identity_points(
    section: Iec104ProfileSection, identity: IdentitySpec, firmware: str
) -> dict[str, StatePoint]:
    if section.identity is None:
        return {}
    values: dict[str, Any] = {**identity.model_dump(), "firmware_version": firmware}
    out: dict[str, StatePoint] = {}
    for name, points in section.identity.fields().items():
        out.update(text_points(points, str(values[name])))
    return out


def signal_point(section: Iec104ProfileSection, state: bool) -> dict[str, StatePoint]:
    if section.settings_signal is None:
        return {}
    return {str(section.settings_signal): ("M_SP_NA_1", c104.SingleInfo(on=state))}


def all_points(
    section: Iec104ProfileSection,
    identity: IdentitySpec,
    firmware: str,
    settings: dict[str, SettingValueT],
    signal: bool,
) -> dict[str, StatePoint]:
    """Every mapped point with its current value; a setting the scenario does not give is
    not served (the agent then reports no settings, as with a relay that lacks the point)."""
    out = identity_points(section, identity, firmware)
    for item in section.settings:
        if item.name in settings:
            out.update(setting_points(item, settings[item.name]))
    out.update(signal_point(section, signal))
    return out
