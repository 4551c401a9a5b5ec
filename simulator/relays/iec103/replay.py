"""Replaying a recorded disturbance: a COMTRADE record (as the agent wrote it and
`relay-center incident export` saved it beside a scenario) turned back into what a
simulated IEC 103 relay serves (ASDUs 26-31), so that a replayed incident gives the
master the record the field relay gave.

The conversion inverts what the master and the agent did (`protocols/iec103/
disturbance_record.py`, `agent/disturbance.py`):

- channel names back to actual channels (ACC): `IA IB IC IN UA UB UC UN` are ACC 1-8,
  `ACC<n>` is ACC n, any other name a private ACC from 64 on;
- raw samples as they are (the `.dat` keeps the relay's single disturbance values);
- RPV and RSV are the cfg's primary and secondary values, and RFA comes back from the
  channel's scaling `a` = RPV / (RSV x RFA), i.e. RFA = RPV / (RSV x a); on the wire RFA
  is an R32, so the relay sends the very RFA it first sent;
- tags from the status channels: the point's `<fun>/<inf>` from the channel's ccbm (where
  the agent writes it), else from its name (an address, or a point of the relay's
  profile);
- the sampling interval from the sample rate; the time of the first sample keeps its
  distance to the trigger.

Pure apart from `load_record`, which reads the two files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gateway import comtrade
from protocols.iec103.disturbance_record import STANDARD_CHANNELS
from simulator.waveforms import ACC_PRIVATE, SynthChannel, SynthRecord, SynthTag

ACC_BY_NAME = {name: acc for acc, (name, _unit, _phase) in STANDARD_CHANNELS.items()}
_ACC_NAME = re.compile(r"^ACC(\d{1,3})$")
_POINT_NAME = re.compile(r"^(\d{1,3})/(\d{1,3})$")


class ReplayError(ValueError):
    """A COMTRADE record an IEC 103 relay cannot serve as it is."""


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """A record to announce again: what the relay serves and where its trigger lies."""

    synth: SynthRecord
    pre_trigger: timedelta  # from the first sample to the trigger

    def first_sample(self, trigger: datetime) -> datetime:
        return trigger - self.pre_trigger


def load_record(cfg: Path, dat: Path, addresses: Mapping[str, str] | None = None) -> ReplayRecord:
    """Read and convert one record; errors name the file."""
    try:
        record = comtrade.read(cfg.read_bytes(), dat.read_bytes())
        return replay_record(record, addresses)
    except (OSError, comtrade.ComtradeError, ReplayError) as exc:
        raise ReplayError(f"{cfg}: {exc}") from exc


def replay_record(
    record: comtrade.Record, addresses: Mapping[str, str] | None = None
) -> ReplayRecord:
    """`addresses`: the relay profile's point names to their addresses, for status
    channels that carry no address."""
    addresses = addresses or {}
    interval_us = round(1e6 / record.sample_rate_hz)
    if not 1 <= interval_us <= 0xFFFF:
        raise ReplayError(
            f"sample rate {record.sample_rate_hz} Hz: the interval must be 1-65535 µs "
            "(ASDU 26 carries it as a 16-bit number)"
        )
    if record.samples > 0xFFFF:
        raise ReplayError(f"{record.samples} samples: ASDU 26 counts at most 65535")
    accs = _accs(record)
    analog = tuple(_channel(trace, acc) for trace, acc in zip(record.analog, accs, strict=True))
    pre_trigger = record.trigger_time - record.start_time
    inception = round(pre_trigger.total_seconds() * record.sample_rate_hz)
    return ReplayRecord(
        SynthRecord(
            interval_us=interval_us,
            samples=record.samples,
            inception_index=max(0, min(inception, record.samples - 1)),
            analog=analog,
            tags=tuple(_tag(trace, addresses) for trace in record.digital),
        ),
        pre_trigger,
    )


def _accs(record: comtrade.Record) -> list[int]:
    named: list[int | None] = []
    for trace in record.analog:
        match = _ACC_NAME.match(trace.name)
        named.append(ACC_BY_NAME.get(trace.name) or (int(match[1]) if match else None))
    taken = {acc for acc in named if acc is not None}
    free = (acc for acc in range(ACC_PRIVATE, 256) if acc not in taken)
    out = [acc if acc is not None else next(free, 0) for acc in named]
    if 0 in out or len(set(out)) != len(out) or max(out) > 255:
        raise ReplayError(f"channels {[t.name for t in record.analog]}: no distinct ACC 1-255")
    return out


def _channel(trace: comtrade.AnalogTrace, acc: int) -> SynthChannel:
    if trace.b != 0:
        raise ReplayError(f"channel {trace.name}: offset b = {trace.b}; IEC 103 has none")
    if trace.a == 0 or trace.primary == 0 or trace.secondary == 0:
        raise ReplayError(
            f"channel {trace.name}: a, primary and secondary must not be 0 "
            f"(found: {trace.a}, {trace.primary}, {trace.secondary})"
        )
    reference = trace.primary / (trace.secondary * trace.a)
    return SynthChannel(acc, trace.name, trace.primary, trace.secondary, reference, trace.samples)


def _tag(trace: comtrade.DigitalTrace, addresses: Mapping[str, str]) -> SynthTag:
    """The point a status channel shows: its address in ccbm, else the name itself as an
    address, else the name as a point of the relay's profile."""
    for address in (trace.ccbm, trace.name, addresses.get(trace.name, "")):
        match = _POINT_NAME.match(address)
        if match is not None and int(match[1]) <= 255 and int(match[2]) <= 255:
            return SynthTag(int(match[1]), int(match[2]), trace.initial, trace.changes)
    raise ReplayError(
        f"status channel {trace.name!r}: expected a '<fun>/<inf>' address in its ccbm or "
        "name, or the name of a point of the relay's profile"
    )
