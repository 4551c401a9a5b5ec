"""Ties each ASDU's commit to what the APDU guard may confirm to the relay.

Why: waiting for each commit before reading on (one commit round trip per ASDU) capped one
link at a few hundred events per second. Instead each ASDU's objects are submitted to the
outbox without waiting, and the relay's acknowledgement is held in the guard: when the
commit returns, the ASDU's token is reported durable (`ApduGuard.durable_through`), and
only then may an N(R) covering its frame leave the agent. The outbox commits in submission
order, so one reported token covers every ASDU submitted before it.

A failed commit cuts the guard on the spot (the outbox's writer thread runs each ASDU's
callbacks in commit order, and settles refused appends before it commits the rest of their
group, e.g. an empty barrier), before any later commit could be reported; a cut guard
ignores reports and sends nothing, so nothing at or after the failed ASDU is ever
confirmed, and the relay sends it again on the next connection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from protocols.driver import ObservationSink, submitter
from protocols.iec104.guard import ApduGuard
from protocols.observations import Observation, PointObservation

log = logging.getLogger(__name__)

Done = Callable[[BaseException | None], None]
Post = Callable[[Sequence[Observation], Done, float], None]  # ..., commit within (s)

# What a relay's frames may wait for others to share their commit, while the relay can
# still send (fewer than w of its frames unconfirmed): a relay sending a few events a
# second then costs the outbox one commit per 10 ms for all of them, not one per 2 ms. Once
# w are unconfirmed (the relay would soon stop, at k) the frame commits at once.
COMMIT_WITHIN_S = 0.01


def poster(sink: ObservationSink) -> Post:
    """The sink's `post` (the pipeline's: no Future per ASDU), else its `submit` (or
    `deliver_blocking`, `submitter`) with `done` called from the future."""
    post: Any = getattr(sink, "post", None)
    if callable(post):
        return post  # type: ignore[no-any-return]
    submit = submitter(sink)

    def via_future(observations: Sequence[Observation], done: Done, _: float) -> None:
        submit(observations).add_done_callback(lambda future: done(future.exception()))

    return via_future


class DurableAcks:
    def __init__(
        self,
        name: str,
        guard: ApduGuard,
        post: Post,
        on_failure: Callable[[str], None],
    ) -> None:
        self.name = name
        self.guard = guard
        self._post = post
        self._on_failure = on_failure  # the link's loop learns the sink failed

    def hand_on(self, observations: list[PointObservation], token: int, urgent: bool) -> None:
        """From the guard loop's thread: the objects of one read's ASDUs to the outbox, committed
        at once if `urgent` (the relay waits on them), else within `COMMIT_WITHIN_S`. Also
        with none (all consumed), so their token is reported in order."""
        within = 0.0 if urgent else COMMIT_WITHIN_S
        self._post(observations, functools.partial(self._committed, token), within)

    def _committed(self, token: int, error: BaseException | None) -> None:
        """On the outbox's writer thread (at once for a sink without `submit`). Never
        blocks: the guard's own thread sends the confirmation."""
        if error is not None:
            detail = f"{type(error).__name__}: {error}"
            self.guard.cut(f"observation sink failed: {detail}")
            log.error("device %s: could not store a received ASDU: %s", self.name, detail)
            self._on_failure(detail)
        else:
            self.guard.durable_through(token)
