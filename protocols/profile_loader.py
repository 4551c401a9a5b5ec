"""Device profiles as the product loads them: each checked against the rules of the
protocol it names, taken from that protocol's spec. `profiles/` holds the model and sits
below the protocols; this is where the two meet."""

from __future__ import annotations

from pathlib import Path

from profiles.model import Profile, ProfileRules
from profiles.model import load_named as load_named_with
from profiles.model import load_profile as load_profile_with
from protocols import registry


def profile_rules() -> dict[str, ProfileRules]:
    """Every protocol this product offers: its profile rules, or why this install lacks it."""
    rules = {
        name: ProfileRules(address_pattern=spec.address_pattern, section=spec.profile_section)
        for name, spec in registry.protocols().items()
    }
    for name in registry.unavailable():
        rules[name] = ProfileRules(unavailable=registry.unavailable_message(name))
    return rules


def load_profile(path: Path) -> Profile:
    return load_profile_with(path, profile_rules())


def load_named(ref: str, search: list[Path] | None = None) -> Profile:
    return load_named_with(ref, profile_rules(), search)
