"""Read and validate event logs; account for every row in a :class:`Ledger`.

An event log is a table with one row per event (see ``design.md``): who (``customer_id``), when
(``timestamp``), what (``touchpoint``: a channel, or an outcome label such as ``conversion``), and
optionally ``persona``, ``value``, ``sentiment`` and ``device``. :func:`read_events` reads CSV (any
delimiter), Parquet or a pandas DataFrame into an :class:`EventTable` of normalised numpy arrays,
and records in the ledger why each dropped row was dropped.

Everything is vectorised with pyarrow and numpy; nothing loops over rows in Python.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeymodel.data.datachecks import infer_sentiment_scale, outlying_end
from journeymodel.data.ordering import _duplicates, _sort_order, customer_time_order
from journeymodel.data.readers import read_table
from journeymodel.data.timestamps import parse_time_point, parse_times, to_timestamp
from journeymodel.errors import DataWarning, InputError, OptionError

__all__ = ["DROP_REASONS", "DataWarning", "EventTable", "Ledger", "ReadOptions",
           "customer_time_order", "events_from_table", "normalise_sentiment", "parse_gap",
           "parse_time_point", "read_events", "read_table"]

#: Reasons a row can be dropped, in the order the ledger reports them.
DROP_REASONS = (
    "missing_customer",
    "missing_timestamp",
    "bad_timestamp",
    "missing_touchpoint",
    "after_observed_until",
    "duplicate",
    "bad_path",
    "bad_count",
)
#: Reasons that are errors under ``strict=True`` (the others are documented, intended drops).
_INVALID = {"missing_customer", "missing_timestamp", "bad_timestamp", "missing_touchpoint",
            "bad_path", "bad_count"}
_REASON_TEXT = {
    "missing_customer": "missing customer id",
    "missing_timestamp": "missing timestamp",
    "bad_timestamp": "unparseable timestamp",
    "missing_touchpoint": "missing touchpoint",
    "after_observed_until": "after --observed-until",
    "duplicate": "exact duplicate",
    "bad_path": "empty path",
    "bad_count": "bad or negative count",
}
TimestampKind = Literal["auto", "datetime", "epoch", "period"]


@dataclass(frozen=True)
class ReadOptions:
    """How to read an event log: column names, outcome labels and journey segmentation.

    Every command that reads an event log takes exactly these options.

    Parameters
    ----------
    customer_col, time_col, touchpoint_col : str
        Required columns.
    persona_col, value_col, sentiment_col, device_col : str or None
        Optional columns. ``None`` means "use the default name if the column exists"; a name given
        explicitly must exist.
    conversion_labels : tuple of str
        Touchpoint values that mark a conversion (end of a journey).
    churn_label : str
        Touchpoint value that marks a churn.
    gap : str, float or None
        Inactivity gap that ends a journey: ``"auto"`` (30 days for calendar timestamps, none for
        period numbers), ``"none"``, a pandas offset such as ``"30D"`` or ``"12h"``, or a number
        (seconds for calendar timestamps, periods otherwise).
    observed_until : str, float or None
        End of observation. Later rows are dropped (and counted). Default: the last timestamp.
    strict : bool
        Raise :class:`InputError` at the first invalid row instead of dropping it.
    sep : str or None
        CSV delimiter; auto-detected when ``None``.
    timestamps : {"auto", "datetime", "epoch", "period"}
        How to read the time column. ``auto``: datetimes, ISO-8601 text and common date formats
        are datetimes; numbers above 1e8 are epoch times, read by size (below 1e11 seconds,
        then milliseconds, microseconds, nanoseconds), and smaller numbers are plain ordered
        periods (1, 2, 3, ...). See :mod:`journeymodel.data.timestamps`.
    sentiment_scale : tuple of float or None
        ``(min, max)`` of the sentiment scale; scores are mapped linearly to -1..1. Default:
        inferred from the bulk of the scores (1-5, 0-10, -1..1, ...; see
        :func:`journeymodel.data.datachecks.infer_sentiment_scale`), scores outside it counted as
        invalid.
    time_format : str or None
        strftime format of date text (``"%d/%m/%Y %H:%M"``), as in
        ``pandas.to_datetime(format=...)``. Default: ISO-8601 or a detected common format.
    config_path : str or None
        The config file these options were read from (set by the CLI; see
        :mod:`journeymodel.data.config`), None when there was none.
    """

    customer_col: str = "customer_id"
    time_col: str = "timestamp"
    touchpoint_col: str = "touchpoint"
    persona_col: str | None = None
    value_col: str | None = None
    sentiment_col: str | None = None
    device_col: str | None = None
    conversion_labels: tuple[str, ...] = ("conversion",)
    churn_label: str = "churn"
    gap: str | float | None = "auto"
    observed_until: str | float | None = None
    strict: bool = False
    sep: str | None = None
    timestamps: TimestampKind = "auto"
    sentiment_scale: tuple[float, float] | None = None
    time_format: str | None = None
    config_path: str | None = None

    def replace(self, **changes: Any) -> ReadOptions:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Ledger:
    """Where every input row went: ``rows_read == rows_used + sum(dropped.values())``.

    ``invalid_fields`` counts optional fields (value, sentiment) that could not be read: their row
    is kept, the field is treated as missing. The ledger holds counts only, never customer ids, so
    it is safe to store inside shareable model files.
    """

    source: str
    rows_read: int = 0
    rows_used: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    invalid_fields: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def check(self) -> None:
        """Raise AssertionError if rows are unaccounted for (an internal bug, not a user error)."""
        if self.rows_read != self.rows_used + self.rows_dropped:
            raise AssertionError(
                f"ledger does not add up: read {self.rows_read}, used {self.rows_used}, "
                f"dropped {self.rows_dropped}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_dropped": {k: self.dropped[k] for k in DROP_REASONS if k in self.dropped},
            "invalid_fields": dict(self.invalid_fields),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ledger:
        return cls(
            source=d.get("source", "?"),
            rows_read=int(d.get("rows_read", 0)),
            rows_used=int(d.get("rows_used", 0)),
            dropped={k: int(v) for k, v in d.get("rows_dropped", {}).items()},
            invalid_fields={k: int(v) for k, v in d.get("invalid_fields", {}).items()},
            notes=list(d.get("notes", [])),
        )

    def summary_line(self) -> str:
        """``dropped D of R rows: ...; invalid fields in kept rows: ...`` (one line)."""
        parts = [f"{n:,} {_REASON_TEXT.get(r, r)}" for r, n in self.dropped.items()]
        text = (f"dropped {self.rows_dropped:,} of {self.rows_read:,} rows" if self.dropped
                else f"kept all {self.rows_read:,} rows")
        text += (": " + ", ".join(parts)) if parts else ""
        if self.invalid_fields:
            text += "; invalid fields in kept rows: " + ", ".join(
                f"{n:,} {k}" for k, n in self.invalid_fields.items())
        return text


@dataclass(frozen=True)
class EventTable:
    """Validated events as numpy arrays, one entry per kept row, sorted by customer and time.

    Rows of one customer are contiguous and in time order (ties keep the input order).

    Codes index the vocabularies (``-1`` means missing). ``time`` is float64: seconds since the
    Unix epoch (UTC) when ``time_kind == "datetime"``, the period number when ``"period"``.
    """

    customer: np.ndarray  # (n,) int64 codes into customers
    customers: np.ndarray  # (n_customers,) str
    time: np.ndarray  # (n,) float64
    time_kind: str
    touchpoint: np.ndarray  # (n,) int32 codes into labels
    labels: tuple[str, ...]  # touchpoint labels, outcome labels included
    persona: np.ndarray  # (n,) int32, -1 missing
    personas: tuple[str, ...]
    value: np.ndarray  # (n,) float64, NaN missing
    sentiment: np.ndarray | None  # (n,) float64 in -1..1, NaN unscored
    device: np.ndarray | None  # (n,) int32, -1 missing
    devices: tuple[str, ...]
    row: np.ndarray  # (n,) int64 0-based input row; rows are sorted by customer, time, row
    observed_until: float
    ledger: Ledger


# ---------------------------------------------------------------------------------------------
# Column helpers


def _resolve_columns(table: pa.Table, name: str, o: ReadOptions) -> dict[str, str | None]:
    have = table.column_names
    cols: dict[str, str | None] = {}
    required = {"customer": (o.customer_col, "--customer-col"), "time": (o.time_col, "--time-col"),
                "touchpoint": (o.touchpoint_col, "--touchpoint-col")}
    for key, (col, flag) in required.items():
        if col not in have:
            raise InputError(
                f"missing required column {col!r}; the columns are {have}; "
                f"map one with {flag} NAME",
                source=name,
            )
        cols[key] = col
    optional = {"persona": (o.persona_col, "persona", "--persona-col"),
                "value": (o.value_col, "value", "--value-col"),
                "sentiment": (o.sentiment_col, "sentiment", "--sentiment-col"),
                "device": (o.device_col, "device", "--device-col")}
    for key, (col, default, flag) in optional.items():
        if col is not None and col not in have:
            raise InputError(
                f"column {col!r} given by {flag} does not exist; the columns are {have}",
                source=name,
            )
        cols[key] = col if col is not None else (default if default in have else None)
    return cols


def _check_kinds(table: pa.Table, cols: dict[str, str | None], name: str) -> pa.Table:
    """Columns of a kind no event field can hold (lists, structs, maps: Parquet or Arrow input)
    are an InputError naming the column; binary columns are read as UTF-8 text."""
    for key, col in cols.items():
        if col is None:
            continue
        t = table.schema.field(col).type
        base = t.value_type if pa.types.is_dictionary(t) else t
        if pa.types.is_binary(base) or pa.types.is_large_binary(base) or \
                pa.types.is_fixed_size_binary(base):
            try:
                text = pc.cast(table[col].cast(base) if base is not t else table[col],
                               pa.string())
            except pa.ArrowException:
                raise InputError(f"the {key} column holds binary data that is not UTF-8 text",
                                 source=name, column=col) from None
            table = table.set_column(table.schema.get_field_index(col), col, text)
            continue
        if (pa.types.is_nested(base) or pa.types.is_duration(base) or pa.types.is_time(base)
                or pa.types.is_interval(base) or pa.types.is_union(base)):
            raise InputError(f"the {key} column holds values of type {base}; expected text or "
                             "numbers" + (" or dates" if key == "time" else ""),
                             source=name, column=col)
    return table


def _as_string(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_trim_whitespace(arr)


def _encode(arr: pa.ChunkedArray, *, sort: bool = True, dtype=np.int64,
            nul: dict | None = None, key: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Dictionary-encode a column as text: (codes, -1 for null/blank; vocabulary).

    With ``nul`` (sorted columns: touchpoint, persona, device, whose names go into model files),
    NUL characters are removed from the names (netCDF cannot store them; a name that becomes
    blank is missing) and ``nul[key]`` receives the mask of rows that held one.

    Encodes first and cleans only the dictionary: whitespace is trimmed there, values that
    become equal are merged, blanks map to -1. With ``sort`` the vocabulary comes out sorted, so
    codes do not depend on row order (touchpoints, personas); without it (customer ids, up to
    millions) a dictionary that is already clean is used as it is, in first-appearance order
    (codes int64); sorted codes come as ``dtype``.
    """
    enc = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    dictionary = pc.cast(enc.dictionary, pa.string()) if not (
        pa.types.is_string(enc.dictionary.type)) else enc.dictionary
    if not sort and pc.all(pc.equal(pc.utf8_trim_whitespace(dictionary), dictionary)).as_py() \
            and not pc.any(pc.equal(dictionary, "")).as_py():
        codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        return codes, np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=object)
    text = _as_string(pa.chunked_array([enc.dictionary]))
    has_nul = None
    if nul is not None and pc.any(pc.match_substring(text, "\x00")).as_py():
        has_nul = np.append(np.asarray(pc.match_substring(text, "\x00").fill_null(False)
                                       .to_numpy(zero_copy_only=False), bool), False)
        text = pc.utf8_trim_whitespace(pc.replace_substring(text, "\x00", ""))
    raw = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    raw[pd.isna(raw)] = ""
    vocab, remap = np.unique(raw.astype(str), return_inverse=True)
    blank = vocab == ""
    new = np.cumsum(~blank) - 1
    remap = np.append(np.where(blank[remap], -1, new[remap]), -1)  # last slot: null index
    indices = pc.fill_null(enc.indices, len(raw)).to_numpy(zero_copy_only=False)
    if has_nul is not None:
        nul[key] = has_nul[indices]
    codes = remap.astype(dtype)[indices]
    vocab = vocab[~blank].astype(object)
    return codes, vocab


