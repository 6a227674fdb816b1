"""Read the time column of an event log: datetimes, ISO-8601 and other date text, epoch numbers
of any unit, or plain period numbers.

Times come out as float64 seconds since the Unix epoch (UTC) for calendar time, or as the period
number. Whatever cannot be read is counted (missing, unparseable); what would silently give a
wrong answer stops with an :class:`InputError` that shows example values and the option to use:

- text that is mostly not a date, or that reads day-first and month-first alike
  (``01/02/2025``): name the format with ``--time-format`` (strftime codes, as in
  ``pandas.to_datetime(format=...)``);
- common unambiguous formats are recognised without it: ``31/01/2025`` (day-first, because some
  day is above 12), ``2025/01/31``, ``31.01.2025``, ``Jan 31, 2025``, ``31-Jan-2025``, each with
  or without a time of day, and RFC 2822 (``Tue, 31 Jan 2025 10:00:00 +0100``);
- epoch numbers are read by their size, so a column mixing epoch seconds with milliseconds (or
  micro-, nanoseconds) is read right and said so in a note;
- dates outside pandas' nanosecond range (years 1600, 2300) are kept: the axis is float seconds;
  only times outside the years 1-9999 are unparseable.

Everything is vectorised: detection looks at a sample of at most :data:`SAMPLE` values, then the
chosen format parses the whole column once.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from journeymodel.data import compute as pc
from journeymodel.data.arrow_numpy import flags, floats, scalar, texts, values
from journeymodel.errors import InputError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: How many values format detection looks at.
SAMPLE = 2000
#: Seconds of 0001-01-01 and of 9999-12-31T23:59:59 (the range Python dates and pandas can show).
MIN_SECONDS, MAX_SECONDS = -62135596800.0, 253402300799.0
#: Epoch numbers are read by size: below 1e11 seconds (up to year 5138), below 1e14
#: milliseconds, below 1e17 microseconds, else nanoseconds. Each unit covers 1973..5138.
_EPOCH_UNITS = ((1e11, 1.0, "seconds"), (1e14, 1e-3, "milliseconds"),
                (1e17, 1e-6, "microseconds"), (np.inf, 1e-9, "nanoseconds"))
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}

_DAY_FIRST = ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d/%m/%y", "%d.%m.%y")
_MONTH_FIRST = ("%m/%d/%Y", "%m-%d-%Y", "%m/%d/%y", "%m.%d.%Y")
_YEAR_FIRST = ("%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")
_NAMED = ("%d %b %Y", "%d-%b-%Y", "%b %d %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y",
          "%d-%b-%y")
_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f", "T%H:%M:%S", "T%H:%M", " %I:%M %p",
          " %I:%M:%S %p", " %H:%M:%S %z", " %H:%M:%S%z")
#: Candidate formats, in the order ties are broken.
FORMATS = tuple(d + t for d in _YEAR_FIRST + _DAY_FIRST + _MONTH_FIRST + _NAMED
                for t in _TIMES) + ("%a, %d %b %Y %H:%M:%S %z", "%a, %d %b %Y %H:%M:%S")
_SWAP = {"%d": "%m", "%m": "%d"}


class TimeColumn:
    """A parsed time column: ``time`` (float64), ``kind`` (``"datetime"`` or ``"period"``),
    ``missing`` and ``bad`` masks, ``notes`` for the ledger and ``alerts`` worth a warning."""

    __slots__ = ("time", "kind", "missing", "bad", "notes", "alerts", "fmt")

    def __init__(self, time, kind, missing, bad, notes=None, alerts=None, fmt=None):
        self.time, self.kind, self.missing, self.bad = time, kind, missing, bad
        self.notes = list(notes or [])
        self.alerts = list(alerts or [])
        self.fmt = fmt  # the strftime format the text was read with (None: ISO-8601, numbers)


def parse_times(arr: pa.ChunkedArray, kind: str = "auto", time_format: str | None = None, *,
                source: str | None = None, column: str | None = None) -> TimeColumn:
    """Parse a time column (see the module docstring); ``kind`` is ``--timestamps``."""
    t = arr.type
    n = len(arr)
    if pa.types.is_dictionary(t):
        arr, t = pc.cast(arr, t.value_type), t.value_type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if kind in ("period", "epoch"):
            raise OptionError(f"--timestamps {kind} given, but the time column holds dates")
        return _typed_times(arr)
    if pa.types.is_null(t):
        return TimeColumn(np.full(n, np.nan), "period", np.ones(n, bool), np.zeros(n, bool))
    if (pa.types.is_integer(t) or pa.types.is_floating(t)) and time_format is None:
        vals = floats(arr)
        return numeric_times(vals, kind, np.isnan(vals), np.zeros(n, bool), source, column)
    s = arr if pa.types.is_string(t) or pa.types.is_large_string(t) else pc.cast(arr, pa.string())
    s = pc.utf8_trim_whitespace(s)
    missing = flags(pc.or_kleene(pc.is_null(s), pc.equal(s, scalar("", s.type))))
    numbers = time_format is None and kind in ("auto", "epoch", "period") or kind in (
        "epoch", "period")
    fast = _read_by_arrow(s, missing, numbers,
                          time_format is None and kind not in ("epoch", "period"))
    if fast is not None:
        if fast.dtype == np.float64:  # numbers: each one read, as pandas reads them
            return numeric_times(fast, kind, missing, ~missing & np.isnan(fast), source,
                                 column)
        return TimeColumn(fast, "datetime", missing, np.zeros(n, bool))
    import pandas as pd  # other text: format detection and parsing by pandas

    text = pd.Series(texts(s), dtype=object)
    if time_format is None and kind in ("auto", "epoch", "period") and _looks_numeric(
            text[~missing]) or kind in ("epoch", "period"):
        vals = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        return numeric_times(vals, kind, missing, ~missing & np.isnan(vals), source, column)
    notes = []
    fmt = time_format
    if fmt is None:
        fmt, notes = detect_format(text, missing, source=source, column=column)
    secs, bad = _parse_text(text, fmt, missing)
    _check_mostly_read(text, missing, bad, fmt, time_format is not None, source, column)
    return TimeColumn(secs, "datetime", missing, bad, notes, fmt=fmt)


def _read_by_arrow(s: pa.ChunkedArray, missing: np.ndarray, numbers: bool,
                   iso: bool) -> np.ndarray | None:
    """Text times that Arrow reads whole, without pandas: with ``numbers``, every present
    value a number (float64: what ``pd.to_numeric`` reads, zeros as +0); else, with ``iso``,
    every present value an ISO-8601 datetime, all with a UTC offset or none (naive times are
    UTC), within 1677-2262 (seconds as float64, ``datetime64[ns]`` precision, NaN where
    missing): the values pandas reads with ``format="ISO8601", utc=True``, for a subset of
    the text it reads. ``None`` when some value is not read so (or is blank): pandas decides.
    """
    if missing.all() or int(np.count_nonzero(missing)) != s.null_count:
        return None
    if numbers:
        try:
            vals = floats(pc.cast(s, pa.float64()))
        except pa.ArrowInvalid:
            pass  # not every value a number (ISO dates are none)
        else:
            vals += 0.0  # zeros as +0 (as pandas reads "-0" in a column of integers)
            return vals
    if not iso:
        return None
    for target in (pa.timestamp("ns", "UTC"), pa.timestamp("ns")):
        try:
            ns = pc.cast(pc.cast(s, target), pa.int64())
        except pa.ArrowInvalid:
            continue
        secs = _seconds_of_ns(ns, len(s))
        secs[missing] = np.nan
        return secs
    return None


def _typed_times(arr: pa.ChunkedArray) -> TimeColumn:
    """Arrow timestamps or dates: nanoseconds when they fit (exact, as before), else the
    column's own unit (years 1600, 2300)."""
    n = len(arr)
    secs = _seconds_of_timestamps(arr, n)
    if secs is not None:  # no nulls, every value in nanoseconds' range
        return TimeColumn(secs, "datetime", np.zeros(n, bool), np.zeros(n, bool))
    missing = np.zeros(n, bool) if arr.null_count == 0 else flags(pc.is_null(arr))
    try:
        secs = _seconds_of_ns(pc.cast(pc.cast(arr, pa.timestamp("ns")), pa.int64()), n)
    except pa.ArrowInvalid:  # outside 1677-2262: read in the column's own unit
        t = arr.type
        if pa.types.is_date32(t):
            secs = floats(pc.cast(arr, pa.int32())) * 86400.0
        elif pa.types.is_date64(t):
            secs = floats(pc.cast(arr, pa.int64())) / 1e3
        else:
            secs = floats(pc.cast(arr, pa.int64())) / _PER_SECOND[t.unit]
        bad = ~missing & ~((secs >= MIN_SECONDS) & (secs <= MAX_SECONDS))
        return TimeColumn(np.where(missing | bad, np.nan, secs), "datetime", missing, bad)
    if missing.any():
        secs[missing] = np.nan
    return TimeColumn(secs, "datetime", missing, np.zeros(n, bool))


