"""Read and validate event logs; account for every row in a :class:`Ledger`.

An event log is a table with one row per event (see ``design.md``): who (``customer_id``), when
(``timestamp``), what (``touchpoint``: a channel, or an outcome label such as ``conversion``), and
optionally ``persona``, ``value``, ``sentiment`` and ``device``. :func:`read_events` reads CSV (any
delimiter), Parquet or a pandas DataFrame into an :class:`EventTable` of normalised numpy arrays,
and records in the ledger why each dropped row was dropped.

Everything is vectorised with pyarrow and numpy; nothing loops over rows in Python.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from journeymodel.errors import InputError, OptionError

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


class DataWarning(UserWarning):
    """Rows or fields were dropped or repaired while reading an event log."""


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
        How to read the time column. ``auto``: datetimes and ISO-8601 text are datetimes; numbers
        above 1e11 are epoch milliseconds, above 1e8 epoch seconds, and smaller numbers are plain
        ordered periods (1, 2, 3, ...).
    sentiment_scale : tuple of float or None
        ``(min, max)`` of the sentiment scale; scores are mapped linearly to -1..1. Default: the
        observed range.
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
        parts = [f"{n} {_REASON_TEXT.get(r, r)}" for r, n in self.dropped.items()]
        return f"dropped {self.rows_dropped} of {self.rows_read} rows: " + ", ".join(parts)


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
# Reading raw tables


def read_table(source: str | Path | pd.DataFrame, options: ReadOptions) -> tuple[pa.Table, str]:
    """Read ``source`` into an Arrow table; returns the table and a name for messages."""
    if isinstance(source, pd.DataFrame):
        return pa.Table.from_pandas(source, preserve_index=False), "<DataFrame>"
    if isinstance(source, pa.Table):
        return source, "<Table>"
    path = Path(source)
    name = str(source)
    if not path.exists():
        raise InputError("file not found", source=name)
    if path.is_dir():
        raise InputError("is a directory, expected an event log file", source=name)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", source=name)
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            return _read_parquet(path, options), name
        return _read_csv(path, options.sep), name
    except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error, OSError) as exc:
        kind = "Parquet" if suffixes and suffixes[-1] in (".parquet", ".pq") else "CSV"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read as {kind}: {first}", source=name) from exc


def _read_parquet(path: Path, options: ReadOptions) -> pa.Table:
    """Read only the columns an event log can use, low-cardinality text as dictionaries.

    When a required column (or an optional one named explicitly) is missing, everything is read,
    so that the error lists all columns and an aggregated path table is read whole. Touchpoint,
    persona and device text come dictionary-encoded straight from Parquet's own dictionaries
    (a few distinct values: no string per row is materialised). So do customer ids when the
    file has a single row group (one dictionary; 0.8M rows: 14 ms instead of 39 ms); across
    several row groups, merging their dictionaries costs more than encoding the text.
    """
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    schema = meta.schema_arrow
    names = schema.names
    o = options
    required = [o.customer_col, o.time_col, o.touchpoint_col]
    named = [c for c in (o.persona_col, o.value_col, o.sentiment_col, o.device_col)
             if c is not None]
    if len(set(names)) != len(names) or any(c not in names for c in required + named):
        return pq.read_table(path)
    persona, value, sentiment, device = (
        c if c is not None else default for c, default in (
            (o.persona_col, "persona"), (o.value_col, "value"),
            (o.sentiment_col, "sentiment"), (o.device_col, "device")))
    columns = list(dict.fromkeys(
        required + [c for c in (persona, value, sentiment, device) if c in names]))
    text = {c for c in columns if pa.types.is_string(schema.field(c).type)
            or pa.types.is_large_string(schema.field(c).type)}
    low_card = [c for c in (o.touchpoint_col, persona, device) if c in text]
    if meta.metadata.num_row_groups == 1 and o.customer_col in text:
        low_card.append(o.customer_col)
    return pq.read_table(path, columns=columns, read_dictionary=low_card or None)


def _read_csv(path: Path, sep: str | None) -> pa.Table:
    import pyarrow.csv as pacsv

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        head = fh.read(65536)
    if not head.strip():
        raise InputError("the file is empty", source=str(path))
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
    header = next(csv.reader(io.StringIO(head), delimiter=sep))
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise InputError(f"duplicate column names {dup}", source=str(path))
    return pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=sep),
        read_options=pacsv.ReadOptions(use_threads=True, block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


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


def _as_string(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_trim_whitespace(arr)


def _encode(arr: pa.ChunkedArray, *, sort: bool = True, dtype=np.int64
            ) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary-encode a column as text: (codes, -1 for null/blank; vocabulary).

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
    raw = _as_string(pa.chunked_array([enc.dictionary])).to_numpy(zero_copy_only=False)
    raw = np.asarray(raw, dtype=object)
    raw[pd.isna(raw)] = ""
    vocab, remap = np.unique(raw.astype(str), return_inverse=True)
    blank = vocab == ""
    new = np.cumsum(~blank) - 1
    remap = np.append(np.where(blank[remap], -1, new[remap]), -1)  # last slot: null index
    indices = pc.fill_null(enc.indices, len(raw)).to_numpy(zero_copy_only=False)
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


def _numeric(arr: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column as float64: (values with NaN for missing, mask of present-but-invalid)."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        vals = arr.to_numpy().astype(np.float64)
        return vals, np.zeros(len(vals), bool)
    if pa.types.is_null(arr.type):
        return np.full(len(arr), np.nan), np.zeros(len(arr), bool)
    s = _as_string(arr)
    present = pc.and_(pc.is_valid(s), pc.not_equal(s, "")).to_numpy(zero_copy_only=False)
    present = np.asarray(present, dtype=bool)
    vals = pd.to_numeric(pd.Series(s.to_numpy(zero_copy_only=False)), errors="coerce")
    vals = vals.to_numpy(dtype=np.float64, na_value=np.nan)
    return vals, present & np.isnan(vals)


def _parse_times(
    arr: pa.ChunkedArray, kind: TimestampKind
) -> tuple[np.ndarray, str, np.ndarray, np.ndarray]:
    """Return (time float64, time_kind, missing mask, unparseable mask)."""
    t = arr.type
    n = len(arr)
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if kind == "period" or kind == "epoch":
            raise OptionError(f"--timestamps {kind} given, but the time column holds dates")
        ns = pc.cast(pc.cast(arr, pa.timestamp("ns")), pa.int64()).to_numpy(zero_copy_only=False)
        if arr.null_count == 0:  # the usual case: skip the mask and the select
            secs = ns.astype(np.float64)
            secs /= 1e9
            return secs, "datetime", np.zeros(n, bool), np.zeros(n, bool)
        missing = np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False), bool)
        secs = np.where(missing, np.nan, ns / 1e9)
        return secs, "datetime", missing, np.zeros(n, bool)
    if pa.types.is_null(t):
        return np.full(n, np.nan), "period", np.ones(n, bool), np.zeros(n, bool)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        vals = arr.to_numpy().astype(np.float64)
        missing = np.isnan(vals)
        return _numeric_times(vals, kind, missing, np.zeros(n, bool))
    s = _as_string(arr)
    missing = np.asarray(
        pc.or_kleene(pc.is_null(s), pc.equal(s, "")).fill_null(True).to_numpy(
            zero_copy_only=False), bool)
    text = pd.Series(s.to_numpy(zero_copy_only=False), dtype=object)
    if kind in ("auto", "epoch", "period") and _looks_numeric(text[~missing]):
        vals = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        return _numeric_times(vals, kind, missing, ~missing & np.isnan(vals))
    if kind in ("epoch", "period"):
        vals = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        return _numeric_times(vals, kind, missing, ~missing & np.isnan(vals))
    dt = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = ~missing & dt.isna().to_numpy()
    ns = dt.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    secs = np.where(missing | bad, np.nan, ns / 1e9)
    return secs, "datetime", missing, bad


def _looks_numeric(sample: pd.Series) -> bool:
    head = sample.iloc[:2000]
    if head.empty:
        return False
    return bool(pd.to_numeric(head, errors="coerce").notna().mean() > 0.5)


def _numeric_times(vals, kind, missing, bad):
    finite = vals[np.isfinite(vals)]
    top = float(np.max(np.abs(finite))) if finite.size else 0.0
    if kind == "period" or (kind == "auto" and top <= 1e8):
        return vals, "period", missing, bad
    scale = 1e-3 if (kind == "auto" and top > 1e11) else 1.0
    return vals * scale, "datetime", missing, bad


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


def parse_time_point(text: str | float, time_kind: str, what: str) -> float:
    """Parse a single time (``--observed-until``) into the table's time axis."""
    if time_kind == "datetime":
        try:
            ts = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise OptionError(f"{what} must be a date like 2025-06-30 (got {text!r})") from None
        if ts is pd.NaT:
            raise OptionError(f"{what} must be a date like 2025-06-30 (got {text!r})")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.value / 1e9
    try:
        return float(text)
    except (TypeError, ValueError):
        raise OptionError(f"{what} must be a period number for this log (got {text!r})") from None


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
    if table.num_rows == 0:
        raise InputError("the event log has no rows", source=name)
    cols = _resolve_columns(table, name, o)
    ledger = Ledger(source=name, rows_read=table.num_rows)
    customer, customers = _encode(table[cols["customer"]], sort=False)
    touchpoint, labels = _encode(table[cols["touchpoint"]], dtype=np.int32)
    time, time_kind, t_missing, t_bad = _parse_times(table[cols["time"]], o.timestamps)
    masks = {
        "missing_customer": customer < 0,
        "missing_timestamp": t_missing,
        "bad_timestamp": t_bad,
        "missing_touchpoint": touchpoint < 0,
    }
    persona, personas = (_encode(table[cols["persona"]], dtype=np.int32) if cols["persona"]
                         else (None, np.array([], dtype=object)))
    value, sentiment, device, devices, field_bad = _optional_fields(table, cols, o, ledger)
    _check_strict(o, name, table, cols, masks, field_bad)
    n = len(time)
    invalid = np.zeros(n, bool)
    for reason, mask in masks.items():  # one reason per row, the first that applies
        if mask.any():
            ledger.drop(reason, int(np.count_nonzero(mask & ~invalid)))
            invalid |= mask
    if invalid.all():
        raise InputError(f"no usable rows ({ledger.summary_line()})", source=name)
    observed_until = _observed_until(o, time, invalid, time_kind)
    late = (time > observed_until) if o.observed_until is not None or invalid.any() else None
    if late is not None:
        late &= ~invalid
        ledger.drop("after_observed_until", int(np.count_nonzero(late)))
    keep = ~invalid if late is None else ~(invalid | late)
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
    if ledger.rows_dropped - ledger.dropped.get("after_observed_until", 0):
        warnings.warn(f"{name}: {ledger.summary_line()}", DataWarning, stacklevel=2)
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


