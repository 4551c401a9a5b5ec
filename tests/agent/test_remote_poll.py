"""Remote on-demand polls from the center, through a real Mosquitto."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from agent.daemon import AgentDaemon
from agent.ondemand.remote import TokenStore, parse_tokens
from center import remote_poll as center_poll
from center.remote_poll import BrokerSettings, remote_poll
from common.errors import ConfigError
from gateway import wire
from gateway.rpc import PollFailed, RemoteReply, reply_topic, request_topic
from tests.agent.test_control_support import (  # noqa: F401 - fixtures
    IDENTITY,
    TOKEN,
    FakeRelay,
    fake_relays_fixture,
    running,
    short_dir_fixture,
    write_config,
)
from tests.support.collector import Collector
from tests.support.mosquitto import Mosquitto


@asynccontextmanager
async def agent_online(
    mosquitto: Mosquitto, root: Path, devices: tuple[str, ...] = ("line1", "slow")
) -> AsyncIterator[tuple[AgentDaemon, Collector, BrokerSettings]]:
    """A daemon with remote polls on, a collector of everything under relay/v1/#, and
    the agent's request subscription known to be live (a first request was answered)."""
    loaded = write_config(root, mosquitto.port, devices=devices, remote=True)
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    async with Collector(mosquitto.host, mosquitto.port) as col, running(loaded, True) as daemon:
        deadline = time.monotonic() + 30
        while True:  # the subscription follows the birth; retry until it is live
            try:
                await ask(broker, "line1", "identity", timeout_s=2)
                break
            except PollFailed as exc:
                if exc.code != "no_reply" or time.monotonic() > deadline:
                    raise
        yield daemon, col, broker


async def ask(broker: BrokerSettings, device: str, what: str, **kw: Any) -> RemoteReply:
    args: dict[str, Any] = {"token": TOKEN, "actor": "alice", "timeout_s": 10.0, **kw}
    return await remote_poll(
        broker, site="north", gateway_id="gw1", device=device, what=what, **args
    )


def remote_audits(col: Collector) -> list[wire.Audit]:
    """Remote audits, without the warm-up requests (line1 identity, maybe several)."""
    return [
        r
        for r in col.of_kind("audit")
        if r.origin == "remote" and (r.device_id, r.what) != ("line1", "identity")
    ]


async def test_remote_poll_answers_and_its_audit_reaches_the_center(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto
) -> None:
    async with agent_online(mosquitto, short_dir) as (_daemon, col, broker):
        reply = await ask(broker, "line1", "all")
        await col.wait_for(lambda c: len(remote_audits(c)) >= 1, what="the remote audit")
    assert reply.ok is True
    assert reply.gateway_id == "gw1"
    answer = reply.answer
    assert answer is not None
    assert answer.ok
    assert answer.result.identity is not None
    assert answer.result.identity.model == IDENTITY["model"]
    assert answer.result.events is not None
    assert answer.result.events.events[0].name == "start"
    (audit,) = remote_audits(col)
    assert (audit.actor, audit.device_id, audit.what, audit.result) == (
        "alice (token ops)",
        "line1",
        "all",
        "ok",
    )
    assert audit.site == "north"
    assert audit.gateway_id == "gw1"


async def test_a_wrong_token_is_refused_and_audited(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto
) -> None:
    async with agent_online(mosquitto, short_dir) as (_daemon, col, broker):
        reply = await ask(broker, "line1", "settings", token="guessed-token-000000000")
        await col.wait_for(
            lambda c: any(a.result == "refused" for a in remote_audits(c)), what="refusal"
        )
        polls = [p for d in FakeRelay.instances for p in d.polls if p[1] == "settings"]
    assert (reply.ok, reply.code) == (False, "refused")
    assert "does not accept this token" in (reply.error or "")
    assert polls == []  # the device was never asked
    (refusal,) = [a for a in remote_audits(col) if a.result == "refused"]
    assert refusal.actor == "alice (token refused)"
    assert refusal.device_id == "line1"