#: Rows :func:`_seconds_of_timestamps` converts at a time (its scratch stays in the cache).
_BLOCK = 1 << 16


def _seconds_of_timestamps(arr: pa.ChunkedArray, n: int) -> np.ndarray | None:
    """What :func:`_seconds_of_ns` gives for the column cast to ``timestamp("ns")`` (the same
    bits: each value times its unit's nanoseconds as int64, divided by 1e9), for a timestamp
    column without nulls, read from the column's own buffers by blocks: no arrays for the two
    casts (8M rows: 128 MB of fresh memory, and their passes). ``None`` when the column has
    nulls, is not of timestamps, or holds a value beyond nanoseconds' range (the casts then
    decide)."""
    t = arr.type
    if not pa.types.is_timestamp(t) or arr.null_count:
        return None
    factor = 10**9 // _PER_SECOND[t.unit]
    limit = (2**63 - 1) // factor
    secs = np.empty(n, np.float64)
    scratch = np.empty(min(_BLOCK, n), np.int64)
    at = 0
    for chunk in arr.chunks:
        v = values(chunk)  # the stored int64, no copy
        if len(v) and (int(v.min()) < -limit or int(v.max()) > limit):
            return None
        for a in range(0, len(v), _BLOCK):
            b = min(a + _BLOCK, len(v))
            if factor == 1:
                np.divide(v[a:b], 1e9, out=secs[at + a:at + b])
            else:
                np.multiply(v[a:b], factor, out=scratch[:b - a])
                np.divide(scratch[:b - a], 1e9, out=secs[at + a:at + b])
        at += len(v)
    return secs