def _optional_fields(table, cols, o: ReadOptions, ledger: Ledger):
    field_bad: dict[str, np.ndarray] = {}
    value = None  # no column: NaN everywhere, filled in at the end
    if cols["value"]:
        value, field_bad["value"] = _numeric(table[cols["value"]])
    sentiment = None
    if cols["sentiment"]:
        raw, bad = _numeric(table[cols["sentiment"]])
        sentiment, out_of_scale = normalise_sentiment(raw, o.sentiment_scale)
        field_bad["sentiment"] = bad | out_of_scale
    device, devices = None, np.array([], dtype=object)
    if cols["device"]:
        device, devices = _encode(table[cols["device"]], dtype=np.int32)
    for key, bad in field_bad.items():
        if bad.any():
            ledger.invalid_fields[key] = int(np.count_nonzero(bad))
    return value, sentiment, device, devices, field_bad


def normalise_sentiment(raw: np.ndarray, scale: tuple[float, float] | None):
    """Map scores linearly from ``scale`` (default: observed range) to -1..1.

    Returns the normalised scores (NaN where unscored or outside the scale) and the mask of
    scores outside the declared scale.
    """
    finite = raw[np.isfinite(raw)]
    if scale is None:
        if finite.size == 0:
            return np.full(raw.shape, np.nan), np.zeros(raw.shape, bool)
        scale = (float(finite.min()), float(finite.max()))
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
    )] + [(bad, cols[k], f"invalid {k}") for k, bad in field_bad.items()]
    first = min(((int(np.argmax(m)), col, what) for m, col, what in checks if m.any()),
                default=None)
    if first is None:
        return
    row, col, what = first
    raw = table[col][row].as_py()
    raise InputError(f"{what} (strict mode)", source=name, row=row + 1, column=col,
                     value=raw if raw is not None else "")


