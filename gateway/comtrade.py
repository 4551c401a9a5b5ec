"""IEEE C37.111-2013 (IEC 60255-24) COMTRADE: a pure writer and reader of binary `.cfg` + `.dat`.

The agent writes a disturbance record as COMTRADE before sending it, so the center, any
engineer's viewer and any later tool read the same two files; the center reads them back
for its fault analysis. Both sides import this one module. No I/O: bytes in, bytes out.

What is written (C37.111-2013 clause 6 for the `.cfg`, 7.4 for the binary `.dat`):

- `.cfg` lines: `station_name,rec_dev_id,2013`; `TT,##A,##D`; one line per analog channel
  `An,ch_id,ph,ccbm,uu,a,b,skew,min,max,primary,secondary,PS`; one per status channel
  `Dn,ch_id,ph,ccbm,y` (`ccbm` carries the point's protocol address, e.g. `128/69`);
  `lf`; `nrates` = 1 and `samp,endsamp`; the first sample's and the trigger's time
  stamps `dd/mm/yyyy,hh:mm:ss.ssssss`; `BINARY`; `timemult` = 1; `time_code,local_code`
  = `0,0` (times are UTC); `tmq_code,leapsec` = `0,0`.
- `.dat`, per sample, little-endian: sample number (uint32, from 1), time stamp (uint32,
  µs from the first sample), one int16 per analog channel, then the status channels
  packed 16 per uint16 word, channel 1 in bit 0.
- Scaling: a value in the channel's unit is `a * raw + b`. `a` is the channel's primary
  units per raw count (so `PS` is `P`), `b` is 0. The raw int16 -32768 (0x8000) means
  "missing" in binary COMTRADE, so raw samples are limited to -32767..32767.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

REV_YEAR = "2013"
RAW_MIN, RAW_MAX = -32767, 32767


class ComtradeError(ValueError):
    """Content that is not COMTRADE this module can write or read."""


@dataclass(frozen=True, slots=True)
class AnalogTrace:
    name: str
    unit: str
    phase: str  # "A", "B", "C", "N" or ""
    a: float  # primary units per raw count
    b: float
    primary: float
    secondary: float
    samples: tuple[int, ...]  # raw

    def values(self) -> list[float]:
        """The samples in the channel's unit (primary)."""
        return [self.a * x + self.b for x in self.samples]


@dataclass(frozen=True, slots=True)
class DigitalTrace:
    """A status channel: its state at the first sample and every change, as (index, state)."""

    name: str
    initial: bool
    changes: tuple[tuple[int, bool], ...] = ()
    ccbm: str = ""  # circuit component being monitored: here the point's protocol address

    def first_set(self) -> int | None:
        """Index of the first sample at which the channel is set."""
        if self.initial:
            return 0
        return next((i for i, state in self.changes if state), None)


@dataclass(frozen=True, slots=True)
class Record:
    station: str
    device: str
    start_time: datetime  # aware: the first sample
    trigger_time: datetime  # aware
    sample_rate_hz: float
    line_frequency_hz: float
    analog: tuple[AnalogTrace, ...]
    digital: tuple[DigitalTrace, ...] = ()

    @property
    def samples(self) -> int:
        return len(self.analog[0].samples) if self.analog else 0

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate_hz if self.sample_rate_hz else 0.0


# --- writing ---------------------------------------------------------------------------


def _text(value: str) -> str:
    """A cfg field: commas and line breaks would split the line."""
    return value.replace(",", " ").replace("\r", " ").replace("\n", " ")


def _stamp(when: datetime) -> str:
    t = when.astimezone(UTC)
    return t.strftime("%d/%m/%Y,%H:%M:%S.") + f"{t.microsecond:06d}"


def _number(x: float) -> str:
    return repr(float(x)) if x != int(x) or abs(x) >= 1e15 else str(int(x)) + ".0"


def _states(trace: DigitalTrace, count: int) -> list[bool]:
    states = []
    current, changes, j = trace.initial, sorted(trace.changes), 0
    for i in range(count):
        while j < len(changes) and changes[j][0] <= i:
            current = changes[j][1]
            j += 1
        states.append(current)
    return states


def write(record: Record) -> tuple[bytes, bytes]:
    """The record as (`.cfg`, `.dat`) bytes. Raises ComtradeError on content it cannot hold."""
    n = record.samples
    if not record.analog:
        raise ComtradeError("a record needs at least one analog channel")
    if record.sample_rate_hz <= 0:
        raise ComtradeError(f"sample rate must be positive (found: {record.sample_rate_hz})")
    for ch in record.analog:
        if len(ch.samples) != n:
            raise ComtradeError(f"channel {ch.name}: {len(ch.samples)} samples, expected {n}")
        bad = next((x for x in ch.samples if not RAW_MIN <= x <= RAW_MAX), None)
        if bad is not None:
            raise ComtradeError(f"channel {ch.name}: raw sample {bad} outside -32767..32767")
    na, nd = len(record.analog), len(record.digital)
    lines = [
        f"{_text(record.station)},{_text(record.device)},{REV_YEAR}",
        f"{na + nd},{na}A,{nd}D",
    ]
    for i, ch in enumerate(record.analog, 1):
        lines.append(
            f"{i},{_text(ch.name)},{_text(ch.phase)},,{_text(ch.unit)},{ch.a!r},{ch.b!r},0,"
            f"{RAW_MIN},{RAW_MAX},{ch.primary!r},{ch.secondary!r},P"
        )
    lines += [f"{i},{_text(ch.name)},,{_text(ch.ccbm)},0" for i, ch in enumerate(record.digital, 1)]
    lines += [
        _number(record.line_frequency_hz),
        "1",
        f"{_number(record.sample_rate_hz)},{n}",
        _stamp(record.start_time),
        _stamp(record.trigger_time),
        "BINARY",
        "1",
        "0,0",
        "0,0",
    ]
    cfg = ("\r\n".join(lines) + "\r\n").encode("latin-1", errors="replace")
    return cfg, _dat(record)


