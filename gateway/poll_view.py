"""A poll answer as text for people: the one view `relay-agent poll` and `relay-center poll`
print, so an engineer reads the same thing at the substation and at the center.

Identity as name/value lines; events as rows in device-time order with the profile's
point names; settings and status as name/value rows; link counters as name/value lines.
No cell holds JSON: nested values are spelled out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from gateway.rpc import PartError, PointRow, PollAnswer, PollKind, Scalar

MAX_CELL = 48


def cell(value: object) -> str:
    """One table cell: short, never JSON."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        text = format_time(value)
    elif isinstance(value, list | tuple):
        text = ",".join(cell(v) for v in value) or "-"
    else:
        text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_time(value: datetime) -> str:
    """UTC with milliseconds: relay event times differ by a few ms."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> list[str]:
    cells = [[cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [indent + fmt.format(*[h.upper() for h in headers]).rstrip()]
    lines += [indent + fmt.format(*r).rstrip() for r in cells]
    return lines


def name_values(values: Mapping[str, Scalar], indent: str = "  ") -> list[str]:
    if not values:
        return [f"{indent}(none)"]
    width = max(len(k) for k in values)
    return [f"{indent}{k:<{width}}  {cell(v)}" for k, v in values.items()]


def _point(row: PointRow) -> str:
    return row.name or f"? {row.address}"


def _value(row: PointRow) -> str:
    return cell(row.value) + (f" {row.unit}" if row.unit else "")


def _events(rows: list[PointRow]) -> list[str]:
    if not rows:
        return ["  (none)"]
    return table(
        ["device time", "point", "value", "quality", "cause", "address"],
        [[r.device_time, _point(r), _value(r), r.quality, r.cause, r.address] for r in rows],
        "  ",
    )


def _points(rows: list[PointRow]) -> list[str]:
    if not rows:
        return ["  (none)"]
    return table(
        ["point", "value", "quality", "device time", "address"],
        [[_point(r), _value(r), r.quality, r.device_time, r.address] for r in rows],
        "  ",
    )


def _failure(kind: PollKind, error: PartError, what: str) -> str:
    if error.code == "unsupported" and what == "all":
        return f"{kind}: not available ({error.error})"
    return f"{kind}: FAILED ({error.code}): {error.error}"


def render_answer(answer: PollAnswer) -> list[str]:
    link = {True: "link up", False: "link DOWN", None: "link state unknown"}[answer.link_up]
    lines = [
        f"{answer.device} on {answer.gateway_id} ({answer.site}): {answer.what}, "
        f"polled {format_time(answer.polled_at)} in {answer.duration_s} s, {link}"
    ]
    res = answer.result
    if res.identity is not None:
        ident = res.identity
        fields: dict[str, Scalar] = {
            "manufacturer": ident.manufacturer,
            "model": ident.model,
            "serial": ident.serial,
            "firmware_version": ident.firmware_version,
            "checksum": ident.checksum,
            **ident.details,
        }
        lines += ["", "identity", *name_values(fields)]
    if res.events is not None:
        ev = res.events
        lines += ["", f"events ({len(ev.events)}, oldest first; {ev.source})"]
        lines += _events(ev.events)
        if ev.details:
            lines += name_values(ev.details)
    if res.settings is not None:
        st = res.settings
        lines += ["", f"settings ({len(st.settings)}; {st.source})"]
        rows = [[s.name, s.value, s.unit, s.group] for s in st.settings]
        lines += table(["name", "value", "unit", "group"], rows, "  ") if rows else ["  (none)"]
    if res.status is not None:
        status = res.status
        lines += ["", f"status ({len(status.points)} points)", *_points(status.points)]
        if status.measurements:
            lines += ["", "measurements", *_points(status.measurements)]
        lines += ["", "link counters", *name_values(status.counters)]
    for kind, error in answer.errors.items():
        lines += ["", _failure(kind, error, answer.what)]
    return lines


def verdict(answer: PollAnswer) -> str | None:
    """Why this answer is a failure (for stderr and the exit code), or None when it is not."""
    if answer.link_up is False:
        return f"{answer.device}: the device cannot be reached (link down)"
    failed = answer.failures()
    if failed:
        parts = ", ".join(f"{k} ({e.code})" for k, e in failed.items())
        return f"{answer.device}: {len(failed)} part(s) failed: {parts}"
    return None
