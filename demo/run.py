"""The demo, in one asyncio loop: broker, simulated relays, center (in this process), and the
agent as a child process reading the relays exactly as on a gateway.

Order matters: the broker first, then the center (its persistent session subscribes before
anything is published), the relays, the agent; the scenario plays once the agent has
interrogated the IEC 104 relays. Everything stops in reverse order, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.cli_options import add_version_option
from demo import follow_up
from simulator.harness.agent_config import agent_config, to_toml
from simulator.harness.agent_process import AgentProcess
from simulator.harness.broker import BrokerKind, LocalBroker, free_port, local_broker
from simulator.runner import ScenarioRunner, combine, on_free_ports
from simulator.scenario import SCENARIOS_DIR, SEED_SCENARIO, Scenario, load_scenario

if TYPE_CHECKING:  # the center (SQLAlchemy) is imported only when the demo runs: a gateway
    from demo.ticket_feed import TicketFeed  # installed without [center] must work

SITE = "north-220kv"
GATEWAY = "gw-north-1"
DEMO_EXTRAS = SCENARIOS_DIR / "demo-extras.toml"


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float | None  # None: until Ctrl-C
    broker: BrokerKind = "auto"
    workdir: Path | None = None
    api_port: int = 8765
    speed: float = 1.0


def demo_scenario() -> Scenario:
    return on_free_ports(combine(load_scenario(SEED_SCENARIO), load_scenario(DEMO_EXTRAS)))


def _port_or_free(port: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def _console_login(service: Any) -> str:
    """A console user for the demo (an engineer: may act, approve and poll), new password
    each run; returns 'user / password'."""
    from center.auth.users import UserError, UserStore

    users, password = UserStore(service.engine), secrets.token_urlsafe(12)
    now = service.clock.now()
    try:
        users.add("demo", password, "engineer", by="demo", via="cli", now=now)
    except UserError:  # a kept --workdir: the user exists
        users.set_password("demo", password, by="demo", via="cli", now=now)
    return f"demo / {password}"


def center_config(workdir: Path, broker: LocalBroker, api_port: int, token: str) -> dict[str, Any]:
    return {
        "center": {"instance": "demo", "state_dir": str(workdir / "center"), "log_level": "INFO"},
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "relay-center-demo"},
        "api": {"port": api_port, "tokens": [{"name": "demo", "token": token}]},
        "routing": {
            "regions": {"north": {"service_point": "sp-north"}},
            "sites": {SITE: {"region": "north", "name": "North 220 kV substation"}},
        },
        "devices": [{"site": SITE, "device_id": "busbar", "criticality": "high"}],
        # short holds, so that conditions resolving themselves show within the demo
        "tickets": {
            "auto_resolve_after_s": 5.0,
            "auto_resolve_overrides": {"comms": 5.0, "site_comms": 5.0},
            "tick_interval_s": 1.0,
        },
    }


class Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="relay-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stop = asyncio.Event()
        self.api = ("", "")  # the center API's base URL and token, once it runs
        self.agent_config = self.workdir / "agent" / "agent.toml"
        # Remote polls are on, as on a gateway that the center may ask: one token, in a
        # file only this user reads, for the agent's tokens file and `relay-center poll`.
        self.poll_token = secrets.token_urlsafe(24)
        self.poll_token_file = self.workdir / "poll-token"

    def say(self, line: str) -> None:
        print(line, flush=True)

    async def run(self) -> int:
        opts = self.options
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        self.say(f"relay-demo: working in {self.workdir}")
        async with contextlib.AsyncExitStack() as stack:
            broker = local_broker(self.workdir / "broker", opts.broker)
            await broker.astart()
            stack.push_async_callback(broker.astop)
            self.say(f"broker     {broker.name} on {broker.host}:{broker.port}")

            center, feed = await self._start_center(stack, broker)

            scenario = demo_scenario()
            runner = ScenarioRunner(scenario, speed=opts.speed, progress=self._sim_line)
            await runner.start()
            stack.push_async_callback(runner.stop)

            agent = self._start_agent(scenario, runner, broker)
            stack.callback(agent.stop)
            iec104 = sum(1 for r in scenario.relays if r.protocol == "iec104")
            await runner.wait_for_clients(iec104, timeout_s=60)
            await asyncio.sleep(2.0)  # the agent's interrogation and first Modbus/103 polls

            self.say(f"scenario   {scenario.header.name} + demo extras: playing")
            play = asyncio.create_task(runner.play())
            stack.push_async_callback(_cancel, play)
            await self._watch(feed, play)
            self.say(self._summary(feed))
        shutil.rmtree(self.workdir / "broker", ignore_errors=True)
        del center
        return 0

    async def _start_center(
        self, stack: contextlib.AsyncExitStack, broker: LocalBroker
    ) -> tuple[Any, TicketFeed]:
        from center.config import load_config
        from center.server import CenterService

        token = secrets.token_urlsafe(24)
        port = _port_or_free(self.options.api_port)
        if port != self.options.api_port:
            self.say(
                f"center API port {self.options.api_port} is taken: using {port} instead "
                "(--api-port chooses)"
            )
        path = self.workdir / "center.toml"
        path.write_text(to_toml(center_config(self.workdir, broker, port, token)))
        service = await asyncio.to_thread(CenterService, load_config(path))
        stopped = asyncio.Event()
        task = asyncio.create_task(service.run(stopped))

        async def stop_center() -> None:
            stopped.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)

        stack.push_async_callback(stop_center)
        self.say(f"center     {path} (SQLite in {self.workdir / 'center'})")
        self.say(f"center API http://127.0.0.1:{port}/docs  (token: {token})")
        login = await asyncio.to_thread(_console_login, service)
        self.say(f"console    http://127.0.0.1:{port}/  (log in as {login})")
        self.api = (f"http://127.0.0.1:{port}/api/v1", token)
        from demo.ticket_feed import TicketFeed

        return service, TicketFeed(service.engine)

    def _start_agent(
        self, scenario: Scenario, runner: ScenarioRunner, broker: LocalBroker
    ) -> AgentProcess:
        tokens = self.workdir / "remote-tokens"
        tokens.write_text(f"demo:{self.poll_token}\n")
        self.poll_token_file.write_text(self.poll_token + "\n")
        for secret in (tokens, self.poll_token_file):
            secret.chmod(0o600)
        config = agent_config(
            scenario,
            runner.relays,
            site=SITE,
            gateway_id=GATEWAY,
            state_dir=self.workdir / "agent-state",
            broker=(broker.host, broker.port),
            extra={
                "broker": {"mqtt_version": broker.mqtt_version},
                "remote": {"enabled": True, "tokens_file": str(tokens)},
            },
        )
        agent = AgentProcess(self.workdir / "agent", config)
        agent.start()
        self.agent_config = agent.config_path
        self.say(f"agent      {agent.config_path} (log: {agent.log_path})")
        return agent

    def _parts(self) -> follow_up.Demo:
        url, token = self.api
        return follow_up.Demo(
            site=SITE,
            gateway=GATEWAY,
            center_config=self.workdir / "center.toml",
            agent_config=self.agent_config,
            api_url=url,
            api_token=token,
            poll_token_file=self.poll_token_file,
        )

    def _sim_line(self, line: str) -> None:
        self.say(f"relays     {line}")

    async def _watch(self, feed: TicketFeed, play: asyncio.Task[None]) -> None:
        deadline = None
        if self.options.duration_s is not None:
            deadline = time.monotonic() + self.options.duration_s
        announced = False
        while not self.stop.is_set():
            for line in await asyncio.to_thread(feed.changes):
                self.say(line)
            for line in await asyncio.to_thread(feed.records):
                self.say(line)
            if play.done() and not announced:
                announced = True
                play.result()  # a failed scenario stops the demo with its error
                until = "the duration ends" if deadline else "Ctrl-C"
                self.say(f"scenario   played; the center keeps running until {until}")
                self._say_follow_ups(feed)
            if deadline is not None and time.monotonic() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.5)

    def _say_follow_ups(self, feed: TicketFeed) -> None:
        parts = self._parts()
        self.say(f"try        the agent's view: {follow_up.agent_status(parts)}")
        trip = follow_up.protection_ticket(feed.latest)
        if trip is not None:
            self.say(
                f"try        ticket #{trip} waits for a person: {follow_up.resolve(parts, trip)}"
            )
        self.say(
            "try        a settings drift resolves once approved: "
            + follow_up.approve_settings(parts, "feeder7")
        )
        self.say(
            f"try        ask a relay through its agent: {follow_up.remote_poll(parts, 'line1')}"
        )

    def _summary(self, feed: TicketFeed) -> str:
        by_state: dict[str, int] = {}
        for doc in feed.latest:
            by_state[doc["state"]] = by_state.get(doc["state"], 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "none"
        return f"tickets    {len(feed.latest)} ({states}); stopping"


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def build_parser() -> argparse.ArgumentParser:
    demo = argparse.ArgumentParser(
        prog="relay-demo",
        description="run a simulated substation, the agent, a broker and the center, "
        "and print tickets",
    )
    add_version_option(demo)
    demo.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                      help="stop after this long (default: run until Ctrl-C)")  # fmt: skip
    demo.add_argument("--broker", choices=["auto", "mosquitto", "embedded"], default="auto",
                      help="auto: Mosquitto when installed, else an embedded broker")  # fmt: skip
    demo.add_argument("--workdir", type=Path, default=None,
                      help="configs, databases and logs (default: a new temp dir)")  # fmt: skip
    demo.add_argument("--api-port", type=int, default=8765)
    demo.add_argument("--speed", type=float, default=1.0, help="scenario time factor")
    return demo


def main(argv: list[str] | None = None) -> int:
    return cmd_demo(build_parser().parse_args(argv))


def cmd_demo(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    options = DemoOptions(
        duration_s=args.duration,
        broker=args.broker,
        workdir=args.workdir,
        api_port=args.api_port,
        speed=args.speed,
    )
    return asyncio.run(Demo(options).run())