async def test_unknown_device_timeout_and_writes_are_answered_clearly(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto
) -> None:
    async with agent_online(mosquitto, short_dir) as (_daemon, col, broker):
        unknown = await ask(broker, "ghost", "identity")
        slow = await ask(broker, "slow", "identity", timeout_s=2.0)
        write = await raw_request(mosquitto, {"what": "write_setting", "device": "line1"})
        spoof = await raw_request(mosquitto, {"reply_to": "relay/v1/north/gw1/event/line1"})
        await col.wait_for(lambda c: len(remote_audits(c)) >= 3, what="audits")
    assert (unknown.ok, unknown.code) == (False, "unknown_device")
    assert (slow.ok, slow.code) == (False, "timeout")  # the agent's own budget
    assert (write["ok"], write["code"]) == (False, "refused")
    assert "only reads" in write["error"]
    assert spoof["code"] == "bad_request"  # answered on its own reply topic, nowhere else
    results = [(a.device_id, a.what, a.result) for a in remote_audits(col)]
    assert results == [
        (None, "identity", "error"),
        ("slow", "identity", "error"),
        ("line1", "write_setting", "refused"),
    ]
    assert not [m for m in col.messages if "event/line1" in m[0] and b"request_id" in m[1]]


async def raw_request(mosquitto: Mosquitto, override: dict[str, Any]) -> dict[str, Any]:
    """A hand-made request, for what `remote_poll` would never send."""
    request_id = f"raw{time.monotonic_ns()}"
    request = {
        "v": 1, "request_id": request_id, "actor": "mallory", "token": TOKEN,
        "device": "line1", "what": "identity", "timeout_s": 5,
        "reply_to": reply_topic("north", "gw1", request_id), **override,
    }  # fmt: skip
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        await client.subscribe(reply_topic("north", "gw1", request_id), qos=1)
        await client.publish(request_topic("north", "gw1"), json.dumps(request), qos=1)
        async with asyncio.timeout(15):
            async for message in client.messages:
                reply: dict[str, Any] = json.loads(bytes(message.payload))
                return reply
    raise AssertionError("no reply")


