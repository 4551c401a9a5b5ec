"""The `[iec104]` section of a device profile: the points that carry identity and settings.

IEC 104 has no ASDUs for a relay's identity or settings; relays that make them visible map
them onto ordinary monitoring points, which a general interrogation answers. The section
says which IOAs those are (validated when the profile loads, before any port opens):

- `[iec104.identity]`: `manufacturer` (a fixed name, or text points), `model`, `serial`,
  `firmware_version`, `checksum` as text points;
- `[[iec104.settings]]`: one point per setting, typed `float` (e.g. `M_ME_NC_1`), `int`
  (e.g. `M_ME_NB_1`), `bool` (a single point) or `text`;
- `settings_signal`: an optional point whose every change means "my settings changed"
  (a single point the relay toggles, or a counter it increments).

Text is ASCII in consecutive `M_BO_NA_1` points (32-bit bitstrings), four characters per
point, the first in the most significant octet, padded with NULs: `words = 2` at `ioa =
4001` means IOAs 4001 and 4002, up to eight characters. `encode_text` / `decode_text` are
that format, shared with the simulator.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from common.config import StrictModel
from protocols.errors import DecodeError

NAME = r"^[a-z][a-z0-9_]*$"
MAX_IOA = 16_777_215  # three octets
CHARS_PER_WORD = 4

SettingType = Literal["float", "int", "bool", "text"]


class TextPoints(StrictModel):
    """ASCII text in `words` consecutive `M_BO_NA_1` points from `ioa`."""

    ioa: int = Field(ge=1, le=MAX_IOA)
    words: int = Field(default=1, ge=1, le=16)

    def addresses(self) -> list[str]:
        return [str(self.ioa + i) for i in range(self.words)]


class IdentityPoints(StrictModel):
    manufacturer: str | TextPoints | None = Field(
        default=None, description="a fixed name, or text points that hold it"
    )
    model: TextPoints | None = None
    serial: TextPoints | None = None
    firmware_version: TextPoints | None = None
    checksum: TextPoints | None = None

    def fields(self) -> dict[str, TextPoints]:
        """The identity fields read from points, by `IdentityObservation` field name."""
        out: dict[str, TextPoints] = {}
        for name in ("manufacturer", "model", "serial", "firmware_version", "checksum"):
            value = getattr(self, name)
            if isinstance(value, TextPoints):
                out[name] = value
        return out

    def addresses(self) -> list[str]:
        return [a for points in self.fields().values() for a in points.addresses()]


class SettingPoint(StrictModel):
    name: str = Field(pattern=NAME, description="as in the profile's [[settings]]")
    ioa: int = Field(ge=1, le=MAX_IOA)
    type: SettingType = "float"
    words: int = Field(default=1, ge=1, le=16, description="text: points it spans")
    unit: str | None = None
    group: str | None = None

    @model_validator(mode="after")
    def _words_for_text(self) -> SettingPoint:
        if self.words != 1 and self.type != "text":
            raise ValueError(f"setting {self.name!r}: words applies to type 'text' only")
        return self

    def addresses(self) -> list[str]:
        return [str(self.ioa + i) for i in range(self.words)]


class Iec104ProfileSection(StrictModel):
    identity: IdentityPoints | None = None
    settings: list[SettingPoint] = Field(default_factory=list)
    settings_signal: int | None = Field(default=None, ge=1, le=MAX_IOA)

    @model_validator(mode="after")
    def _consistent(self) -> Iec104ProfileSection:
        names = [s.name for s in self.settings]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"duplicate setting name(s) {', '.join(twice)}")
        addresses = self.identity_addresses() + self.settings_addresses()
        if self.settings_signal is not None:
            addresses.append(str(self.settings_signal))
        used = sorted({a for a in addresses if addresses.count(a) > 1}, key=int)
        if used:
            raise ValueError(f"IOA(s) {', '.join(used)} mapped more than once")
        if self.settings_signal is not None and not self.settings:
            raise ValueError("settings_signal needs settings to re-read")
        return self

    def identity_addresses(self) -> list[str]:
        return self.identity.addresses() if self.identity is not None else []

    def settings_addresses(self) -> list[str]:
        return [a for s in self.settings for a in s.addresses()]

    def consumed_addresses(self) -> frozenset[str]:
        """Every IOA this section maps: read for the inventory, never forwarded as events."""
        signal = [str(self.settings_signal)] if self.settings_signal is not None else []
        return frozenset(self.identity_addresses() + self.settings_addresses() + signal)

    def cross_check(
        self, point_addresses: frozenset[str], setting_names: frozenset[str]
    ) -> list[str]:
        """Problems against the rest of the profile: an IOA that is also an ordinary point,
        a setting the profile's [[settings]] does not list (it could not be classified)."""
        problems = [
            f"iec104: IOA {a} is also a [[points]] address"
            for a in sorted(self.consumed_addresses() & point_addresses, key=int)
        ]
        problems += [
            f"iec104.settings[{i}].name: expected a name listed in [[settings]] (found: {s.name!r})"
            for i, s in enumerate(self.settings)
            if s.name not in setting_names
        ]
        return problems


def encode_text(text: str, words: int) -> list[int]:
    """`text` as `words` 32-bit bitstring values (ASCII, NUL-padded)."""
    data = text.encode("ascii")
    if len(data) > words * CHARS_PER_WORD:
        raise ValueError(f"{text!r} needs more than {words} words of {CHARS_PER_WORD} characters")
    data = data.ljust(words * CHARS_PER_WORD, b"\0")
    return [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), CHARS_PER_WORD)]


def decode_text(values: list[int]) -> str:
    """The inverse of `encode_text`; trailing NULs dropped, a non-ASCII octet is an error."""
    try:
        data = b"".join(v.to_bytes(CHARS_PER_WORD, "big") for v in values)
        return data.rstrip(b"\0").decode("ascii")
    except (OverflowError, UnicodeDecodeError) as exc:
        raise DecodeError(f"text points: {exc}") from None
