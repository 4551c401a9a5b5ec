"""The device-profile reference, `docs/profiles.md`, generated from the profile models.

Writing a profile for a new relay should not mean reading the models: this renders every
key of a profile (the common part in `profiles/model.py` and each protocol's section) with
its type, default, constraints and description, the allowed kinds, severities and phases,
and a worked example per protocol (the shipped profile, with what each address becomes).
A test checks that the file is current; regenerate it with

    .venv/bin/python -m protocols.profile_reference > docs/profiles.md
"""

from __future__ import annotations

import inspect
import sys
import textwrap
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from profiles import model as profiles
from profiles.model import PointSpec, ProfileHeader, SettingSpec
from protocols import registry
from protocols.profile_loader import load_profile

# One shipped profile per protocol: the worked examples.
EXAMPLES = {
    "iec104": "line-protection",
    "modbus": "feeder-protection-modbus",
    "iec103": "line-protection-103",
}

KINDS = {
    "trip": "the relay operated (a trip command). Opens or joins the incident's protection "
    "ticket; trips and starts of one site within the grouping window make one ticket.",
    "start": "protection picked up (a start). Joins the protection ticket like a trip.",
    "alarm": "a supervision alarm (CT circuit, trip circuit, …). Raised opens a condition "
    "ticket `alarm.<point name>` for the device; cleared resolves it.",
    "status": "a state (breaker position, autoreclose, …). Context on the incident's "
    "ticket, never a ticket of its own.",
    "self_check": "the relay's own health (watchdog, self-test). Raised opens a device "
    "self-check ticket; cleared resolves it.",
    "measurement": "a measured value. Sent as a `measurement` record, or with the other "
    "values of its Modbus poll in one `measurements` record (periodic telemetry, the first "
    "thing the outbox sheds when full); opens nothing.",
}
SEVERITIES = {
    "critical": "a protection operation, a relay out of service",
    "major": "a start, an alarm that needs a visit",
    "minor": "an alarm that can wait",
    "info": "for the record only (the default)",
}


def type_name(annotation: Any) -> str:
    """A key's type as a profile writer reads it (TOML terms: table, list, map)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        choices = [v for a in args if get_origin(a) is Literal for v in get_args(a)]
        names = [f"one of {choices}"] if choices else []
        names += [
            type_name(a) for a in args if a is not type(None) and get_origin(a) is not Literal
        ]
        return " or ".join(names) + (" or None" if type(None) in args else "")
    if origin is Literal:
        return f"one of {list(args)}"
    if origin is list:
        return (
            f"list of {type_name(args[0])}s"
            if _is_model(args[0])
            else f"list[{type_name(args[0])}]"
        )
    if origin is dict:
        return f"map {type_name(args[0])} → {type_name(args[1])}"
    if _is_model(annotation):
        return "table"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return repr(field.default_factory())  # type: ignore[call-arg]
    return repr(field.default)


def _notes(field: FieldInfo) -> str:
    notes = [field.description] if field.description else []
    for meta in field.metadata:
        for attr in ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern"):
            value = getattr(meta, attr, None)
            if value is not None:
                notes.append(f"{attr.replace('_', ' ')} {value}")
    return "; ".join(notes).replace("|", "\\|")


def model_table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | notes |", "|---|---|---|---|"]
    for key, field in model.model_fields.items():
        kind = type_name(field.annotation).replace("|", "\\|")
        rows.append(f"| `{key}` | {kind} | {_default(field)} | {_notes(field)} |")
    return rows


def _nested(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """Models inside a field's type, with how they appear: table, array of tables, map."""
    origin, args = get_origin(annotation), get_args(annotation)
    if _is_model(annotation):
        return [("table", annotation)]
    if origin in (Union, types.UnionType):
        return [n for a in args for n in _nested(a)]
    if origin is list and args and _is_model(args[0]):
        return [("array", args[0])]
    if origin is dict and len(args) == 2 and _is_model(args[1]):
        return [("map", args[1])]
    return []