def _compact(codes: np.ndarray, vocab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vocabulary entries no kept row uses; keeps order, -1 stays -1."""
    used = np.zeros(len(vocab) + 1, bool)
    used[codes + 1] = True
    used = used[1:]
    if used.all():
        return codes, vocab
    new = np.cumsum(used) - 1
    return np.where(codes >= 0, new[np.maximum(codes, 0)], -1), vocab[used]


#: Largest magnitude of a value or score read as a number: beyond 1e15 float64 no longer holds
#: cents, and sums of such values overflow; larger numbers are export errors (invalid fields).
MAX_FIELD = 1e15


def _numeric(arr: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column as float64: (values with NaN for missing or invalid, mask of
    present-but-invalid). Text that is not a number, ``inf``, ``-inf``, ``nan`` written out
    and magnitudes above :data:`MAX_FIELD` are invalid; a null (or a float NaN, pandas'
    missing value) is missing."""
    if pa.types.is_decimal(arr.type) or pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.float64())
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        vals = arr.to_numpy().astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(vals) <= MAX_FIELD) & ~np.isnan(vals)
        return (np.where(bad, np.nan, vals) if bad.any() else vals), bad
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), np.zeros(len(arr), bool)
    s = _as_string(arr)
    present = pc.and_(pc.is_valid(s), pc.not_equal(s, "")).to_numpy(zero_copy_only=False)
    present = np.asarray(present, dtype=bool)
    vals = pd.to_numeric(pd.Series(s.to_numpy(zero_copy_only=False)), errors="coerce")
    vals = vals.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.abs(vals) <= MAX_FIELD)
    return np.where(bad, np.nan, vals), bad


