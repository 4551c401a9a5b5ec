"""`--direct`: polling without a daemon, and the output formatting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.cli import main
from gateway import wire
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


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_direct_poll_opens_the_device_and_keeps_what_it_sent(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port())
    code = await cli(
        "poll", "line2", "--what", "settings", "--direct", "--config", str(loaded.source), "--json"
    )
    reply = json.loads(capsys.readouterr().out)
    assert code == 0
    assert reply["ok"] is True
    settings = {s["name"]: s for s in reply["answer"]["result"]["settings"]["settings"]}
    assert settings["zone2_delay"]["unit"] == "s"
    # A driver of its own, for that device only, stopped afterwards.
    (driver,) = FakeRelay.instances
    assert driver.device_ids == ["line2"]
    assert not driver.running
    # What the relay sent on connect was acknowledged, so it is in the outbox, with the audit.
    records = outbox_records(loaded.config.outbox_path)
    events = [r for r in records if isinstance(r, wire.Event)]
    assert [(e.device_id, e.point) for e in events] == [("line2", "trip_phase_a")]
    (audit,) = audits(records)
    assert (audit.action, audit.origin, audit.device_id, audit.result) == (
        "poll_direct",
        "local",
        "line2",
        "ok",
    )


async def test_direct_poll_of_a_dead_or_unknown_device_fails_clearly(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port(), devices=("mute",))
    config = str(loaded.source)
    assert await cli("poll", "mute", "--what", "identity", "--direct", "--config", config) == 1
    assert "link: device mute did not answer" in capsys.readouterr().err
    assert await cli("poll", "ghost", "--direct", "--config", config) == 1
    assert "unknown device 'ghost'" in capsys.readouterr().err
    results = [(a.device_id, a.result) for a in audits(outbox_records(loaded.config.outbox_path))]
    assert results == [("mute", "error"), (None, "error")]


async def test_direct_is_refused_while_a_daemon_runs(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port())
    async with running(loaded):
        code = await cli("poll", "line1", "--direct", "--config", str(loaded.source))
    assert code == 2
    assert "daemon is running" in capsys.readouterr().err


async def test_direct_snapshot_all_with_progress(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port())
    code = await cli("snapshot", "--all", "--direct", "--config", str(loaded.source), "--json")
    captured = capsys.readouterr()
    assert code == 0
    assert "[2/2] line2: 4 settings" in captured.err
    assert set(json.loads(captured.out)) == {"line1", "line2"}
