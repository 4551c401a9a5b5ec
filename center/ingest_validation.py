"""What the center accepts from a message, record by record. Pure: no I/O.

A message is refused whole only when nothing in it can be trusted apart: it is too large,
its topic is not ours, it is not an envelope, or it claims another site or gateway than
its topic. Otherwise each record stands on its own: a record that breaks the wire schema
or could not be stored on both backends (a NUL byte, a lone surrogate, an integer beyond
64 bits, NaN, a string longer than its column) is set apart as a `BadRecord`, kept in
full, while the good records of the same message go on to be stored.

A record id seen twice in one message is stored once: the second copy is a duplicate
when it is identical and a conflict (kept for inspection, never stored) when it differs.
Both backends then see each id once per message, and so behave alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway import wire

# The longest text the store takes per field, from its columns (center/store/schema/);
# `point` falls back to `address`. Any other text: MAX_TEXT_CHARS.
TEXT_LIMITS = {
    "address": 128,
    "point": 128,
    "code": 64,
    "manufacturer": 128,
    "model": 128,
    "serial": 128,
    "firmware_version": 128,
    "checksum": 128,
    "hash": 64,
    "previous_hash": 64,
    "agent_version": 64,
    "protocol": 32,
    "reason": 32,
    "profile": 64,
    "device_id": 64,
}
MAX_TEXT_CHARS = 8192
# Fields kept in 32-bit columns; every other integer must fit a signed 64-bit one.
INT32_FIELDS = frozenset({"connection", "fault_number", "samples", "chunks", "index"})
INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_record = TypeAdapter[wire.Record](wire.Record)


class Rejected(Exception):
    """A message refused whole, with the reason it is counted under."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Ignored(Exception):
    """A message on our tree that is not a record (the center's own state)."""


@dataclass(frozen=True)
class BadRecord:
    """A record set apart: why, and its content as received (JSON, ASCII only)."""

    index: int
    reason: str  # invalid | unknown_kind | unstorable | conflict
    detail: str
    content: bytes
    gateway_id: str | None = None
    session: int | None = None
    seq: int | None = None


@dataclass
class CheckedMessage:
    records: list[wire.Record] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # each record's index in the envelope
    bad: list[BadRecord] = field(default_factory=list)
    duplicates: int = 0  # identical copies of a record id within this message
    implausible_times: int = 0  # records whose device time the center does not believe


def check_message(topic: str, payload: bytes) -> CheckedMessage:
    """The records of a message and those set apart; Rejected when the message as a whole
    cannot be taken. Never raises anything else."""
    if topic == wire.CENTER_STATE_TOPIC:
        raise Ignored(topic)
    if len(payload) > wire.MAX_PAYLOAD_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes > {wire.MAX_PAYLOAD_BYTES}")
    try:
        site, gateway_id, kind, device_id = wire.parse_topic(topic)
    except wire.WireError as exc:
        reason = "unknown_kind" if "unknown record kind" in str(exc) else "bad_topic"
        raise Rejected(reason, str(exc)) from None
    checked = _fast(payload)
    if checked is None:
        checked = _one_by_one(payload)
    for i, r in enumerate(checked.records):
        if r.site != site or r.gateway_id != gateway_id:
            raise Rejected(
                "topic_mismatch",
                f"records[{i}] is from {r.site}/{r.gateway_id}, topic says {site}/{gateway_id}",
            )
        if kind not in (r.kind, wire.BATCH_KIND):
            raise Rejected("topic_mismatch", f"records[{i}] is a {r.kind}, topic says {kind}")
        if device_id is not None and r.device_id != device_id:
            raise Rejected(
                "topic_mismatch", f"records[{i}] is device {r.device_id}, topic says {device_id}"
            )
    return checked


def _fast(payload: bytes) -> CheckedMessage | None:
    """The common case, a message with nothing wrong, validated in one call; None when
    anything is wrong, so that the slow path can say which record and keep it."""
    try:
        records = wire.decode_envelope(payload)
    except wire.WireError:
        return None
    if not all(storable(r) for r in records):
        return None
    out = CheckedMessage()
    _take_unique(out, list(enumerate(records)), lambda i: _content_of(records[i]))
    return out


