"""`relay-agent poll`: the exit code tells the truth, and the output reads as rows.

Every case through the real CLI, daemon and control socket; the relay is the fake driver
of `test_control_support.py`, which answers with the typed results real drivers return."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.cli import main
from gateway.rpc import PollReply
from tests.agent.test_control_support import (  # noqa: F401 - fixtures
    FakeRelay,
    audits,
    fake_relays_fixture,
    outbox_records,
    running,
    short_dir_fixture,
    write_config,
)
from tests.support.mosquitto import free_port

DEVICES = ("line1", "half", "drops", "nolog")


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def printed(short_dir: Path, capsys: pytest.CaptureFixture[str], *options: str) -> str:
    """What `relay-agent poll line1 [options]` prints, from a running daemon."""
    loaded = write_config(short_dir, free_port())
    async with running(loaded):
        code = await cli("poll", "line1", "--socket", str(loaded.config.control_socket), *options)
        assert code == 0
        return capsys.readouterr().out


async def test_exit_codes_say_whether_the_poll_worked(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port(), devices=DEVICES)
    sock = ("--socket", str(loaded.config.control_socket))
    async with running(loaded) as daemon:
        ok = await cli("poll", "line1", *sock)
        ok_out = capsys.readouterr()
        # 3 of 4 parts fail: what worked is shown, and the exit says it failed.
        half = await cli("poll", "half", *sock)
        half_out = capsys.readouterr()
        # The link drops while the device answers: not a success either.
        drops = await cli("poll", "drops", "--what", "identity", *sock)
        drops_out = capsys.readouterr()
        # A kind asked for by name that the device cannot serve.
        named = await cli("poll", "nolog", "--what", "events", *sock)
        named_out = capsys.readouterr()
        results = [(a.device_id, a.result) for a in audits(outbox_records(daemon))]
    no_daemon = await cli("poll", "line1", "--socket", str(short_dir / "none.sock"))
    bad_config = await cli("poll", "line1", "--config", str(short_dir / "missing.toml"))
    capsys.readouterr()

    assert (ok, half, drops, named, no_daemon, bad_config) == (0, 1, 1, 1, 3, 2)
    assert ok_out.err == ""
    assert "Demo Relays" in half_out.out  # the part that worked
    for kind in ("events", "settings", "status"):
        assert f"{kind}: FAILED (link): device half did not answer" in half_out.out
    assert "half: 3 part(s) failed: events (link), settings (link), status (link)" in half_out.err
    assert "link DOWN" in drops_out.out
    assert "drops: the device cannot be reached (link down)" in drops_out.err
    assert "unsupported" in named_out.err
    assert results == [
        ("line1", "ok"),
        ("half", "error"),
        ("drops", "error"),
        ("nolog", "error"),
    ]


async def test_json_output_is_the_typed_reply_whatever_the_exit(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port(), devices=DEVICES)
    async with running(loaded):
        code = await cli("poll", "half", "--json", "--socket", str(loaded.config.control_socket))
    reply = PollReply.model_validate(json.loads(capsys.readouterr().out))
    assert code == 1
    assert reply.answer is not None
    assert not reply.answer.ok
    assert set(reply.answer.failures()) == {"events", "settings", "status"}


async def test_events_show_profile_names_in_time_order(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = (await printed(short_dir, capsys, "--what", "events")).splitlines()
    header = out.index("events (4, oldest first; received since connect)")
    rows = out[header + 2 : header + 6]
    assert out[header + 1].split() == ["DEVICE", "TIME", "POINT", "VALUE", "QUALITY", "CAUSE",
                                       "ADDRESS"]  # fmt: skip
    assert [r.split()[:4] for r in rows] == [
        ["2026-03-01", "08:15:30.100Z", "start", "True"],
        ["2026-03-01", "08:15:30.120Z", "trip_phase_a", "True"],
        ["2026-03-01", "08:15:30.900Z", "trip_phase_a", "False"],
        ["-", "?", "9999", "1"],  # no device time: last; not in the profile: its address
    ]
    assert "NT" in rows[0]


async def test_status_and_settings_are_name_value_rows(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await printed(short_dir, capsys)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100  # no wide rows
    assert "{" not in out
    assert "[" not in out
    status = lines.index("status (2 points)")
    assert lines[status + 1].split() == ["POINT", "VALUE", "QUALITY", "DEVICE", "TIME", "ADDRESS"]
    assert lines[status + 2].split() == ["breaker_closed", "True", "-", "-", "1031"]
    assert lines[status + 3].split() == ["self_check_fail", "False", "IV", "-", "1101"]
    assert any(line.split()[:3] == ["current_phase_a", "412.5", "A"] for line in lines)
    counters = lines.index("link counters")
    assert lines[counters + 1 : counters + 3] == ["  received  3", "  link      tcp 127.0.0.1"]
    settings = lines.index("settings (4; fake registers)")
    assert lines[settings + 2].split() == ["zone1_reach", "80.0", "%", "1"]
    assert lines[settings + 5].split() == ["station_name", "North", "-", "2"]