def parse_gap(gap: str | float | None, time_kind: str) -> float | None:
    """Normalise ``--gap`` to seconds (calendar time) or periods; ``None`` means no gap."""
    if gap is None:
        return None
    if isinstance(gap, str):
        text = gap.strip().lower()
        if text in ("none", "off", ""):
            return None
        if text == "auto":
            return 30 * 86400.0 if time_kind == "datetime" else None
        try:
            number = float(text)
        except ValueError:
            if time_kind != "datetime":
                raise OptionError(
                    f"--gap {gap!r} is a duration, but the timestamps are plain periods; "
                    "give a number of periods"
                ) from None
            try:
                delta = pd.Timedelta(gap.strip())
            except ValueError:
                raise OptionError(
                    f"--gap must be a duration like 30D, 12h or 90min, a number, or none "
                    f"(got {gap!r})"
                ) from None
            number = delta.total_seconds()
    else:
        number = float(gap)
    if not np.isfinite(number) or number <= 0:
        raise OptionError(f"--gap must be positive (got {gap!r})")
    return number


# ---------------------------------------------------------------------------------------------
# The event table


def read_events(source: str | Path | pd.DataFrame, options: ReadOptions | None = None,
                **overrides: Any) -> EventTable:
    """Read, validate and normalise an event log.

    Parameters
    ----------
    source : path or DataFrame
        CSV (any delimiter, optionally ``.gz``), Parquet, or a pandas DataFrame.
    options : ReadOptions, optional
        Column names, labels and segmentation options; keyword ``overrides`` replace fields.

    Returns
    -------
    EventTable
        Kept rows as arrays, with the :class:`Ledger` of what was dropped and why.

    Raises
    ------
    InputError
        A required column is missing, the log is empty, or (``strict=True``) a row is invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"customer_id": ["a", "a", None], "timestamp": [1, 2, 3],
    ...                    "touchpoint": ["web", "conversion", "email"]})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):  # the drop is also reported as a DataWarning
    ...     t = read_events(df)
    >>> t.ledger.rows_read, t.ledger.rows_used, t.ledger.dropped
    (3, 2, {'missing_customer': 1})
    """
    options = (options or ReadOptions()).replace(**overrides) if overrides else (
        options or ReadOptions())
    table, name = read_table(source, options)
    return events_from_table(table, name, options)


