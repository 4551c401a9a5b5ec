"""Logging formats: journald (priority prefix + logfmt), human, JSON; and the detection."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from common.logging_setup import (
    HumanFormatter,
    JournalFormatter,
    logfmt_value,
    parse_level,
    setup_logging,
    stream_is_journal,
    syslog_priority,
)


@pytest.fixture
def clean_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


@pytest.fixture
def journal_stream() -> Iterator[tuple[TextIO, socket.socket, dict[str, str]]]:
    """A stream socket like the one systemd connects to journald, and its JOURNAL_STREAM."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stream = ours.makefile("w", encoding="utf-8")
    st = os.fstat(ours.fileno())
    try:
        yield stream, theirs, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    finally:
        stream.close()
        ours.close()
        theirs.close()


def _read_lines(sock: socket.socket, count: int) -> list[str]:
    sock.settimeout(10)
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        assert chunk, "stream closed early"
        data += chunk
    return data.decode().splitlines()


def _record(msg: str, level: int = logging.WARNING, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("agent.supervisor", level, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_journal_line_has_priority_and_logfmt_fields() -> None:
    line = JournalFormatter().format(_record("link lost: timed out", device="line1"))
    assert line == (
        '<4>level=warning logger=agent.supervisor device=line1 msg="link lost: timed out"'
    )


def test_device_comes_first_among_extras_and_others_are_kept() -> None:
    record = _record("polled", logging.INFO, attempt=3, device="bus 1")
    line = JournalFormatter().format(record)
    assert line == '<6>level=info logger=agent.supervisor device="bus 1" attempt=3 msg=polled'


def test_a_traceback_keeps_the_priority_on_every_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "agent.daemon", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    lines = JournalFormatter().format(record).splitlines()
    assert lines[0] == "<3>level=error logger=agent.daemon msg=failed"
    assert len(lines) > 2
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>RuntimeError: boom"


def test_a_newline_in_a_message_cannot_forge_a_second_entry() -> None:
    line = JournalFormatter().format(_record("a\n<2>fake critical"))
    assert "\n" not in line
    assert line.endswith('msg="a\\n<2>fake critical"')


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("", '""'),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("back\\slash", '"back\\\\slash"'),
        (42, "42"),
    ],
)
def test_logfmt_quoting(value: object, text: str) -> None:
    assert logfmt_value(value) == text


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (25, 6),
        (5, 7),
    ],
)
def test_priorities(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority


def test_human_format_has_a_timestamp_and_the_device() -> None:
    line = HumanFormatter().format(_record("link lost", device="line1", attempt=2))
    stamp, rest = line.split(" ", 1)
    assert stamp[:4].isdigit()
    assert "T" in stamp
    assert rest == "WARNING agent.supervisor [line1] link lost attempt=2"


def test_detection_matches_only_the_named_stream(tmp_path: Path) -> None:
    with (tmp_path / "a").open("w") as a, (tmp_path / "b").open("w") as b:
        st = os.fstat(a.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stream_is_journal(a, env)
        assert not stream_is_journal(b, env)
        assert not stream_is_journal(a, {})
        assert not stream_is_journal(a, {"JOURNAL_STREAM": "garbage"})
        assert not stream_is_journal(io.StringIO(), env)  # no file descriptor


def test_setup_logging_under_journald(
    clean_root: None, journal_stream: tuple[TextIO, socket.socket, dict[str, str]]
) -> None:
    stream, peer, env = journal_stream
    setup_logging("info", stream=stream, environ=env)
    logging.getLogger("agent.supervisor").warning("link lost", extra={"device": "line2"})
    logging.getLogger("agent.supervisor").debug("not shown at info")
    logging.getLogger("agent.daemon").info("started")
    stream.flush()
    lines = _read_lines(peer, 2)
    assert lines == [
        '<4>level=warning logger=agent.supervisor device=line2 msg="link lost"',
        "<6>level=info logger=agent.daemon msg=started",
    ]


def test_setup_logging_json_under_journald(
    clean_root: None, journal_stream: tuple[TextIO, socket.socket, dict[str, str]]
) -> None:
    stream, peer, env = journal_stream
    setup_logging("debug", json=True, stream=stream, environ=env)
    logging.getLogger("gateway.uplink").error("publish failed", extra={"device": "line1"})
    stream.flush()
    (line,) = _read_lines(peer, 1)
    assert line.startswith("<3>{")
    doc = json.loads(line[3:])
    assert doc["level"] == "error"
    assert doc["logger"] == "gateway.uplink"
    assert doc["device"] == "line1"
    assert doc["msg"] == "publish failed"
    assert doc["ts"].endswith("Z")


def test_setup_logging_elsewhere_is_human_and_replaces_itself(clean_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("warning", stream=first, environ={})
    setup_logging("warning", stream=second, environ={})
    logging.getLogger("agent").warning("once", extra={"device": "line1"})
    logging.getLogger("agent").info("below the level")
    assert first.getvalue() == ""
    (line,) = second.getvalue().splitlines()
    assert line.endswith(" WARNING agent [line1] once")
    assert not line.startswith("<")


@pytest.mark.parametrize("bad", ["verbose", "", "notset"])
def test_an_unknown_level_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        parse_level(bad)


def test_levels_are_case_insensitive() -> None:
    assert parse_level("INFO") == logging.INFO
    assert parse_level(" debug ") == logging.DEBUG