def _observed_until(o: ReadOptions, time, invalid, time_kind) -> float:
    if o.observed_until is not None:
        return parse_time_point(o.observed_until, time_kind, "--observed-until")
    if not invalid.any():  # no copy of the valid times needed
        return float(time.max()) if time.size else float("nan")
    valid = time[~invalid]
    return float(valid.max()) if valid.size else float("nan")


def customer_time_order(customer: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Stable order by (customer, time): ties keep their input order.

    Examples
    --------
    >>> customer_time_order(np.array([1, 0, 1, 0]), np.array([5.0, 7.0, 2.0, 7.0])).tolist()
    [1, 3, 2, 0]
    """
    order = _sort_order(customer, time)[0]
    return np.arange(len(time), dtype=np.int64) if order is None else order


def _sort_order(customer: np.ndarray, time: np.ndarray):
    """(:func:`customer_time_order`, the customers in that order), where the first is ``None``
    when the rows are already in order and the second ``None`` when not known without a gather.

    Two cheap checks first: a log already grouped by customer in time order needs no sort, and
    a log in time order (as logs are usually written) needs only a stable sort by customer.
    Otherwise one sort on a composite key: times that are whole numbers with a small span are
    used directly, other times are replaced by their rank first.
    """
    n = len(time)
    if n == 0:
        return None, None
    c = customer.astype(np.int64, copy=False)
    n_cust = int(c.max()) + 1
    time_sorted = bool(np.all(time[1:] >= time[:-1]))
    if time_sorted or bool(np.all(c[1:] >= c[:-1])):
        if time_sorted:
            if bool(np.all(c[1:] >= c[:-1])):
                return None, None
            return _stable_argsort(c, n_cust - 1)
        same = c[1:] == c[:-1]
        if bool(np.all(time[1:][same] >= time[:-1][same])):
            return None, None
    lo, hi = float(time.min()), float(time.max())
    if np.array_equal(time, np.floor(time)) and (hi - lo + 1) * n_cust < 2**62:
        rank, span = (time - lo).astype(np.int64), int(hi - lo) + 1
    else:
        _, rank = np.unique(time, return_inverse=True)
        span = int(rank.max()) + 1
    order, keys = _stable_argsort(c * span + rank, n_cust * span - 1)
    if keys is not None:
        keys //= span  # composite key -> customer
    return order, keys


def _stable_argsort(key: np.ndarray, key_max: int):
    """``np.argsort(key, kind="stable")`` for non-negative int64 keys up to ``key_max``, and
    the sorted keys when they come for free (else ``None``).

    Faster routes with the same order: numpy's radix sort of 16-bit digits when keys fit 32 bits
    (one or two stable passes, least significant digit first); otherwise, when key and row
    number fit 63 bits together, a plain sort of ``key << bits | row`` (sorting values is about
    twice as fast as sorting indices, the row number makes ties stable, and the high bits are
    then the sorted keys). Measured at 0.8M rows: 20 ms, 43 ms and 70 ms for the radix, packed
    and plain stable sorts; at 8M rows the two-pass radix is no faster than the packed sort
    (its gathers leave the cache) and needs more memory, so it is used below 2M rows.
    """
    n = len(key)
    if key_max < 2**16:
        return np.argsort(key.astype(np.uint16), kind="stable"), None
    if key_max < 2**32 and n < 2**21:
        order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        low_sorted = key[order]
        high = np.argsort((low_sorted >> 16).astype(np.uint16), kind="stable")
        return order[high], low_sorted[high]
    bits = max(int(n - 1).bit_length(), 1)
    if int(key_max).bit_length() + bits > 63:
        return np.argsort(key, kind="stable"), None
    packed = key << bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    keys = packed >> bits
    packed &= (1 << bits) - 1
    return packed, keys


def _duplicates(idx: np.ndarray, customer: np.ndarray, time: np.ndarray, *keys) -> np.ndarray:
    """Mask over ``idx`` of rows repeating an earlier row on every key (NaN equals NaN).

    ``customer`` and ``time`` are already taken at ``idx`` (sorted by customer, time); the other
    ``keys`` are full columns, ``None`` for absent ones (equal in every row). Only groups
    sharing customer and time can hold duplicates, so the full comparison runs on those few rows
    alone."""
    tie = np.zeros(len(idx), bool)
    same = (customer[1:] == customer[:-1]) & (time[1:] == time[:-1])
    tie[1:] |= same
    tie[:-1] |= same
    cand = np.flatnonzero(tie)
    dup = np.zeros(len(idx), bool)
    if cand.size == 0:
        return dup
    cols = [customer[cand], time[cand]] + [k[idx[cand]] for k in keys if k is not None]
    order = np.lexsort(cols[::-1])
    equal = np.ones(len(cand) - 1, bool)
    for c in cols:
        v = c[order]
        eq = v[1:] == v[:-1]
        if v.dtype.kind == "f":
            eq |= np.isnan(v[1:]) & np.isnan(v[:-1])
        equal &= eq
    # among equal rows the first in input order is kept: cand is in (customer, time, row) order
    # and lexsort is stable, so order[1:][equal] are the later copies
    dup[cand[order[1:][equal]]] = True
    return dup