def events_from_table(table: pa.Table, name: str, o: ReadOptions) -> EventTable:
    """Validate an Arrow table of events (see :func:`read_events`)."""
    if table.num_rows == 0:
        raise InputError("the event log has no rows", source=name)
    cols = _resolve_columns(table, name, o)
    table = _check_kinds(table, cols, name)
    ledger = Ledger(source=name, rows_read=table.num_rows)
    alerts: list[str] = []
    nul: dict[str, np.ndarray] = {}
    customer, customers = _encode(table[cols["customer"]], sort=False)
    touchpoint, labels = _encode(table[cols["touchpoint"]], dtype=np.int32, nul=nul,
                                 key="touchpoint")
    times = parse_times(table[cols["time"]], o.timestamps, o.time_format, source=name,
                        column=cols["time"])
    time, time_kind = times.time, times.kind
    ledger.notes.extend(times.notes)
    alerts.extend(times.alerts)
    masks = {
        "missing_customer": customer < 0,
        "missing_timestamp": times.missing,
        "bad_timestamp": times.bad,
        "missing_touchpoint": touchpoint < 0,
    }
    persona, personas = (_encode(table[cols["persona"]], dtype=np.int32, nul=nul,
                                 key="persona") if cols["persona"]
                         else (None, np.array([], dtype=object)))
    value, sentiment, device, devices, field_bad = _optional_fields(table, cols, o, ledger,
                                                                    nul, alerts)
    _check_strict(o, name, table, cols, masks, field_bad)
    n = len(time)
    keep, observed_until = _rows_to_keep(o.replace(time_format=o.time_format or times.fmt),
                                         name, ledger, masks, time, time_kind, alerts)
    idx = np.arange(n) if keep.all() else np.flatnonzero(keep)
    cust_s, time_s = (customer, time) if len(idx) == n else (customer[idx], time[idx])
    order, sorted_cust = _sort_order(cust_s, time_s)
    if order is not None:
        idx = order if len(idx) == n else idx[order]
        cust_s = cust_s[order] if sorted_cust is None else sorted_cust
        time_s = time_s[order]
    dup = _duplicates(idx, cust_s, time_s, touchpoint, persona, value, sentiment, device)
    n_dup = int(np.count_nonzero(dup))
    ledger.drop("duplicate", n_dup)
    if n_dup:
        idx, cust_s, time_s = idx[~dup], cust_s[~dup], time_s[~dup]
    ledger.rows_used = len(idx)
    ledger.check()
    if ledger.rows_used == 0:
        raise InputError(f"no usable rows ({ledger.summary_line()})", source=name)
    _warn(name, ledger, table, cols, field_bad, alerts)
    in_order = order is None and len(idx) == n  # every row kept, in input order: no gathers
    take = (lambda a: a) if in_order else (lambda a: a[idx])  # noqa: E731
    customer, customers = _compact(cust_s, customers)
    touchpoint, labels = _compact(take(touchpoint), labels)
    if persona is not None:
        persona, personas = _compact(take(persona), personas)
    else:  # no column: every row unknown
        persona = np.full(len(idx), -1, np.int32)
    if device is not None:
        device, devices = _compact(take(device), devices)
    return EventTable(
        customer=customer, customers=customers.astype(str), time=time_s,
        time_kind=time_kind, touchpoint=touchpoint.astype(np.int32, copy=False),
        labels=tuple(str(x) for x in labels), persona=persona.astype(np.int32, copy=False),
        personas=tuple(str(x) for x in personas),
        value=np.full(len(idx), np.nan) if value is None else take(value),
        sentiment=None if sentiment is None else take(sentiment),
        device=None if device is None else device.astype(np.int32, copy=False),
        devices=tuple(str(x) for x in devices), row=idx.astype(np.int64, copy=False),
        observed_until=observed_until, ledger=ledger,
    )


