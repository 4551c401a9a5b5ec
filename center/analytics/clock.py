"""Clock quality of one relay, from what its events say. Pure: no I/O, no wall clock.

offset = device time - gateway receive time, for spontaneous events only (an
interrogated or buffered event reports an old change, not the clock now). The transport
delay from relay to gateway is milliseconds, small against the offsets that matter.

- Samples: at most one per `min_spacing_s` per relay (a burst of 200 events is one
  reading of the clock), kept for `window_s`, at most `max_samples`.
- Figures: p50 (median, signed) and p95 of |offset| over the window; drift per day is the
  least-squares slope of offset against time (needs an hour of samples).
- The relay's own flags: a time tag marked invalid (104 CP56 IV, 103 IV) says the relay
  knows its clock is not set; a substituted tag (104) was not made by the relay's clock,
  so it is counted but is no reading of it. A 103 relay answers a time sync with its
  time: an answer marked invalid means it did not take the sync. A tag marked summer time
  (SU, CP56Time2a / 103 CP56) is a valid reading of a clock that stamps local summer time
  instead of standard time or UTC: it is counted and said in the reason, never a fault by
  itself; the hour it adds to the offset is judged like any other offset.
- Verdict, from the newest evidence: `invalid` (newest timed event marked invalid),
  `unsynchronised` (newest 103 sync answer invalid), `offset` (|median of the newest
  `judge_samples` samples| > threshold), `good`, or `unknown` (too few samples). The
  judge looks at the newest samples so a relay set right again is seen as good soon,
  while the window's figures still show its history.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

from center.analytics.config import ClockConfig

SPONTANEOUS = "spontaneous"
TIME_SYNC = "time_sync"
BAD = ("invalid", "unsynchronised", "offset")
RECENT_FLAGS = 50


# (gateway time, device time, flags, sync answer): ClockReading, or a plain tuple at ingest
Reading = tuple[datetime, datetime | None, Sequence[str], bool]


class ClockReading(NamedTuple):
    """One event's time evidence: when the gateway made the record, the relay's time tag
    and its flags; `sync_answer` for a 103 relay's answer to a time sync. A named tuple:
    one is made per spontaneous event at ingest, where every microsecond counts."""

    gateway_at: datetime
    device_at: datetime | None
    flags: Sequence[str] = ()
    sync_answer: bool = False


@dataclass
class ClockState:
    site: str
    device_id: str
    gateway_id: str
    samples: list[tuple[float, float]] = field(default_factory=list)  # (epoch s, offset ms)
    recent_flags: str = ""  # newest last: v valid, u valid on summer time, i invalid, s subst.
    timed_events: int = 0
    invalid_events: int = 0
    substituted_events: int = 0
    summer_time_events: int = 0
    last_event_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_sync_valid: bool | None = None
    verdict: str = "unknown"
    bad: bool = False
    summary: str = "no spontaneous event with a device time yet"


@dataclass(frozen=True)
class ClockFigures:
    sample_count: int
    p50_ms: float | None
    p95_abs_ms: float | None
    drift_ms_per_day: float | None


def fold(state: ClockState, readings: Sequence[Reading], cfg: ClockConfig) -> ClockState:
    """The state after these readings (in any order; applied oldest first). Runs at
    ingest for every spontaneous event: datetimes are compared, and turned into numbers
    only for the readings kept as samples."""
    st = replace(state, samples=list(state.samples))
    samples = st.samples
    spacing = timedelta(seconds=cfg.min_spacing_s)
    due = datetime.fromtimestamp(samples[-1][0], UTC) + spacing if samples else None
    codes = []
    timed = 0
    ordered = sorted(readings, key=itemgetter(0))
    for gateway_at, device_at, flags, sync_answer in ordered:
        if sync_answer:
            st.last_sync_at = gateway_at
            st.last_sync_valid = "invalid" not in flags
            continue
        if device_at is None:
            continue
        timed += 1
        summer = bool(flags) and "summer_time" in flags
        st.summer_time_events += summer
        if flags and "invalid" in flags:
            st.invalid_events += 1
            codes.append("i")
        elif flags and "substituted" in flags:
            st.substituted_events += 1
            codes.append("s")
        else:
            codes.append("u" if summer else "v")
            if due is None or gateway_at >= due:
                offset = (device_at - gateway_at).total_seconds() * 1000
                samples.append((gateway_at.timestamp(), round(offset, 3)))
                due = gateway_at + spacing
    if timed:
        st.timed_events += timed
        st.last_event_at = next(r[0] for r in reversed(ordered) if r[1] is not None and not r[3])
    st.recent_flags = (st.recent_flags + "".join(codes[-RECENT_FLAGS:]))[-RECENT_FLAGS:]
    if samples:
        horizon = samples[-1][0] - cfg.window_s
        st.samples = [x for x in samples if x[0] >= horizon][-cfg.max_samples :]
    return st


def figures(state: ClockState) -> ClockFigures:
    offsets = [o for _, o in state.samples]
    if not offsets:
        return ClockFigures(0, None, None, None)
    p50 = statistics.median(offsets)
    absolute = sorted(abs(o) for o in offsets)
    p95 = absolute[min(len(absolute) - 1, int(0.95 * len(absolute)))]
    return ClockFigures(len(offsets), round(p50, 1), round(p95, 1), drift_per_day(state.samples))


def drift_per_day(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of offset (ms) against time, per day; None under an hour."""
    if len(samples) < 3 or samples[-1][0] - samples[0][0] < 3600:
        return None
    t0 = samples[0][0]
    xs = [(t - t0) / 86_400 for t, _ in samples]
    ys = [o for _, o in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var, 1)


