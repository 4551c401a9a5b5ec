"""`relay-center poll SITE DEVICE`: ask the agent that serves a relay to read it now.

The center publishes one request to the agent's request topic and waits, bounded, for
the reply on a topic only that request uses (contract: docs/polling.md, agent side in
agent/remote.py):

    relay-rpc/v1/{site}/{gateway_id}/request               center -> agent
    relay-rpc/v1/{site}/{gateway_id}/reply/{request_id}    agent  -> center

Requests and replies are deliberately outside `relay/v1/#`, which the center's ingest
parses as records. The token never goes on a command line (ps shows those): it comes
from a file or the `RELAY_POLL_TOKEN` environment variable.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

RPC_ROOT = "relay-rpc/v1"
WHAT_CHOICES = ("identity", "events", "settings", "status", "all")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_OFFLINE = 0, 1, 2, 3


class RemotePollError(Exception):
    """The request could not be made or got no answer."""


class AgentOffline(RemotePollError):
    """No reply within the timeout."""


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
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        ctx.check_hostname = self.check_hostname
        return ctx


def request_topic(site: str, gateway_id: str) -> str:
    return f"{RPC_ROOT}/{site}/{gateway_id}/request"


def reply_topic(site: str, gateway_id: str, request_id: str) -> str:
    return f"{RPC_ROOT}/{site}/{gateway_id}/reply/{request_id}"


async def remote_poll(
    broker: BrokerSettings,
    *,
    site: str,
    gateway_id: str,
    device: str,
    what: str,
    token: str,
    actor: str,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Send one poll request and return the agent's reply: `{"ok": true, "answer": …}` or
    `{"ok": false, "code": …, "error": …}` (a refusal is an answer, not an exception).

    Raises `AgentOffline` when no reply comes within `timeout_s`, `RemotePollError`
    when the broker cannot be reached."""
    if what not in WHAT_CHOICES:
        raise ValueError(f"what must be one of {', '.join(WHAT_CHOICES)} (got {what!r})")
    request_id = uuid.uuid4().hex
    replies = reply_topic(site, gateway_id, request_id)
    request = {
        "v": 1,
        "request_id": request_id,
        "actor": actor,
        "token": token,
        "device": device,
        "what": what,
        "reply_to": replies,
        "timeout_s": timeout_s,
    }
    client = aiomqtt.Client(
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
            await client.subscribe(replies, qos=1)  # before the request: no race
            await client.publish(
                request_topic(site, gateway_id), json.dumps(request).encode(), qos=1
            )
            try:
                async with asyncio.timeout(timeout_s):
                    async for message in client.messages:
                        reply = _decode(message.payload)
                        if reply is not None and reply.get("request_id") == request_id:
                            return reply
            except TimeoutError:
                raise AgentOffline(
                    f"agent {gateway_id} at site {site} did not answer within "
                    f"{timeout_s:g} s: offline?"
                ) from None
    except aiomqtt.MqttError as exc:
        raise RemotePollError(f"broker {broker.host}:{broker.port}: {exc}") from None
    raise RemotePollError("the broker connection ended before a reply")


def _decode(payload: Any) -> dict[str, Any] | None:
    try:
        data = json.loads(bytes(payload) if isinstance(payload, bytes | bytearray) else payload)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `relay-center poll`."""
    parser.add_argument("site")
    parser.add_argument("device")
    parser.add_argument("--gateway", help="the gateway serving the device")
    parser.add_argument("--what", choices=WHAT_CHOICES, default="all")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")
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
        broker = BrokerSettings(
            host=args.broker_host or broker.host,
            port=args.broker_port or broker.port,
            username=broker.username,
            password=broker.password,
            ca_file=broker.ca_file,
            cert_file=broker.cert_file,
            key_file=broker.key_file,
            check_hostname=broker.check_hostname,
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
    except AgentOffline as exc:
        return _fail(str(exc), EXIT_OFFLINE)
    except RemotePollError as exc:
        return _fail(str(exc), EXIT_FAILED)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(reply, indent=2) + "\n")
    elif reply.get("ok"):
        out.write("\n".join(render_answer(reply["answer"])) + "\n")
    if not reply.get("ok"):
        return _fail(f"{gateway}: {reply.get('code')}: {reply.get('error')}", EXIT_FAILED)
    return EXIT_OK


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"relay-center poll: {message}\n")
    return code


def render_answer(answer: dict[str, Any]) -> list[str]:
    """Readable text: a header, then each part as indented `key  value` lines."""
    lines = [
        f"{answer.get('device')} on {answer.get('gateway_id')} ({answer.get('site')}): "
        f"{answer.get('what')}, polled {answer.get('polled_at')} in {answer.get('duration_s')} s"
    ]
    for kind, part in (answer.get("result") or {}).items():
        lines += ["", kind, *_lines(part, "  ")]
    for kind, err in (answer.get("errors") or {}).items():
        lines += ["", f"{kind}: FAILED ({err.get('code')}): {err.get('error')}"]
    return lines


def _lines(value: Any, indent: str) -> list[str]:
    if isinstance(value, dict):
        out: list[str] = []
        width = max((len(str(k)) for k in value), default=0)
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out += [f"{indent}{key}", *_lines(item, indent + "  ")]
            else:
                out.append(f"{indent}{key!s:<{width}}  {item}")
        return out
    if isinstance(value, list):
        return [f"{indent}- {json.dumps(v) if isinstance(v, dict | list) else v}" for v in value]
    return [f"{indent}{value}"]