def _rows_to_keep(o: ReadOptions, name, ledger: Ledger, masks, time, time_kind, alerts):
    """Mask of rows kept (valid and not after the end of observation), and that end; each
    dropped row is counted once, under the first reason that applies."""
    invalid = np.zeros(len(time), bool)
    for reason, mask in masks.items():
        if mask.any():
            ledger.drop(reason, int(np.count_nonzero(mask & ~invalid)))
            invalid |= mask
    if invalid.all():
        raise InputError(f"no usable rows ({ledger.summary_line()})", source=name)
    observed_until = _observed_until(o, time, invalid, time_kind, name, alerts)
    late = (time > observed_until) if o.observed_until is not None or invalid.any() else None
    if late is None:
        return ~invalid, observed_until
    late &= ~invalid
    ledger.drop("after_observed_until", int(np.count_nonzero(late)))
    return ~(invalid | late), observed_until


#: How each kind of invalid field is handled (the row is always kept).
_FIELD_TEXT = {"value": "not a number (or infinite, or above 1e15); treated as missing",
               "sentiment": "not a number on the scale; left unscored",
               "touchpoint": "NUL characters removed", "persona": "NUL characters removed",
               "device": "NUL characters removed"}


def _warn(name, ledger: Ledger, table, cols, field_bad, alerts) -> None:
    """One DataWarning for dropped rows and invalid fields (with an example of each invalid
    field), one for each other surprise."""
    dropped = ledger.rows_dropped - ledger.dropped.get("after_observed_until", 0)
    if dropped or ledger.invalid_fields:
        text = f"{name}: {ledger.summary_line()}"
        details = []
        for key, bad in field_bad.items():
            if bad.any():
                row = int(np.argmax(bad))
                raw = _raw(table, cols[key], row)
                details.append(f"{key}: {_FIELD_TEXT.get(key, 'invalid')}, e.g. row {row + 1}: "
                               f"{raw!r}")
        if details:
            text += " (" + "; ".join(details) + ")"
        warnings.warn(text, DataWarning, stacklevel=3)
    for alert in alerts:
        warnings.warn(f"{name}: {alert}", DataWarning, stacklevel=3)