async def test_an_offline_agent_gives_a_clear_message(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    message = r"agent gw-x at site north did not answer within 1\.5 s: offline\?"
    with pytest.raises(PollFailed, match=message):
        await remote_poll(
            broker, site="north", gateway_id="gw-x", device="line1", what="identity",
            token=TOKEN, actor="alice", timeout_s=1.5,
        )  # fmt: skip

    # The command the center CLI wires to `relay-center poll`: exit 3, same message.
    parser = argparse.ArgumentParser()
    center_poll.add_arguments(parser)
    args = parser.parse_args(["north", "line1", "--gateway", "gw-x", "--timeout", "1"])
    monkeypatch.setenv("RELAY_POLL_TOKEN", TOKEN)
    code = await asyncio.to_thread(center_poll.run, args, broker)
    assert code == 3
    assert "agent gw-x at site north did not answer within 1 s: offline?" in capsys.readouterr().err


async def test_center_command_prints_the_answer_and_exits_like_the_agent(
    fake_relays: type[FakeRelay],
    short_dir: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The agent's view and exit codes at the center: a relay that answers only part of a
    poll exits 1, with what did work printed."""
    parser = argparse.ArgumentParser()
    center_poll.add_arguments(parser)
    monkeypatch.setenv("RELAY_POLL_TOKEN", TOKEN)
    async with agent_online(mosquitto, short_dir, ("line1", "half")) as (_d, _c, broker):
        ok = parser.parse_args(["north", "line1", "--gateway", "gw1", "--what", "settings"])
        code_ok = await asyncio.to_thread(center_poll.run, ok, broker)
        ok_out = capsys.readouterr().out
        half = parser.parse_args(["north", "half", "--gateway", "gw1"])
        code_half = await asyncio.to_thread(center_poll.run, half, broker)
        half_out = capsys.readouterr()
    assert (code_ok, code_half) == (0, 1)
    assert ok_out.startswith("line1 on gw1 (north): settings")
    assert "zone1_reach" in ok_out
    assert "Demo Relays" in half_out.out
    assert "settings: FAILED (link)" in half_out.out
    assert "half: 3 part(s) failed: events (link), settings (link), status (link)" in (half_out.err)


async def test_a_reply_in_another_shape_is_named_not_taken_for_silence(
    mosquitto: Mosquitto,
) -> None:
    """An agent of another version answers in a shape this center does not read: the
    center says so at once instead of waiting and calling the agent offline."""
    broker = BrokerSettings(host=mosquitto.host, port=mosquitto.port)
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as old_agent:
        await old_agent.subscribe(request_topic("north", "gw-old"), qos=1)

        async def answer_like_an_old_agent() -> None:
            async for message in old_agent.messages:
                request = json.loads(bytes(message.payload))
                old = {"v": 1, "request_id": request["request_id"], "site": "north",
                       "gateway_id": "gw-old", "ok": True,
                       "answer": {"result": {"identity": {"model": "LP-900"}}}}  # fmt: skip
                await old_agent.publish(request["reply_to"], json.dumps(old), qos=1)
                return

        responder = asyncio.create_task(answer_like_an_old_agent())
        with pytest.raises(PollFailed, match="different versions") as failed:
            await remote_poll(
                broker, site="north", gateway_id="gw-old", device="line1", what="identity",
                token=TOKEN, actor="alice", timeout_s=10,
            )  # fmt: skip
        await responder
    assert failed.value.code == "incompatible"


def test_tokens_file_rules(tmp_path: Path) -> None:
    assert parse_tokens(f"# comment\n\nops:{TOKEN}\n", "t") == {TOKEN: "ops"}
    with pytest.raises(ConfigError, match="line 1: token of 'ops' is too short"):
        parse_tokens("ops:short\n", "t")
    with pytest.raises(ConfigError, match="line 2: expected 'name:token'"):
        parse_tokens(f"ops:{TOKEN}\njusttoken\n", "t")
    with pytest.raises(ConfigError, match="no tokens"):
        parse_tokens("# nothing\n", "t")
    path = tmp_path / "tokens"
    path.write_text(f"ops:{TOKEN}\n")
    store = TokenStore(path)
    assert store.authorise(TOKEN) == "ops"
    assert store.authorise(TOKEN + "x") is None
    assert store.authorise("") is None
    path.write_text(f"ops2:{TOKEN}-rotated\n")  # revoked without a restart
    assert store.authorise(TOKEN) is None
    assert store.authorise(f"{TOKEN}-rotated") == "ops2"
    path.write_text("broken\n")  # fails closed
    assert store.authorise(f"{TOKEN}-rotated") is None


def test_remote_config_is_checked_before_any_port_opens(
    fake_relays: type[FakeRelay], short_dir: Path
) -> None:
    loaded = write_config(short_dir, 1883, remote=True)
    (short_dir / "tokens").unlink()
    with pytest.raises(ConfigError, match="cannot read the tokens file"):
        AgentDaemon(loaded)
    bad = short_dir / "bad"
    bad.mkdir()
    with pytest.raises(ConfigError, match="enabled = true needs tokens_file"):
        write_config(bad, 1883, extra="[remote]\nenabled = true\n")


async def test_relay_center_poll_finds_the_gateway_in_the_center_inventory(
    fake_relays: type[FakeRelay],
    short_dir: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datetime import UTC, datetime

    from center import cli as center_cli
    from center.store import schema
    from center.store.db import make_engine, migrate
    from simulator.harness.agent_config import to_toml

    config = short_dir / "center.toml"
    config.write_text(to_toml({
        "center": {"state_dir": str(short_dir / "center")},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
    }))  # fmt: skip
    engine = make_engine(f"sqlite:///{short_dir / 'center' / 'center.sqlite'}")
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:  # what the center learnt from gw1's birth
        conn.execute(schema.devices.insert().values(
            site="north", device_id="line1", gateway_id="gw1", first_seen=now, last_seen=now,
        ))  # fmt: skip
    engine.dispose()
    monkeypatch.setenv("RELAY_POLL_TOKEN", TOKEN)
    async with agent_online(mosquitto, short_dir):
        argv = ["poll", "north", "line1", "--what", "identity", "--config", str(config)]
        code = await asyncio.to_thread(center_cli.main, argv)
        unknown = ["poll", "north", "nowhere", "--config", str(config)]
        code_unknown = await asyncio.to_thread(center_cli.main, unknown)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("line1 on gw1 (north): identity")
    assert code_unknown == 2
    assert "which gateway serves north/nowhere? pass --gateway" in captured.err