def _ms(value: float) -> str:
    return f"{value / 1000:+.2f} s" if abs(value) >= 10_000 else f"{value:+.0f} ms"


def stamps_summer_time(recent_flags: str) -> bool:
    """The relay's newest timed event is a valid one stamped local summer time (SU)."""
    return recent_flags.endswith("u")


def judge(state: ClockState, cfg: ClockConfig) -> tuple[str, str]:
    """(verdict, the reason in numbers); a relay stamping summer time is said so, whatever
    the verdict, and never changes it."""
    verdict, why = _judge(state, cfg)
    if stamps_summer_time(state.recent_flags):
        why += (
            f"; stamps local summer time (SU): {state.summer_time_events} of its "
            f"{state.timed_events} timed events"
        )
    return verdict, why


def _judge(state: ClockState, cfg: ClockConfig) -> tuple[str, str]:
    if state.recent_flags.endswith("i"):
        share = state.recent_flags.count("i")
        return "invalid", (
            f"the relay marks its clock invalid (IV) on its newest event; {share} of its last "
            f"{len(state.recent_flags)} timed events were marked invalid"
        )
    if state.last_sync_valid is False:
        return "unsynchronised", "the relay's answer to the last time sync is marked invalid"
    newest = [o for _, o in state.samples[-cfg.judge_samples :]]
    if len(state.samples) < cfg.min_samples:
        return "unknown", (
            f"{len(state.samples)} clock reading(s), {cfg.min_samples} needed for a verdict"
        )
    median = statistics.median(newest)
    figs = figures(state)
    detail = (
        f"median offset {_ms(median)} over the newest {len(newest)} spontaneous events "
        f"(threshold {cfg.threshold_ms:.0f} ms; window p50 {_ms(figs.p50_ms or 0)}, "
        f"p95 |offset| {_ms(figs.p95_abs_ms or 0).lstrip('+')}"
        + (f", drift {figs.drift_ms_per_day:+.0f} ms/day" if figs.drift_ms_per_day else "")
        + ")"
    )
    if abs(median) > cfg.threshold_ms:
        hint = ""
        if abs(abs(median) - 3_600_000) < 120_000 and not stamps_summer_time(state.recent_flags):
            hint = "; about one hour: a relay on local (summer) time?"
        return "offset", detail + hint
    return "good", detail


def evaluate(state: ClockState, cfg: ClockConfig) -> tuple[ClockState, bool | None]:
    """Judge the state; returns it with verdict and summary set, and True when it turned
    bad, False when it turned good, None when nothing changed for tickets. `unknown`
    never clears a bad clock: only evidence of a good one does."""
    verdict, why = judge(state, cfg)
    st = replace(state, verdict=verdict, summary=why)
    change: bool | None = None
    if verdict in BAD and not state.bad:
        st.bad, change = True, True
    elif verdict == "good" and state.bad:
        st.bad, change = False, False
    return st, change
