"""Remote on-demand polls: the center asks this agent, over MQTT, to read a relay.

The topics, the request and the reply are the contract in `gateway/rpc.py`, which the
center imports too (`center/remote_poll.py`); requests and replies are not records.

Rules, each for a reason:
- Off unless `[remote] enabled`; then only requests with a token from `tokens_file`
  (compared in constant time over every entry) are served. A refusal is answered and
  audited, so an operator sees probing.
- Read-only: only the poll kinds exist here (`identity|events|settings|status|all`); any
  other `what` is refused. There is no path from a request to a device write.
- `reply_to` must be this gateway's own reply topic for that request id: a request
  cannot make the agent publish anywhere else (the broker's ACL says the same).
- Bounded: a small queue and a few workers; when full, the request is answered `busy`.
  Each poll has a time budget a little under the center's own wait, so the center gets
  a `timeout` answer rather than silence.
- Tokens are re-read when the file changes (revoke without a restart); a file that
  becomes unreadable refuses everything (fail closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import aiomqtt
from pydantic import ValidationError

from agent.ondemand.audit import clip
from common.errors import ConfigError
from gateway.rpc import (
    REQUEST_ID,
    WHAT_CHOICES,
    ErrorCode,
    PollAnswer,
    PollFailed,
    PollReply,
    RemoteReply,
    RemoteRequest,
    reply_topic,
    request_topic,
)

if TYPE_CHECKING:
    from agent.config import RemoteConfig
    from agent.ondemand.audit import Auditor

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
REPLY_MARGIN = 0.8  # of the center's wait: answer "timeout" before the center gives up


# --- tokens ------------------------------------------------------------------------------


def parse_tokens(text: str, file: str) -> dict[str, str]:
    """`name:token` per line, `#` comments. Returns {token: name}."""
    tokens: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not re.match(r"^[A-Za-z0-9_.@-]{1,64}$", name):
            problems.append(f"line {number}: expected 'name:token' (found a line without one)")
        elif len(token) < MIN_TOKEN_CHARS:
            problems.append(
                f"line {number}: token of {name!r} is too short "
                f"(expected at least {MIN_TOKEN_CHARS} characters)"
            )
        else:
            tokens[token] = name
    if problems:
        raise ConfigError(file, problems)
    if not tokens:
        raise ConfigError(file, ["no tokens: expected at least one 'name:token' line"])
    return tokens


class TokenStore:
    """The accepted tokens, re-read when the file's mtime changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._tokens: dict[str, str] = {}
        self.load()

    def load(self) -> None:
        """Raises ConfigError (unreadable or invalid file)."""
        try:
            st = self.path.stat()
            text = self.path.read_text()
        except OSError as exc:
            raise ConfigError(str(self.path), [f"cannot read the tokens file ({exc})"]) from None
        self._tokens = parse_tokens(text, str(self.path))
        self._stamp = (st.st_mtime_ns, st.st_size)
        if st.st_mode & 0o007:
            log.warning("tokens file %s is readable by others: chmod 0640", self.path)

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            if (st.st_mtime_ns, st.st_size) == self._stamp:
                return
            self.load()
            log.info("tokens file %s re-read: %d tokens", self.path, len(self._tokens))
        except (OSError, ConfigError) as exc:
            log.error("tokens file %s unusable, refusing all remote requests: %s", self.path, exc)
            self._tokens, self._stamp = {}, None

    def authorise(self, token: str) -> str | None:
        """The token's name, or None. Compares digests against every entry, so neither
        the position of a match nor a token's length shows in the timing."""
        self._refresh()
        given = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for known, name in self._tokens.items():
            if hmac.compare_digest(given, hashlib.sha256(known.encode()).digest()):
                found = name
        return found


# --- the service -------------------------------------------------------------------------


class Polls(Protocol):
    """What the workers need of the daemon's poll service (`OnDemand`)."""

    default_timeout_s: float

    def configured(self, device: str) -> bool: ...

    async def poll(
        self,
        device: str,
        what: str,
        *,
        actor: str,
        origin: Literal["local", "remote"],
        timeout_s: float | None = None,
    ) -> PollAnswer: ...


class Replies(Protocol):
    """Where replies go: the uplink that delivered the request (`Uplink.publish_direct`)."""

    async def publish_direct(self, topic_name: str, payload: bytes) -> bool: ...


@dataclass(frozen=True)
class _Job:
    request: RemoteRequest
    replies: Replies