def _raw(table: pa.Table, col: str, row: int) -> Any:
    """The value of one cell as Python, for messages (its text when Python cannot hold it)."""
    cell = table[col].slice(row, 1)
    try:
        return cell[0].as_py()
    except (OverflowError, ValueError, pa.ArrowException):
        try:
            return pc.cast(cell, pa.string())[0].as_py()
        except pa.ArrowException:
            return f"<{cell.type}>"


def _optional_fields(table, cols, o: ReadOptions, ledger: Ledger, nul, alerts):
    field_bad: dict[str, np.ndarray] = {}
    value = None  # no column: NaN everywhere, filled in at the end
    if cols["value"]:
        value, field_bad["value"] = _numeric(table[cols["value"]])
    sentiment = None
    if cols["sentiment"]:
        raw, bad = _numeric(table[cols["sentiment"]])
        scale = o.sentiment_scale
        if scale is None:
            scale, known = infer_sentiment_scale(raw)
            if scale is not None:
                ledger.notes.append(_scale_note(scale, known))
                if not known:
                    alerts.append(_scale_note(scale, known))
        sentiment, out_of_scale = normalise_sentiment(raw, scale)
        if out_of_scale.any():
            row = int(np.argmax(out_of_scale))
            how = "declared" if o.sentiment_scale else "inferred from the other scores"
            alerts.append(f"{int(out_of_scale.sum()):,} sentiment scores lie outside the scale "
                          f"{_num(scale[0])}..{_num(scale[1])} {how} (e.g. row {row + 1}: "
                          f"{_num(raw[row])}); they are counted as invalid and left unscored"
                          + ("" if o.sentiment_scale else
                             "; if the scale is wider, set --sentiment-scale MIN,MAX"))
        field_bad["sentiment"] = bad | out_of_scale
    device, devices = None, np.array([], dtype=object)
    if cols["device"]:
        device, devices = _encode(table[cols["device"]], dtype=np.int32, nul=nul, key="device")
    field_bad.update(nul)
    for key, bad in field_bad.items():
        if bad.any():
            ledger.invalid_fields[key] = int(np.count_nonzero(bad))
    return value, sentiment, device, devices, field_bad


def _num(x: float) -> str:
    return f"{x:g}"