def _one_by_one(payload: bytes) -> CheckedMessage:
    try:
        doc = json.loads(payload)  # lenient: lone surrogates, NaN and big integers parse
    except (ValueError, RecursionError) as exc:
        raise Rejected("malformed", f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict) or doc.get("v") != wire.SCHEMA_VERSION:
        raise Rejected("malformed", f'not an envelope {{"v": {wire.SCHEMA_VERSION}, ...}}')
    items = doc.get("records")
    if set(doc) != {"v", "records"} or not isinstance(items, list):
        raise Rejected("malformed", 'an envelope holds exactly "v" and a "records" list')
    if not 1 <= len(items) <= 10_000:
        raise Rejected("malformed", f"an envelope holds 1 to 10000 records, not {len(items)}")
    out = CheckedMessage()
    good: list[tuple[int, wire.Record]] = []
    for i, item in enumerate(items):
        try:
            r = _record.validate_python(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            reason = "unknown_kind" if first["type"] == "union_tag_invalid" else "invalid"
            out.bad.append(_bad(i, item, reason, f"{where}: {first['msg']}"))
            continue
        except RecursionError:
            out.bad.append(_bad(i, item, "invalid", "nested too deeply"))
            continue
        problem = unstorable(r)
        if problem:
            out.bad.append(_bad(i, item, "unstorable", problem))
        else:
            good.append((i, r))
    _take_unique(out, good, lambda i: ascii_json(items[i]))
    return out


def _take_unique(out: CheckedMessage, good: list[tuple[int, wire.Record]], raw: Any) -> None:
    """Each identity once: an identical copy is a duplicate, a different one a conflict."""
    first: dict[tuple[Any, ...], wire.Record] = {}
    for i, r in good:
        key = identity(r)
        seen = first.get(key)
        if seen is None:
            first[key] = r
            out.records.append(r)
            out.positions.append(i)
        elif seen.model_dump_json() == r.model_dump_json():
            out.duplicates += 1
        else:
            out.bad.append(
                BadRecord(
                    i,
                    "conflict",
                    f"record id {key[0]}/{key[1]}/{key[2]} appears earlier in this message "
                    "with different content",
                    raw(i),
                    r.gateway_id,
                    r.session,
                    r.seq,
                )
            )


def identity(r: wire.Record) -> tuple[Any, ...]:
    """What the store keeps once: a lifecycle record per connection, a chunk per index."""
    if isinstance(r, wire.Birth | wire.Death | wire.Health):
        return (r.gateway_id, r.session, r.seq, r.kind, r.connection)
    if isinstance(r, wire.DisturbanceChunk):
        return (r.gateway_id, r.session, r.seq, r.kind, r.index)
    return (r.gateway_id, r.session, r.seq)


def unstorable(record: wire.Record) -> str | None:
    """Why this valid record could not be stored the same way on SQLite and PostgreSQL,
    or None."""
    return None if storable(record) else _problem(record, "")


def storable(record: wire.Record) -> bool:
    """`unstorable(record) is None`, cheaply: no path is built, and the common types are
    told apart by their exact type. Every check depends only on the last part of the path
    (the field's name), which is all this carries; the name of a list item, a dict key or
    a dict value is never one with a limit of its own ("x[0]", "x key", "x['k']"), so it
    is "" here. It may only be stricter than `_problem`: `unstorable` asks `_problem`
    whenever this says no."""
    return _model_fine(record)


def _model_fine(model: BaseModel) -> bool:
    extra = model.__pydantic_extra__
    items = model.__dict__.items() if not extra else [*model.__dict__.items(), *extra.items()]
    for name, value in items:
        kind = type(value)
        if kind is str:
            # ASCII without NUL within the field's limit is fine; anything else asks
            # `_text_fine` (which allows a chunk's "data" more).
            plain = (
                value.isascii()
                and "\x00" not in value
                and len(value) <= TEXT_LIMITS.get(name, MAX_TEXT_CHARS)
            )
            if not plain and not _text_fine(value, name):
                return False
        elif kind is int:
            low, high = (0, INT32_MAX) if name in INT32_FIELDS else (INT64_MIN, INT64_MAX)
            if not low <= value <= high:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind in _CONTAINERS:
            if value and not _fine(value, name):  # an empty one holds nothing wrong
                return False
        elif kind not in _ALWAYS_FINE and not _fine(value, name):
            return False
    return True


_ALWAYS_FINE = frozenset({bool, type(None), datetime})
_CONTAINERS = frozenset({list, tuple, dict})


def _fine(value: Any, name: str) -> bool:
    if isinstance(value, str):
        return _text_fine(value, name)
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        low, high = (0, INT32_MAX) if name in INT32_FIELDS else (INT64_MIN, INT64_MAX)
        return low <= value <= high
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, BaseModel):
        return _model_fine(value)
    if isinstance(value, dict):
        return all(_text_fine(k, "") and _fine(v, "") for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_fine(item, "") for item in value)
    return True  # datetimes: the wire schema already bounds them