class RemotePolls:
    """Receives requests (an uplink subscription handler), serves them with a few
    workers owned by the daemon's TaskGroup, and publishes the replies through the
    uplink that delivered the request."""

    def __init__(
        self,
        site: str,
        gateway_id: str,
        tokens: TokenStore,
        auditor: Auditor,
        *,
        max_concurrent: int = 4,
        max_queued: int = 16,
    ) -> None:
        self.site = site
        self.gateway_id = gateway_id
        self.tokens = tokens
        self.auditor = auditor
        self.max_concurrent = max_concurrent
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(max_queued)

    @property
    def topic(self) -> str:
        return request_topic(self.site, self.gateway_id)

    async def on_message(self, message: aiomqtt.Message, replies: Replies) -> None:
        """Uplink handler: validate and queue; never block the uplink's dispatch loop."""
        payload = message.payload
        raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
        try:
            request = RemoteRequest.model_validate_json(raw)
        except ValidationError as exc:
            await self._reject_malformed(raw, exc, replies)
            return
        own = reply_topic(self.site, self.gateway_id, request.request_id)
        if request.reply_to != own:
            log.warning(
                "remote request %s: reply_to %r refused", request.request_id, request.reply_to
            )
            await self._reply(replies, request, _refusal("bad_request", f"reply_to must be {own}"))
            return
        try:
            self._queue.put_nowait(_Job(request, replies))
        except asyncio.QueueFull:
            await self._reply(
                replies, request, _refusal("busy", f"agent {self.gateway_id} is busy: try again")
            )

    async def _reject_malformed(self, raw: bytes, exc: ValidationError, replies: Replies) -> None:
        """Answer when we can tell where to; never audit unauthenticated junk (it would
        let anyone fill the outbox), just log it."""
        log.warning("remote request malformed: %s", clip(str(exc).splitlines()[0]))
        try:
            data = json.loads(raw)
        except ValueError:
            return
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if isinstance(request_id, str) and re.match(REQUEST_ID, request_id):
            topic = reply_topic(self.site, self.gateway_id, request_id)
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            body = _refusal("bad_request", f"{where}: {first['msg']}")
            await _publish(replies, topic, self._envelope(request_id, body))

    async def run(self, polls: Polls) -> None:
        """The workers, serving requests with `polls`; started by the daemon, cancelled
        with it."""
        log.info("remote polls enabled on %s", self.topic)
        async with asyncio.TaskGroup() as tg:
            for n in range(self.max_concurrent):
                tg.create_task(self._worker(polls), name=f"remote-poll-{n}")

    async def _worker(self, polls: Polls) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._reply(job.replies, job.request, await self.serve(job.request, polls))
            except Exception:  # one bad request never stops the workers
                log.exception("remote request %s failed", job.request.request_id)
            finally:
                self._queue.task_done()

    async def serve(self, request: RemoteRequest, polls: Polls) -> PollReply:
        """Authorise, check it is a read, poll; the reply body (without the envelope)."""
        known = request.device if polls.configured(request.device) else None
        name = self.tokens.authorise(request.token)
        if name is None:
            log.warning(
                "remote request %s from %r: token refused", request.request_id, request.actor
            )
            await self.auditor.record(
                actor=f"{request.actor} (token refused)",
                origin="remote",
                action="poll",
                device=known,
                what=request.what,
                result="refused",
                error="token not accepted",
            )
            return _refusal(
                "refused", f"refused: agent {self.gateway_id} does not accept this token"
            )
        actor = f"{request.actor} (token {name})"
        if request.what not in WHAT_CHOICES:
            await self.auditor.record(
                actor=actor,
                origin="remote",
                action="poll",
                device=known,
                what=request.what,
                result="refused",
                error="only read requests are served",
            )
            return _refusal(
                "refused", f"refused: only reads ({', '.join(WHAT_CHOICES)}) are served"
            )
        budget = min(polls.default_timeout_s, request.timeout_s * REPLY_MARGIN)
        try:
            answer = await polls.poll(
                request.device, request.what, actor=actor, origin="remote", timeout_s=budget
            )
        except PollFailed as exc:
            return PollReply.failed(exc)
        return PollReply.answered(answer)

    def _envelope(self, request_id: str, body: PollReply) -> bytes:
        reply = RemoteReply(
            request_id=request_id,
            site=self.site,
            gateway_id=self.gateway_id,
            **body.model_dump(),
        )
        return reply.model_dump_json().encode()

    async def _reply(self, replies: Replies, request: RemoteRequest, body: PollReply) -> None:
        topic = reply_topic(self.site, self.gateway_id, request.request_id)
        await _publish(replies, topic, self._envelope(request.request_id, body))


async def _publish(replies: Replies, topic: str, payload: bytes) -> None:
    try:
        sent = await replies.publish_direct(topic, payload)
    except aiomqtt.MqttError as exc:
        log.warning("reply on %s lost: %s", topic, exc)
        return
    if not sent:
        log.warning("reply on %s dropped: broker not connected", topic)


def _refusal(code: ErrorCode, message: str) -> PollReply:
    return PollReply.failed(PollFailed(code, message))


def remote_tokens(config: RemoteConfig) -> TokenStore | None:
    """The accepted tokens when `[remote] enabled`, else None. Raises ConfigError for a
    missing or invalid tokens file: the daemon reads it before any port opens."""
    if not config.enabled:
        return None
    assert config.tokens_file is not None  # the config model guarantees it
    return TokenStore(config.tokens_file)
