"""`relay-center poll SITE DEVICE`: ask the agent that serves a relay to read it now.

The center publishes one request to the agent's request topic and waits, bounded, for
the reply on a topic only that request uses. The topics, request, reply and errors are the
contract in `gateway/rpc.py` (the agent's side is agent/ondemand/remote.py); the answer is printed
with the same view as `relay-agent poll` (`gateway/poll_view.py`). The token never goes
on a command line (ps shows those): it comes from a file or the `RELAY_POLL_TOKEN`
environment variable.

An agent that does not answer in time gets a clear message, because "nothing happened"
is what an engineer most needs explained: `agent gw-x did not answer within 10 s:
offline?`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import ssl
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiomqtt
from pydantic import ValidationError

from common import mqtt_client
from common.tls_config import client_context
from gateway.poll_view import render_answer, verdict
from gateway.rpc import (
    DEFAULT_TIMEOUT_S,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    WHAT_CHOICES,
    PollFailed,
    RemoteReply,
    RemoteRequest,
    reply_topic,
    request_topic,
)


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True

    @classmethod
    def from_center_config(cls, mqtt: Any) -> BrokerSettings:
        """From `center.config.MqttConfig` (duck-typed so this module stays importable
        while the center's config grows)."""
        tls = mqtt.tls
        password = mqtt.password_file.read_text().strip() if mqtt.password_file else None
        return cls(
            host=mqtt.host,
            port=mqtt.port,
            username=mqtt.username,
            password=password,
            ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            check_hostname=tls.check_hostname if tls else True,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        return client_context(
            self.ca_file, self.cert_file, self.key_file, check_hostname=self.check_hostname
        )


async def remote_poll(
    broker: BrokerSettings,
    *,
    site: str,
    gateway_id: str,
    device: str,
    what: str,
    token: str,
    actor: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RemoteReply:
    """Send one poll request and return the agent's reply (a refusal is a reply, not an
    exception).

    Raises `PollFailed`: `no_reply` when no reply comes within `timeout_s`, `broker` when
    the broker cannot be reached."""
    if what not in WHAT_CHOICES:
        raise ValueError(f"what must be one of {', '.join(WHAT_CHOICES)} (got {what!r})")
    request_id = uuid.uuid4().hex
    request = RemoteRequest(
        request_id=request_id,
        actor=actor,
        token=token,
        device=device,
        what=what,
        reply_to=reply_topic(site, gateway_id, request_id),
        timeout_s=timeout_s,
    )
    client = mqtt_client.Client(
        broker.host,
        broker.port,
        identifier=f"relay-center-poll-{request_id[:12]}",
        username=broker.username,
        password=broker.password,
        clean_session=True,
        tls_context=broker.tls_context(),
        timeout=min(10.0, timeout_s),
    )
    try:
        async with client:
            await client.subscribe(request.reply_to, qos=1)  # before the request: no race
            await client.publish(
                request_topic(site, gateway_id), request.model_dump_json().encode(), qos=1
            )
            try:
                async with asyncio.timeout(timeout_s):
                    async for message in client.messages:
                        reply = _decode(message.payload, request_id)
                        if reply is not None:
                            return reply
            except TimeoutError:
                raise PollFailed(
                    "no_reply",
                    f"agent {gateway_id} at site {site} did not answer within "
                    f"{timeout_s:g} s: offline?",
                ) from None
    except aiomqtt.MqttError as exc:
        raise PollFailed("broker", f"broker {broker.host}:{broker.port}: {exc}") from None
    raise PollFailed("broker", "the broker connection ended before a reply")


def _decode(payload: Any, request_id: str) -> RemoteReply | None:
    """This request's reply, or None for anything else on its topic (junk there is the
    broker ACL's concern). A reply to this request in a shape this center does not read
    (an agent of another version) is said as such, not left to look like silence."""
    raw = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
    try:
        reply = RemoteReply.model_validate_json(raw)
    except ValidationError as exc:
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if isinstance(data, dict) and data.get("request_id") == request_id:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PollFailed(
                "incompatible",
                f"the agent's reply does not match this center's contract ({where}: "
                f"{first['msg']}): are the agent and the center of different versions?",
            ) from None
        return None
    return reply if reply.request_id == request_id else None


# --- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `relay-center poll`."""
    parser.add_argument("site")
    parser.add_argument("device")
    parser.add_argument("--gateway", help="the gateway serving the device")
    parser.add_argument("--what", choices=WHAT_CHOICES, default="all")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait")
    parser.add_argument("--json", action="store_true", help="the reply as JSON, for scripts")
    parser.add_argument("--token-file", help="file holding the token (else $RELAY_POLL_TOKEN)")
    parser.add_argument("--actor", default=None, help="who asks (default: your user name)")
    parser.add_argument("--broker-host", default=None, help="default: center config or 127.0.0.1")
    parser.add_argument("--broker-port", type=int, default=None)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        return Path(args.token_file).read_text().strip() or None
    return os.environ.get("RELAY_POLL_TOKEN") or None


def run(
    args: argparse.Namespace,
    broker: BrokerSettings | None = None,
    resolve_gateway: Callable[[str, str], str | None] | None = None,
) -> int:
    """Run the command. The center CLI passes `broker` from its config and, once the
    inventory knows which gateway serves a device, `resolve_gateway(site, device)`."""
    broker = broker or BrokerSettings()
    if args.broker_host or args.broker_port:
        broker = replace(
            broker, host=args.broker_host or broker.host, port=args.broker_port or broker.port
        )
    gateway = args.gateway or (resolve_gateway(args.site, args.device) if resolve_gateway else None)
    if not gateway:
        return _fail(f"which gateway serves {args.site}/{args.device}? pass --gateway", EXIT_USAGE)
    try:
        token = _token(args)
    except OSError as exc:
        return _fail(f"cannot read the token file: {exc}", EXIT_USAGE)
    if not token:
        return _fail("no token: pass --token-file or set RELAY_POLL_TOKEN", EXIT_USAGE)
    try:
        reply = asyncio.run(
            remote_poll(
                broker,
                site=args.site,
                gateway_id=gateway,
                device=args.device,
                what=args.what,
                token=token,
                actor=args.actor or getpass.getuser(),
                timeout_s=args.timeout,
            )
        )
    except PollFailed as exc:
        return _fail(str(exc), EXIT_UNREACHABLE if exc.code == "no_reply" else EXIT_FAILED)
    if args.json:
        sys.stdout.write(reply.model_dump_json(indent=2) + "\n")
    if reply.answer is None:
        return _fail(f"{gateway}: {reply.code}: {reply.error}", EXIT_FAILED)
    if not args.json:
        sys.stdout.write("\n".join(render_answer(reply.answer)) + "\n")
    problem = verdict(reply.answer)
    return _fail(problem, EXIT_FAILED) if problem else EXIT_OK


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"relay-center poll: {message}\n")
    return code