def _dat(record: Record) -> bytes:
    n, words = record.samples, (len(record.digital) + 15) // 16
    row = struct.Struct(f"<II{len(record.analog)}h{words}H")
    columns = [ch.samples for ch in record.analog]
    status_words: list[list[int]] = [[0] * n for _ in range(words)]
    for c, trace in enumerate(record.digital):
        word, bit = divmod(c, 16)
        for i, state in enumerate(_states(trace, n)):
            if state:
                status_words[word][i] |= 1 << bit
    step_us = 1e6 / record.sample_rate_hz
    out = bytearray()
    for i in range(n):
        out += row.pack(
            i + 1,
            round(i * step_us),
            *(col[i] for col in columns),
            *(w[i] for w in status_words),
        )
    return bytes(out)


# --- reading ---------------------------------------------------------------------------


def _parse_stamp(line: str, where: str) -> datetime:
    try:
        date, clock = (part.strip() for part in line.split(","))
        day, month, year = (int(x) for x in date.split("/"))
        hms, _, frac = clock.partition(".")
        hour, minute, second = (int(x) for x in hms.split(":"))
        micro = int((frac + "000000")[:6]) if frac else 0
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise ComtradeError(f"cfg {where}: not dd/mm/yyyy,hh:mm:ss.ssssss: {line!r}") from exc


def read(cfg: bytes, dat: bytes) -> Record:
    """Parse a binary COMTRADE record this module (or a 1999/2013 writer using one sample
    rate) wrote. Raises ComtradeError naming the line or offset at fault."""
    try:
        return _read(cfg.decode("latin-1").splitlines(), dat)
    except (IndexError, ValueError, struct.error) as exc:
        if isinstance(exc, ComtradeError):
            raise
        raise ComtradeError(f"cfg: not a C37.111 configuration ({exc})") from exc


def _read(lines: list[str], dat: bytes) -> Record:
    station, device, *_ = lines[0].split(",")
    _total, na_text, nd_text = lines[1].split(",")
    na, nd = int(na_text.strip().rstrip("Aa")), int(nd_text.strip().rstrip("Dd"))
    analog_lines = lines[2 : 2 + na]
    digital_lines = lines[2 + na : 2 + na + nd]
    rest = lines[2 + na + nd :]
    line_frequency = float(rest[0])
    if int(rest[1]) != 1:
        raise ComtradeError(f"cfg: {rest[1]} sample rates; only one is supported")
    rate_text, end_text = rest[2].split(",")
    rate, count = float(rate_text), int(end_text)
    start = _parse_stamp(rest[3], "first sample time")
    trigger = _parse_stamp(rest[4], "trigger time")
    if rest[5].strip().upper() != "BINARY":
        raise ComtradeError(f"cfg: data file type {rest[5]!r}; only BINARY is supported")
    if not (math.isfinite(rate) and rate > 0):
        raise ComtradeError(f"cfg: sample rate must be a positive number (found: {rate})")
    words = (nd + 15) // 16
    row = struct.Struct(f"<II{na}h{words}H")
    if len(dat) != row.size * count:
        raise ComtradeError(
            f"dat: {len(dat)} bytes, expected {count} samples of {row.size} = {row.size * count}"
        )
    rows = list(row.iter_unpack(dat))
    analog = []
    for c, line in enumerate(analog_lines):
        f = line.split(",")
        a, b, primary, secondary = (float(x or 0) for x in (f[5], f[6], f[10], f[11]))
        if not all(math.isfinite(x) for x in (a, b, primary, secondary)):
            raise ComtradeError(f"cfg: channel {c + 1}: a, b, primary, secondary must be finite")
        samples = tuple(r[2 + c] for r in rows)
        analog.append(AnalogTrace(f[1], f[4], f[2], a, b, primary, secondary, samples))
    digital = []
    for c, line in enumerate(digital_lines):
        word, bit = divmod(c, 16)
        states = [bool(r[2 + na + word] >> bit & 1) for r in rows]
        changes = tuple((i, states[i]) for i in range(1, len(states)) if states[i] != states[i - 1])
        f = line.split(",")
        ccbm = f[3].strip() if len(f) > 3 else ""
        digital.append(DigitalTrace(f[1], bool(states and states[0]), changes, ccbm))
    return Record(
        station=station,
        device=device,
        start_time=start,
        trigger_time=trigger,
        sample_rate_hz=rate,
        line_frequency_hz=line_frequency,
        analog=tuple(analog),
        digital=tuple(digital),
    )


def sample_time(record: Record, index: int) -> datetime:
    return record.start_time + timedelta(seconds=index / record.sample_rate_hz)