def collect(model: type[BaseModel], path: str) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from `model`, with the TOML headers it appears under."""
    found: dict[type[BaseModel], list[str]] = {model: [path]}

    def walk(current: type[BaseModel], where: str) -> None:
        for key, field in current.model_fields.items():
            for how, inner in _nested(field.annotation):
                header = {"table": f"[{where}.{key}]", "array": f"[[{where}.{key}]]",
                          "map": f"[{where}.{key}.<key>]"}[how]  # fmt: skip
                first = inner not in found
                found.setdefault(inner, []).append(header)
                if first:
                    walk(inner, header.strip("[]"))

    walk(model, path.strip("[]"))
    return found


def _doc(model: type[BaseModel]) -> str:
    own = model.__dict__.get("__doc__")
    return inspect.cleandoc(own) if own else ""


def section_tables(model: type[BaseModel], path: str) -> list[str]:
    out: list[str] = []
    for inner, headers in collect(model, path).items():
        out += ["", f"#### {', '.join(f'`{h}`' for h in headers)}", ""]
        doc = _doc(inner)
        if doc and inner is not model:  # the section's own doc is the text above
            out += [doc, ""]
        out += model_table(inner)
    return out


def _literal(annotation: Any) -> list[str]:
    return [a for a in get_args(annotation) if isinstance(a, str)]


def common_part() -> list[str]:
    out = ["## The common part", "", "### `[profile]`", "", *model_table(ProfileHeader)]
    out += ["", "`protocol` names the protocol whose devices may use the profile; `name`, "
            "`description`, `manufacturer` and `model` are for people and tools (the agent "
            "names the profile by `name` in check-config and polls).", ""]  # fmt: skip
    out += ["### `[[points]]`", "", "What one address of the relay means.", ""]
    out += model_table(PointSpec)
    out += ["", "Names (`name`) match `" + profiles.NAME + "`: lower case, digits and `_`, a "
            "letter first; unique in the profile, as are addresses.", ""]  # fmt: skip
    out += ["### Kinds", "", "| kind | what it is, and what the center makes of it |", "|---|---|"]
    out += [f"| `{k}` | {KINDS[k]} |" for k in _literal(profiles.PointKind)]
    out += ["", "### Severities", "", "Events only. The center's ticket priority (P1 most "
            "urgent) adds the severity's rank to the device's criticality.", "",
            "| severity | use it for |", "|---|---|"]  # fmt: skip
    out += [f"| `{s}` | {SEVERITIES[s]} |" for s in _literal(profiles.Severity)]
    phases = ", ".join(f"`{p}`" for p in _literal(profiles.Phase))
    out += ["", "### Phases", "", f"Events only: {phases} (`N`: neutral or earth). The "
            "event's `phase` on the wire is the point's, unless the device's record names one "
            "(a Modbus ring's `phase` field), which then wins.", ""]  # fmt: skip
    out += ["### `inverted`", "", "An event's `raised` (on the wire) is the value's truth: "
            "`true`, a non-zero number, or a string such as \"on\". A point whose truthy value "
            "is the normal state (a \"relay healthy\" or watchdog bit) sets `inverted = true`: "
            "then the value `true` is cleared and `false` is raised. Where the device's record "
            "says raised or cleared itself (a Modbus ring's `state_field`), that is the truth "
            "`inverted` applies to.", ""]  # fmt: skip
    out += ["### `[[settings]]`", "", "Metadata of the settings a device's settings read "
            "returns: how a change of each weighs. A `protection` change (pickups, delays, "
            "enabled functions) opens a settings-drift ticket until approved; a `benign` one "
            "(labels, comms) is recorded only. A setting the profile does not list is treated "
            "as protection. Editing this metadata never changes a settings hash.", ""]  # fmt: skip
    return out + model_table(SettingSpec)


def protocol_part(name: str, spec: registry.ProtocolSpec) -> list[str]:
    out = ["", f"## `{name}`", "", f"Point addresses match `{spec.address_pattern}`."]
    section = spec.profile_section
    if section is None:
        return [*out, "", "This protocol takes no profile section."]
    # The section's own docstring, else its module's (which then is about the section).
    about = _doc(section) or textwrap.dedent(sys.modules[section.__module__].__doc__ or "")
    out += ["", f"### `[{name}]` (from `{section.__module__}`)", "", about.strip()]
    out += section_tables(section, f"[{name}]")
    return out + example(name)


def example(protocol: str) -> list[str]:
    ref = EXAMPLES.get(protocol)
    if ref is None:
        return []
    path = profiles.PROFILES_DIR / f"{ref}.toml"
    loaded = load_profile(path)
    out = ["", f"### Worked example: `config/profiles/{ref}.toml`", "",
           "What each address becomes:", "",
           "| address | point | kind | severity | phase | inverted |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for p in loaded.points:
        measured = p.kind == "measurement"
        severity, phase = ("", "") if measured else (p.severity, p.phase or "")
        inverted = "yes" if p.inverted else ""
        out.append(f"| `{p.address}` | `{p.name}` | {p.kind} | {severity} | {phase} | {inverted} |")
    text = path.read_text().rstrip()
    return [*out, "", "<details><summary>the file</summary>", "", "```toml", text, "```", "",
            "</details>"]  # fmt: skip


INTRO = """# Device profiles

<!-- Generated by protocols/profile_reference.py from the models; do not edit by hand:
     .venv/bin/python -m protocols.profile_reference > docs/profiles.md -->

A device profile says what each address of one relay model means. It is a TOML file,
`config/profiles/NAME.toml` (or a directory in `[agent] profile_dirs`), named by a device's
`profile` key in the agent config. `relay-agent check-config` loads every profile a config
uses before anything starts. A profile has a common part (`[profile]`, `[[points]]`,
`[[settings]]`) and its protocol's section (`[iec104]`, `[modbus]`, `[iec103]`).

Every key is validated: an unknown key is an error, and so is a key that the rest of its
table would never read (a measurement's `severity`, `year` beside an epoch timestamp, a
`word_order` on a one-register number), or a point address its protocol section can
never produce. Nothing in a profile is silently ignored. Errors read
`FILE: key.path: what was expected (found: …)`.

An address the profile does not list still reaches the center, as an event of signal
`unknown`: nothing a relay says is dropped.
"""


def render() -> str:
    lines = [INTRO.rstrip(), "", *common_part()]
    specs = registry.protocols()
    for name in sorted(specs):
        lines += protocol_part(name, specs[name])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
