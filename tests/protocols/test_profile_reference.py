"""docs/profiles.md is generated from the profile models and kept current."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from profiles import model as profiles
from protocols import profile_reference, registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "profiles.md"


def test_the_profile_reference_is_current() -> None:
    assert DOC.read_text() == profile_reference.render(), (
        "docs/profiles.md is stale: "
        ".venv/bin/python -m protocols.profile_reference > docs/profiles.md"
    )


def test_it_covers_every_key_kind_severity_phase_and_protocol() -> None:
    text = profile_reference.render()
    for kind in get_args(profiles.PointKind):
        assert f"| `{kind}` |" in text
    for severity in get_args(profiles.Severity):
        assert f"| `{severity}` |" in text
    assert ", ".join(f"`{p}`" for p in get_args(profiles.Phase)) in text
    for name, spec in registry.protocols().items():
        assert f"## `{name}`" in text
        assert f"### Worked example: `config/profiles/{profile_reference.EXAMPLES[name]}" in text
        if spec.profile_section is not None:
            for model, headers in profile_reference.collect(
                spec.profile_section, f"[{name}]"
            ).items():
                section = text.split(f"#### {', '.join(f'`{h}`' for h in headers)}", 1)[1]
                table = section.split("####", 1)[0]
                missing = [k for k in model.model_fields if f"| `{k}` |" not in table]
                assert not missing, f"{headers[0]}: keys {missing} not documented"