def _scale_note(scale, known: bool) -> str:
    lo, hi = _num(scale[0]), _num(scale[1])
    if known:
        return (f"sentiment scale {lo}..{hi} inferred from the scores, mapped to -1..1 "
                "(set --sentiment-scale MIN,MAX to change it)")
    return (f"sentiment scores fit no common scale (1-5, 0-10, -1..1, 0-100, ...); {lo}..{hi} "
            "is mapped to -1..1: set their scale with --sentiment-scale MIN,MAX")


def normalise_sentiment(raw: np.ndarray, scale: tuple[float, float] | None):
    """Map scores linearly from ``scale`` to -1..1 (default: inferred by
    :func:`~journeymodel.data.datachecks.infer_sentiment_scale`).

    Returns the normalised scores (NaN where unscored or outside the scale) and the mask of
    scores outside the scale.
    """
    if scale is None:
        scale = infer_sentiment_scale(raw)[0]
        if scale is None:
            return np.full(raw.shape, np.nan), np.zeros(raw.shape, bool)
    lo, hi = scale
    if not hi > lo:
        raise OptionError(f"--sentiment-scale needs MIN < MAX (got {lo}, {hi})")
    outside = np.isfinite(raw) & ((raw < lo) | (raw > hi))
    norm = 2.0 * (raw - lo) / (hi - lo) - 1.0
    return np.where(outside, np.nan, norm), outside


def _check_strict(o: ReadOptions, name, table, cols, masks, field_bad) -> None:
    if not o.strict:
        return
    checks = [(m, cols[k], w) for m, k, w in (
        (masks["missing_customer"], "customer", "missing customer id"),
        (masks["missing_timestamp"], "time", "missing timestamp"),
        (masks["bad_timestamp"], "time", "cannot parse timestamp"),
        (masks["missing_touchpoint"], "touchpoint", "missing touchpoint"),
    )] + [(bad, cols[k], "NUL character in the name" if _FIELD_TEXT.get(k, "").startswith(
        "NUL") else f"invalid {k}") for k, bad in field_bad.items()]
    first = min(((int(np.argmax(m)), col, what) for m, col, what in checks if m.any()),
                default=None)
    if first is None:
        return
    row, col, what = first
    raw = _raw(table, col, row)
    raise InputError(f"{what} (strict mode)", source=name, row=row + 1, column=col,
                     value=raw if raw is not None else "")


def _observed_until(o: ReadOptions, time, invalid, time_kind, name, alerts) -> float:
    """The end of observation; a default one set by a small outlying tail of rows is said."""
    valid = time if not invalid.any() else time[~invalid]  # no copy when every row is valid
    if o.observed_until is not None:
        until = parse_time_point(o.observed_until, time_kind, "--observed-until",
                                 o.time_format)
        first = float(valid.min()) if valid.size else float("nan")
        if until < first:
            raise InputError(f"no usable rows: --observed-until {o.observed_until} is before "
                             f"the first event ({_show_time(first, time_kind)})", source=name)
        return until
    if not valid.size:
        return float("nan")
    try:
        gap = parse_gap(o.gap, time_kind)
    except OptionError:  # reported where journeys are cut
        gap = None
    last = float(valid.max())
    tail = outlying_end(valid, gap, end=last)
    if tail is not None:
        bulk_end, end, n_tail = tail
        alerts.append(
            f"the end of observation ({_show_time(end, time_kind)}) is set by {n_tail:,} "
            f"row{'s' if n_tail > 1 else ''} ({n_tail / valid.size:.2%}) far after all the "
            f"others, which end at {_show_time(bulk_end, time_kind)}; journeys still open "
            "then count as drop-offs instead of censored (in progress). If those rows are "
            f"errors, set --observed-until {_show_time(bulk_end, time_kind, option=True)} "
            "(later rows are then left out and counted)")
        return end
    return last


def _show_time(t: float, time_kind: str, option: bool = False) -> str:
    if time_kind != "datetime" or not np.isfinite(t):
        return _num(t)
    ts = to_timestamp(t)
    if option:
        ts = ts.ceil("s")  # the least precise text that keeps every row up to t
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime(
            "%Y-%m-%dT%H:%M:%S")
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")