def _text_fine(text: str, name: str) -> bool:
    if "\x00" in text or not (text.isascii() or _utf8(text)):
        return False
    limit = wire.MAX_PAYLOAD_BYTES if name == "data" else TEXT_LIMITS.get(name, MAX_TEXT_CHARS)
    return len(text) <= limit


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _int_problem(value, path)
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: {value} is not a finite number"
    if isinstance(value, dict):
        for key, item in value.items():
            # `[key]`, not `.key`: a key is data, never one of the fields with limits of
            # their own (details {"reason": ...} is not a settings snapshot's reason)
            problem = _text_problem(key, f"{path} key") or _problem(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    for item, item_path in _members(value, path):
        problem = _problem(item, item_path)
        if problem:
            return problem
    return None  # datetimes: the wire schema already bounds them


def _int_problem(value: int, path: str) -> str | None:
    name = path.rsplit(".", 1)[-1]
    low, high = (0, INT32_MAX) if name in INT32_FIELDS else (INT64_MIN, INT64_MAX)
    if not low <= value <= high:
        return f"{path}: integer out of range {low}..{high}"
    return None


def _members(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    """A model's fields or a list's items, each with its path; nothing for other values."""
    if isinstance(value, BaseModel):
        for name, item in value:
            yield item, f"{path}.{name}" if path else name
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            yield item, f"{path}[{n}]"


def _text_problem(text: str, path: str) -> str | None:
    if "\x00" in text:
        return f"{path}: contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{path}: contains a lone surrogate (not UTF-8)"
    name = path.rsplit(".", 1)[-1]
    limit = TEXT_LIMITS.get(name, MAX_TEXT_CHARS)
    if path == "data" or path.endswith(".data"):
        limit = wire.MAX_PAYLOAD_BYTES  # a disturbance chunk's base64
    if len(text) > limit:
        return f"{path}: {len(text)} characters > {limit}"
    return None


def ascii_json(item: Any) -> bytes:
    """A parsed JSON value back to JSON that any database stores: ASCII only (NUL and lone
    surrogates escaped), NaN and big integers kept as received."""
    try:
        return json.dumps(item, ensure_ascii=True, allow_nan=True).encode("ascii")
    except (ValueError, TypeError, RecursionError):
        return repr(item).encode("ascii", "backslashreplace")


def _content_of(r: wire.Record) -> bytes:
    return r.model_dump_json().encode()


def _bad(i: int, item: Any, reason: str, detail: str) -> BadRecord:
    gateway_id = session = seq = None
    if isinstance(item, dict):
        g, se, sq = item.get("gateway_id"), item.get("session"), item.get("seq")
        gateway_id = g if isinstance(g, str) else None
        session = se if _int64(se) else None
        seq = sq if _int64(sq) else None
    return BadRecord(i, reason, detail, ascii_json(item), gateway_id, session, seq)


def _int64(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and INT64_MIN <= x <= INT64_MAX
