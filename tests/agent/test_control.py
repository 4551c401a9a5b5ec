"""Local on-demand polls through the running daemon's control socket."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from agent.cli import main
from agent.cli.client import connect
from agent.ondemand.service import OnDemand
from tests.agent.test_control_support import (  # noqa: F401 - fixtures
    IDENTITY,
    FakeRelay,
    audits,
    fake_relays_fixture,
    outbox_records,
    running,
    short_dir_fixture,
    wait_until,
    write_config,
)
from tests.support.mosquitto import free_port


async def cli(*argv: str) -> int:
    """relay-agent in a thread (it runs its own event loop), like an engineer's shell."""
    return await asyncio.to_thread(main, list(argv))


async def test_a_local_poll_uses_the_daemons_running_driver_and_is_audited(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port())
    sock = str(loaded.config.control_socket)
    async with running(loaded) as daemon:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        drivers_before = list(FakeRelay.instances)

        code = await cli("poll", "line1", "--what", "identity", "--socket", sock, "--json")
        out = capsys.readouterr().out
        assert code == 0
        reply = json.loads(out)
        assert reply["ok"] is True
        answer = reply["answer"]
        assert answer["result"]["identity"] == {
            **IDENTITY,
            "serial": None,
            "checksum": None,
            "details": {},
        }
        assert answer["result"]["settings"] is None
        assert answer["errors"] == {}
        assert (answer["device"], answer["gateway_id"], answer["link_up"]) == ("line1", "gw1", True)

        # Shared link: the poll went to the driver the supervisor runs, no new one.
        assert FakeRelay.instances == drivers_before
        served = [d for d in FakeRelay.instances if ("line1", "identity") in d.polls]
        assert len(served) == 1
        assert served[0].running

        (audit,) = audits(outbox_records(daemon))
        assert (audit.origin, audit.action, audit.what, audit.result) == (
            "local",
            "poll",
            "identity",
            "ok",
        )
        assert audit.device_id == "line1"
        assert audit.actor


async def test_poll_all_shows_what_worked_and_what_did_not(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kind the device has no data for is shown as not available; with `all` that is
    no failure (`all` means every kind this device has)."""
    loaded = write_config(short_dir, free_port(), devices=("line2", "nolog"))
    async with running(loaded):
        code = await cli("poll", "nolog", "--socket", str(loaded.config.control_socket))
        out = capsys.readouterr().out
    assert code == 0
    assert "nolog on gw1 (north): all" in out
    assert "zone1_reach" in out
    assert "Demo Relays" in out
    assert "events: not available (iec104 cannot read events: " in out


async def test_unknown_device_is_a_clear_error_and_is_audited(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port())
    async with running(loaded) as daemon:
        code = await cli("poll", "nosuch", "--socket", str(loaded.config.control_socket))
        err = capsys.readouterr().err
        (audit,) = audits(outbox_records(daemon))
    assert code == 1
    assert "unknown_device" in err
    assert "nosuch" in err
    assert audit.result == "error"
    assert audit.device_id is None
    assert "nosuch" in (audit.error or "")


async def test_a_device_that_does_not_answer_gives_link_and_timeout_errors(
    fake_relays: type[FakeRelay], short_dir: Path
) -> None:
    loaded = write_config(short_dir, free_port(), devices=("mute", "slow"))
    async with running(loaded) as daemon, connect(loaded.config.control_socket) as client:
        mute = await client.poll("mute", "identity", None)
        slow = await client.poll("slow", "identity", 0.5)
        results = [a.result for a in audits(outbox_records(daemon))]
    assert (mute.ok, mute.code) == (False, "link")
    assert (slow.ok, slow.code) == (False, "timeout")
    assert "did not answer within 0.5 s" in (slow.error or "")
    assert results == ["error", "error"]


async def test_bad_requests_on_the_socket_get_an_answer(
    fake_relays: type[FakeRelay], short_dir: Path
) -> None:
    loaded = write_config(short_dir, free_port())
    async with running(loaded), connect(loaded.config.control_socket) as client:
        bad_what = await client.poll("line1", "write_setting", None)
        bad_op = await client.request({"op": "write", "device": "line1"})
        client.writer.write(b"not json\n")
        junk = json.loads(await client.reader.readline())
    assert bad_what.code == "bad_request"
    assert bad_op["code"] == "bad_request"
    assert junk["code"] == "bad_request"


async def test_status_shows_devices_links_outbox_and_broker(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port())
    sock = str(loaded.config.control_socket)
    async with running(loaded) as daemon:
        # The link shows up while the trip is being committed: wait for the commit.
        await wait_until(lambda: daemon.outbox.depth >= 1, what="the trip in the outbox")
        assert await cli("status", "--socket", sock, "--json") == 0
        status = json.loads(capsys.readouterr().out)
        assert await cli("status", "--socket", sock) == 0
        text = capsys.readouterr().out
    assert status["gateway_id"] == "gw1"
    assert status["broker"]["connected"] is False
    assert status["outbox"]["depth"] >= 1  # the trip event, waiting for the broker
    by_id = {d["device"]: d for d in status["devices"]}
    assert by_id["line1"]["link_up"] is True
    assert by_id["line1"]["last_event"] == "trip_phase_a"
    assert "NOT CONNECTED" in text
    assert "DEVICE" in text
    assert "trip_phase_a" in text


async def test_snapshot_all_reads_every_device_with_progress(
    fake_relays: type[FakeRelay], short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = write_config(short_dir, free_port(), devices=("line1", "line2", "mute"))
    out_dir = short_dir / "snap"
    async with running(loaded) as daemon:
        code = await cli(
            "snapshot", "--all", "--socket", str(loaded.config.control_socket),
            "--output", str(out_dir),
        )  # fmt: skip
        captured = capsys.readouterr()
        kinds = [(a.device_id, a.what, a.result) for a in audits(outbox_records(daemon))]
    assert code == 1  # one device failed
    assert "[1/3] line1" in captured.err
    assert "[3/3] mute: FAILED" in captured.err
    assert "[1/3] line1: 4 settings" in captured.err  # the device's settings, not the parts
    assert sorted(p.name for p in out_dir.iterdir()) == ["line1.json", "line2.json"]
    saved = json.loads((out_dir / "line1.json").read_text())
    first = saved["result"]["settings"]["settings"][0]
    assert first == {"name": "zone1_reach", "value": 80.0, "unit": "%", "group": "1"}
    assert kinds == [
        ("line1", "settings", "ok"),
        ("line2", "settings", "ok"),
        ("mute", "settings", "error"),
    ]


async def test_no_daemon_is_exit_3_with_a_hint(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await cli("poll", "line1", "--socket", str(short_dir / "none.sock"))
    assert code == 3
    assert "--direct" in capsys.readouterr().err


async def test_a_second_daemon_on_the_same_socket_is_refused(
    fake_relays: type[FakeRelay], short_dir: Path
) -> None:
    loaded = write_config(short_dir, free_port())
    async with running(loaded) as daemon:
        ondemand = daemon.ondemand
        assert isinstance(ondemand, OnDemand)
        from agent.ondemand.control_socket import ControlServer

        with pytest.raises(RuntimeError, match="another agent"):
            await ControlServer(loaded.config.control_socket, ondemand).serve()
