"""The strict base of every config, profile and scenario model, and the id pattern.

Strict: an unknown key is refused (a misspelt key must not silently fall back to a default)
and a parsed config is frozen. Ids (site, gateway, device, bus, group names) go into MQTT
topics and file names, so they are one safe pattern everywhere.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