def _seconds_of_ns(ns: pa.ChunkedArray | pa.Array, n: int) -> np.ndarray:
    """``ns.to_numpy().astype(np.float64) / 1e9`` chunk by chunk into one array (no combined
    int64 copy, no second float array; np.divide converts then divides: the same bits).
    Null slots hold whatever the buffer holds; the caller overwrites them."""
    chunks = ns.chunks if isinstance(ns, pa.ChunkedArray) else [ns]
    secs = np.empty(n, np.float64)
    at = 0
    for chunk in chunks:
        m = len(chunk)
        if m:
            if chunk.buffers()[1] is None:  # an all-null chunk may come without values
                secs[at:at + m] = np.nan
            else:
                values = np.frombuffer(chunk.buffers()[1], np.int64)[chunk.offset:
                                                                     chunk.offset + m]
                np.divide(values, 1e9, out=secs[at:at + m])
        at += m
    return secs


def _looks_numeric(sample: pd.Series) -> bool:
    import pandas as pd

    head = sample.iloc[:2000]
    if head.empty:
        return False
    return bool(pd.to_numeric(head, errors="coerce").notna().mean() > 0.5)


def numeric_times(vals: np.ndarray, kind: str, missing: np.ndarray, bad: np.ndarray,
                  source: str | None = None, column: str | None = None) -> TimeColumn:
    """Numbers as periods or epoch times (``auto``: epoch when some value is above 1e8).

    Epoch values are read by their size (:data:`_EPOCH_UNITS`); when the column mixes units, a
    note says how many values were read in each, with an example row of each.
    """
    finite = np.isfinite(vals)
    bad = bad | (~missing & ~finite & ~np.isnan(vals))  # inf, -inf
    top = float(np.max(np.abs(vals[finite]))) if finite.any() else 0.0
    if kind == "auto" and _yyyymmdd(vals[finite]):
        import pandas as pd

        text = pd.Series(np.where(finite, vals, 0).astype(np.int64).astype(str), dtype=object)
        secs, unread = _parse_text(text, "%Y%m%d", missing | ~finite)
        where = f"column {column!r}" if column else "the time column"
        return TimeColumn(secs, "datetime", missing, bad | unread,
                          [f"{where} holds numbers like {_show(vals[finite][0])}: read as dates "
                           "with the format '%Y%m%d' (set --timestamps period for plain period "
                           "numbers)"])
    if kind == "period" or (kind == "auto" and top <= 1e8):
        return TimeColumn(np.where(bad, np.nan, vals), "period", missing, bad)
    mag = np.abs(np.where(finite, vals, 0.0))
    unit = np.searchsorted(np.array([u[0] for u in _EPOCH_UNITS]), mag, side="right")
    used = np.bincount(unit[finite], minlength=len(_EPOCH_UNITS))
    scale = np.array([u[1] for u in _EPOCH_UNITS])
    notes = []
    if np.count_nonzero(used) == 1:
        secs = vals * scale[int(np.argmax(used))]
    else:
        secs = vals * scale[unit]
        parts = []
        for u in np.flatnonzero(used):
            row = int(np.argmax(finite & (unit == u)))
            parts.append(f"{used[u]:,} in {_EPOCH_UNITS[u][2]} (e.g. row {row + 1}: "
                         f"{_show(vals[row])})")
        where = f"column {column!r}" if column else "the time column"
        notes.append(f"{where} mixes epoch units: " + ", ".join(parts)
                     + "; each value was read by its size")
    out = ~missing & finite & ~((secs >= MIN_SECONDS) & (secs <= MAX_SECONDS))
    bad = bad | out
    return TimeColumn(np.where(bad, np.nan, secs), "datetime", missing, bad, notes, notes)


