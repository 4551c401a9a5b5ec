"""Logging that reads well in journald and on a terminal.

Under systemd, stderr is a stream to journald, and systemd says so: `$JOURNAL_STREAM` holds
`device:inode` of that stream (systemd.exec(5)). Then each line starts with an sd-daemon
priority prefix (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), which journald turns
into the entry's PRIORITY (so `journalctl -p warning` works), followed by logfmt text:

    <4>level=warning logger=agent.supervisor device=line1 msg="link lost: timed out"

journald adds its own timestamp, so the line has none. Anywhere else (a terminal, a pipe, a
test), lines are for people:

    2025-03-01T10:15:02.114+0000 WARNING agent.supervisor [line1] link lost: timed out

`json=True` prints one JSON object per line instead (for log shippers), still with the
priority prefix under journald. In every format, a record's `device` extra (the device id,
`log.warning("...", extra={"device": dev.id})`) and any other extras are kept as fields.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

# sd-daemon(3) priorities, syslog numbering.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}

# Fields shown first, in this order; other extras follow in the order they were given.
_LEADING_EXTRAS = ("device",)


def syslog_priority(levelno: int) -> int:
    """The syslog priority for a logging level (custom levels round down to the next)."""
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _PRIORITY[threshold]
    return _PRIORITY[logging.DEBUG]


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record, `device` first."""
    found = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
    ordered = {k: found.pop(k) for k in _LEADING_EXTRAS if k in found}
    ordered.update(found)
    return ordered


def logfmt_value(value: object) -> str:
    """A value as logfmt: bare when it is one plain token, else double-quoted and escaped."""
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' ="\\\n\r\t') and text.isprintable():
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    parts = []
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return "\n".join(parts)


class JournalFormatter(logging.Formatter):
    """`<priority>level=… logger=… device=… msg="…"`.

    A traceback follows on its own lines, each with the record's priority prefix: journald
    makes one entry per line, and without the prefix those lines would land at the default
    priority (info) and escape `journalctl -p err`.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields.update(extras(record))
        # The message is a single logfmt value: a newline in it cannot split the entry.
        fields["msg"] = record.getMessage()
        prefix = f"<{syslog_priority(record.levelno)}>"
        lines = [prefix + " ".join(f"{k}={logfmt_value(v)}" for k, v in fields.items())]
        exc = _exception_text(self, record)
        if exc:
            lines.extend(prefix + line for line in exc.splitlines())
        return "\n".join(lines)


class HumanFormatter(logging.Formatter):
    """`2025-03-01T10:15:02.114+0000 WARNING agent.supervisor [line1] message key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        fields = extras(record)
        device = fields.pop("device", None)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        zone = time.strftime("%z", time.localtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d}{zone} {record.levelname} {record.name}"
        if device is not None:
            line += f" [{device}]"
        line += f" {record.getMessage()}"
        if fields:
            line += " " + " ".join(f"{k}={logfmt_value(v)}" for k, v in fields.items())
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; with `journal=True`, behind a priority prefix."""

    def __init__(self, journal: bool = False) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        doc.update(extras(record))
        doc["msg"] = record.getMessage()
        exc = _exception_text(self, record)
        if exc:
            doc["exc"] = exc
        text = jsonlib.dumps(doc, default=str, ensure_ascii=False)
        if self.journal:
            return f"<{syslog_priority(record.levelno)}>{text}"
        return text


def stream_is_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is the journald stream systemd connected (`$JOURNAL_STREAM`)."""
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep:
        return False
    try:
        expected = (int(device), int(inode))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == expected


def parse_level(level: str) -> int:
    """`"info"`, `"WARNING"`, … to a logging level; raises ValueError for anything else."""
    value = logging.getLevelNamesMapping().get(level.strip().upper())
    if value is None or level.strip().upper() in ("NOTSET", "WARN", "FATAL"):
        names = "debug, info, warning, error, critical"
        raise ValueError(f"unknown log level {level!r}: expected one of {names}")
    return value


_HANDLER_MARK = "_relay_service_handler"


def setup_logging(
    level: str,
    json: bool = False,
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Configure the root logger: one stderr handler in the format that fits where stderr
    goes. Calling it again replaces the handler it installed (not other handlers)."""
    levelno = parse_level(level)
    out = sys.stderr if stream is None else stream
    journal = stream_is_journal(out, environ)
    formatter: logging.Formatter
    if json:
        formatter = JsonFormatter(journal=journal)
    elif journal:
        formatter = JournalFormatter()
    else:
        formatter = HumanFormatter()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
    return handler
