"""`--direct`: poll devices without the daemon, by opening their links for a moment.

For when no daemon runs (commissioning, a daemon that will not start). Each device gets
a short-lived driver of its own: start `driver.run(sink)` as a task, wait until the
driver reports the link up (or fails, or the time is up), call `driver.poll`, cancel.

The trade-offs (docs/polling.md):
- It must not run beside a daemon (the CLI checks the control socket first): a relay
  often accepts one 104 master, and an RS-485 bus one master.
- It opens the gateway's real outbox, because the session acknowledges whatever the
  relay sends on connect (buffered events, a 104 relay forgets them once acknowledged).
  Those records reach the center with the next daemon run. So it needs the agent's
  user (or write access to the state dir), and the outbox gets a new session number.
- The connect cost is paid per device (a 104 connect plus general interrogation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import getpass
import os
import pwd
import sqlite3
import time
from collections.abc import Sequence
from typing import Protocol

from agent.config import LoadedConfig
from agent.daemon import link_plans
from agent.normalize import DeviceContext
from agent.ondemand.answer import audit_outcome, make_answer, read_kinds
from agent.ondemand.audit import Auditor
from agent.pipeline import Pipeline
from gateway.outbox import Outbox
from gateway.rpc import PollAnswer, PollFailed, PollReply, expand_what
from protocols import registry
from protocols.observations import LinkStateObservation, Observation
from protocols.registry import LinkPlan, PlannedDevice


class Progress(Protocol):
    def start(self, device: str) -> float: ...

    def finish(self, device: str, reply: PollReply, since: float) -> None: ...


def claimed_user() -> str:
    """Who the engineer says they are; the kernel's view is recorded beside it."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


class DirectError(Exception):
    """A direct poll that cannot start (the outbox cannot be opened)."""


class _WatchingSink:
    """Delivers into a real pipeline and notes when a device's link comes up.

    Why the real outbox and not a null sink: a direct session acknowledges whatever the
    relay sends on connect (a 104 relay drops buffered events once acknowledged), so
    those events must be stored and reach the center with the next daemon run."""

    def __init__(self, pipeline: Pipeline, loop: asyncio.AbstractEventLoop) -> None:
        self.pipeline, self.loop = pipeline, loop
        self.up: dict[str, asyncio.Event] = {}

    def _note(self, observations: Sequence[Observation]) -> None:
        for obs in observations:
            if isinstance(obs, LinkStateObservation) and obs.up and obs.device_id in self.up:
                self.up[obs.device_id].set()

    async def deliver(self, observations: Sequence[Observation]) -> None:
        # Shielded: cancelling the session must not cancel a commit in flight (the
        # device may already count it as delivered).
        await asyncio.shield(self.pipeline.deliver(observations))
        self._note(observations)  # "up" once the link-up is stored, like the daemon

    def deliver_blocking(self, observations: Sequence[Observation]) -> None:
        self.pipeline.deliver_blocking(observations)
        self.loop.call_soon_threadsafe(self._note, observations)

    def submit(self, observations: Sequence[Observation]) -> concurrent.futures.Future[None]:
        future = self.pipeline.submit(observations)

        def committed(done: concurrent.futures.Future[None]) -> None:
            if done.exception() is None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self._note, observations)

        if observations:
            future.add_done_callback(committed)
        return future


def local_actor() -> str:
    name = pwd.getpwuid(os.getuid()).pw_name
    claimed = claimed_user()
    return name if claimed == name else f"{name} (for {claimed})"


async def poll_direct(
    loaded: LoadedConfig,
    devices: list[str],
    what: str,
    *,
    timeout_s: float | None,
    actor: str,
    progress: Progress | None = None,
) -> dict[str, PollReply]:
    """Open each device's link in turn, wait for it to come up, poll, close. Audited
    like a daemon poll (action `poll_direct`). Replies have the socket's shape."""
    cfg = loaded.config
    outbox = Outbox(cfg.outbox_path, cfg.outbox.synchronous, cfg.outbox.max_records)
    try:
        outbox.open()
    except (OSError, sqlite3.Error) as exc:
        raise DirectError(
            f"cannot open the outbox {cfg.outbox_path} ({exc}): run as the agent's user; "
            "what the device sends during a direct poll is stored there"
        ) from None
    try:
        outbox.bind_loop(asyncio.get_running_loop())
        contexts = {
            d.id: DeviceContext(
                cfg.agent.site, cfg.agent.gateway_id, d.id, str(getattr(d, "protocol")),  # noqa: B009
                loaded.profiles[d.id],
            )
            for d in cfg.devices
        }  # fmt: skip
        pipeline = Pipeline(outbox, contexts)
        auditor = Auditor(cfg.agent.site, cfg.agent.gateway_id, pipeline.append_record)
        sink = _WatchingSink(pipeline, asyncio.get_running_loop())
        plans = {d.config.id: (plan, d) for plan in link_plans(loaded) for d in plan.devices}
        timeout = timeout_s or cfg.control.poll_timeout_s
        results: dict[str, PollReply] = {}
        for device in devices:
            since = progress.start(device) if progress else 0.0
            try:
                answer = await _direct_one(
                    loaded, sink, plans.get(device), device, what=what, timeout_s=timeout
                )
            except PollFailed as exc:
                results[device] = PollReply.failed(exc)
                await auditor.record(
                    actor=actor, origin="local", action="poll_direct",
                    device=device if device in contexts else None, what=what,
                    result="error", error=f"{exc.code}: {exc.message}",
                )  # fmt: skip
            else:
                results[device] = PollReply.answered(answer)
                result, error = audit_outcome(answer)
                await auditor.record(
                    actor=actor, origin="local", action="poll_direct", device=device,
                    what=what, result=result, error=error,
                )  # fmt: skip
            if progress:
                progress.finish(device, results[device], since)
        return results
    finally:
        outbox.close()


async def _direct_one(
    loaded: LoadedConfig,
    sink: _WatchingSink,
    planned: tuple[LinkPlan, PlannedDevice] | None,
    device: str,
    *,
    what: str,
    timeout_s: float,
) -> PollAnswer:
    kinds = expand_what(what)
    if planned is None:
        enabled = any(d.id == device for d in loaded.config.devices)
        if enabled:
            raise PollFailed("disabled", f"device {device} is disabled in the config")
        raise PollFailed("unknown_device", f"unknown device {device!r} in {loaded.source}")
    plan, entry = planned
    # Only this device: on a shared bus the others stay untouched.
    solo = dataclasses.replace(plan, devices=(entry,))
    sink.up[device] = asyncio.Event()
    started = time.monotonic()
    driver = registry.get(plan.protocol).make_driver(solo)
    running = asyncio.create_task(driver.run(sink), name=f"direct {plan.key}")
    link_up = asyncio.create_task(sink.up[device].wait())
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.wait({running, link_up}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                error = None if running.cancelled() else running.exception()
                raise PollFailed("link", f"link {plan.key} failed: {error or 'driver stopped'}")
            results, errors = await read_kinds(driver, plan.protocol, device, kinds)
    except TimeoutError:
        raise PollFailed(
            "timeout", f"device {device} did not answer within {timeout_s:g} s"
        ) from None
    finally:
        for task in (link_up, running):
            task.cancel()
        await asyncio.gather(link_up, running, return_exceptions=True)
    cfg = loaded.config.agent
    return make_answer(
        site=cfg.site, gateway_id=cfg.gateway_id, device=device, what=what,
        started=started, link_up=True, results=results, errors=errors,
        profile=loaded.profiles.get(device),
    )  # fmt: skip