def _yyyymmdd(vals: np.ndarray) -> bool:
    """Every number is a whole date written as yyyymmdd between 1900 and 2100 (no period
    numbering reaches 19000101)."""
    if vals.size == 0 or vals.min() < 19000101 or vals.max() > 21001231:
        return False
    if not np.array_equal(vals, np.floor(vals)):
        return False
    v = vals.astype(np.int64)
    month, day = v // 100 % 100, v % 100
    return bool(np.all((month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)))


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _parse_text(text: pd.Series, fmt: str | None, missing: np.ndarray):
    """Seconds (NaN where missing or bad) and the bad mask; ``fmt`` None means ISO-8601."""
    import pandas as pd

    dt = pd.to_datetime(text, format=fmt or "ISO8601", utc=True, errors="coerce")
    na = dt.isna().to_numpy()
    bad = ~missing & na
    try:
        ns = dt.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        secs = np.where(missing | bad, np.nan, ns / 1e9)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):  # outside 1677-2262
        secs = np.where(na, np.nan, dt.array.asi8 / _PER_SECOND[dt.dtype.unit])
    return secs, bad


def _sample(values: pd.Series, missing: np.ndarray) -> pd.Series:
    """Up to :data:`SAMPLE` present values, evenly spread (no copy of the whole column)."""
    if len(values) > 4 * SAMPLE:
        pos = np.linspace(0, len(values) - 1, 4 * SAMPLE).astype(np.int64)
        pos = pos[~missing[pos]]
        if len(pos) >= SAMPLE // 4:
            return values.iloc[pos[np.linspace(0, len(pos) - 1, min(SAMPLE, len(pos)))
                                   .astype(np.int64)]].reset_index(drop=True)
    present = values[~missing].reset_index(drop=True)
    if len(present) <= SAMPLE:
        return present
    return present.iloc[np.linspace(0, len(present) - 1, SAMPLE).astype(np.int64)]


def _fraction_read(sample: pd.Series, fmt: str | None) -> float:
    import pandas as pd

    dt = pd.to_datetime(sample, format=fmt or "ISO8601", utc=True, errors="coerce")
    return float(dt.notna().mean())


def detect_format(values: pd.Series, missing: np.ndarray | None = None, *, source=None,
                  column=None) -> tuple[str | None, list]:
    """The format of date text: ``None`` for ISO-8601, else one of :data:`FORMATS`.

    ``values`` is the column as text, ``missing`` marks its blank cells (default: none).

    Returns the format and notes. Raises :class:`InputError` when the text reads day-first and
    month-first alike; text that fits no format is left to the caller's check (most values
    unreadable: an error naming ``--time-format``).
    """
    if missing is None:
        missing = np.asarray(values.isna(), bool)
    sample = _sample(values, missing)
    if sample.empty or _fraction_read(sample, None) >= 0.5:
        return None, []
    head = [str(v) for v in sample.iloc[:20]]
    scores = {fmt: _fraction_read(sample, fmt) for fmt in FORMATS if _screen(head, fmt)}
    if not scores or max(scores.values()) < 0.5:
        return None, []
    best = max(scores.values())
    fits = [f for f in FORMATS if scores.get(f, 0.0) == best]
    fmt = fits[0]
    swapped = _swap_day_month(fmt)
    if swapped in fits:
        fmt = _day_or_month_first(values[~missing], fmt, swapped, source=source,
                                  column=column)
    where = f"column {column!r}" if column else "the time column"
    return fmt, [f"{where} read with the format {fmt!r} (detected; set --time-format to "
                 "change it)"]


def _screen(values: list[str], fmt: str) -> bool:
    """Does ``fmt`` read at least half of a few values? (``datetime.strptime``: microseconds
    per value, where each pandas call costs a fraction of a millisecond.)"""
    ok = 0
    for v in values:
        try:
            datetime.strptime(v, fmt)
            ok += 1
        except ValueError:
            pass
    return 2 * ok >= len(values)


def _swap_day_month(fmt: str) -> str:
    return re.sub(r"%[dm]", lambda m: _SWAP[m.group(0)], fmt)


def _day_or_month_first(values: pd.Series, fmt: str, swapped: str, *, source, column) -> str:
    """Both orders read the sample: decide on the whole column by a day above 12."""
    s = pa.array(values.to_numpy(dtype=object), pa.string())
    parts = pc.extract_regex(s, r"^\D*(?P<a>\d{1,2})\D(?P<b>\d{1,2})\D")
    a = floats(pc.cast(pc.struct_field(parts, "a"), pa.int32()))
    b = floats(pc.cast(pc.struct_field(parts, "b"), pa.int32()))
    a_big, b_big = bool(np.nanmax(np.where(np.isnan(a), 0, a)) > 12), bool(
        np.nanmax(np.where(np.isnan(b), 0, b)) > 12)
    day_first = fmt if fmt.index("%d") < fmt.index("%m") else swapped
    month_first = swapped if day_first == fmt else fmt
    if a_big and not b_big:
        return day_first
    if b_big and not a_big:
        return month_first
    examples = values.drop_duplicates().iloc[:2].tolist()
    shown = " and ".join(repr(x) for x in examples)
    raise InputError(
        f"dates such as {shown} read day-first and month-first alike; give the format with "
        f"--time-format {day_first!r} (day first) or --time-format {month_first!r} "
        "(month first)", source=source, column=column)


def _check_mostly_read(text, missing, bad, fmt, given, source, column) -> None:
    """Stop when more than half of the present timestamps cannot be read."""
    present = int(np.count_nonzero(~missing))
    n_bad = int(np.count_nonzero(bad))
    if present == 0 or n_bad * 2 <= present:
        return
    rows = np.flatnonzero(bad)[:2]
    shown = ", ".join(f"row {r + 1}: {text.iloc[r]!r}" for r in rows)
    how = (f"with --time-format {fmt!r}" if given
           else "as dates (ISO-8601 or a common format)")
    hint = ("check the format (strftime codes, as in pandas.to_datetime)" if given else
            "give their format with --time-format, e.g. --time-format '%d/%m/%Y %H:%M' "
            "(strftime codes, as in pandas.to_datetime)")
    raise InputError(f"{n_bad:,} of {present:,} timestamps cannot be read {how} "
                     f"(e.g. {shown}); {hint}", source=source, column=column)


def parse_time_point(text: str | float, time_kind: str, what: str,
                     time_format: str | None = None) -> float:
    """Parse a single time (``--observed-until``) into the table's time axis."""
    import pandas as pd

    if time_kind == "datetime":
        try:
            ts = (pd.to_datetime(text, format=time_format) if time_format and isinstance(
                text, str) and _fits(text, time_format) else pd.Timestamp(text))
        except (ValueError, TypeError, OverflowError):
            raise OptionError(f"{what} must be a date like 2025-06-30 (got {text!r})") from None
        if ts is pd.NaT:
            raise OptionError(f"{what} must be a date like 2025-06-30 (got {text!r})")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return float(ts.timestamp())
    try:
        return float(text)
    except (TypeError, ValueError):
        raise OptionError(f"{what} must be a period number for this log (got {text!r})") from None


def to_timestamp(seconds: float) -> pd.Timestamp:
    """A UTC :class:`pandas.Timestamp` for any time this module returns (years 1-9999; by way
    of microseconds: ``pd.Timestamp(s, unit="s")`` refuses some floats near 2262)."""
    import pandas as pd

    return pd.Timestamp(int(round(seconds * 1e6)), unit="us", tz="UTC")


def _fits(text: str, fmt: str) -> bool:
    import pandas as pd

    return pd.to_datetime(pd.Series([text]), format=fmt, errors="coerce").notna().all()
