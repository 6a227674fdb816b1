"""Read and validate event logs into an :class:`EventTable`; account for every row in a
:class:`~journeymodel.data.ledger.Ledger`.

An event log is a table with one row per event (see ``docs/architecture.md``, "Event logs"): who
(``customer_id``), when (``timestamp``), what (``touchpoint``: a channel, or an outcome label
such as ``conversion``), and optionally ``persona``, ``value``, ``sentiment`` and ``device``.
:func:`read_events` reads CSV (any delimiter), Parquet or a pandas DataFrame into an
:class:`EventTable` of normalised numpy arrays, and records in the ledger why each dropped row
was dropped. How to read it is a :class:`~journeymodel.data.options.ReadOptions`; the columns
are turned into arrays by :mod:`journeymodel.data.columns`.

Everything is vectorised with pyarrow and numpy; nothing loops over rows in Python.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from journeymodel.data import compute as pc
from journeymodel.data.columns import check_kinds, compact, encode, numeric
from journeymodel.data.datachecks import infer_sentiment_scale, outlying_end
from journeymodel.data.ledger import Ledger
from journeymodel.data.memory import reuse_freed_memory
from journeymodel.data.options import ReadOptions, parse_gap
from journeymodel.data.ordering import duplicate_rows, grouped_codes, sort_order, take_rows
from journeymodel.data.readers import read_table
from journeymodel.data.timestamps import parse_time_point, parse_times, to_timestamp
from journeymodel.errors import DataWarning, InputError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: Ledger and ReadOptions have their own modules; they belong to this module's interface too
#: (read_events takes a ReadOptions, an EventTable carries a Ledger).
__all__ = ["EventTable", "Ledger", "ReadOptions", "events_from_table", "normalise_sentiment",
           "read_events"]


@dataclass(frozen=True)
class EventTable:
    """Validated events as numpy arrays, one entry per kept row, sorted by customer and time.

    Rows of one customer are contiguous and in time order (ties keep the input order).

    Codes index the vocabularies (``-1`` means missing). ``time`` is float64: seconds since the
    Unix epoch (UTC) when ``time_kind == "datetime"``, the period number when ``"period"``.
    Without a value or persona column, ``value`` (NaN) and ``persona`` (-1) are one read-only
    value broadcast over the rows (no memory per row).
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
    with reuse_freed_memory():  # the reader's buffers and the arrays reuse each other's pages
        table, name = read_table(source, options)
        return events_from_table(table, name, options)


#: From this many rows the customer ids are encoded in one thread while the other columns are
#: read in another (two cores: the ids are about half of the work).
THREAD_ROWS = 1 << 18


def events_from_table(table: pa.Table, name: str, o: ReadOptions) -> EventTable:
    """Validate an Arrow table of events (see :func:`read_events`)."""
    with reuse_freed_memory():
        return _events_from_table(table, name, o)


def _events_from_table(table: pa.Table, name: str, o: ReadOptions) -> EventTable:
    if table.num_rows == 0:
        raise InputError("the event log has no rows", source=name)
    cols = _resolve_columns(table, name, o)
    table = check_kinds(table, cols, name)
    ledger = Ledger(source=name, rows_read=table.num_rows)
    alerts: list[str] = []
    grouped: dict = {}  # the rows' stable order by customer, when the encoder sorted them

    def other_columns():  # everything but the ids, in the order the ledger records it
        return _other_columns(table, cols, o, name, ledger, alerts)

    spare: list = [None, None]  # memory for the times and touchpoints in customer order
    if table.num_rows < THREAD_ROWS:
        customer, customers = encode(table[cols["customer"]], sort=False, grouped=grouped)
        fields = other_columns()
    else:  # numpy and Arrow release the GIL: the two halves of the work share the two cores
        def beside():  # the other columns, then the gathers' memory, while the ids are sorted
            found = other_columns()
            spare[:] = _gather_memory(found, o)
            return found

        ids = table[cols["customer"]]
        with ThreadPoolExecutor(1) as pool:
            # first the memory the ids are hashed into, touched while they are packed
            memory = pool.submit(_touched, len(ids)) if pa.types.is_string(
                ids.type) or pa.types.is_large_string(ids.type) else None
            future = pool.submit(beside)
            try:
                customer, customers = encode(ids, sort=False, grouped=grouped,
                                             hash_memory=memory and memory.result)
            finally:
                wait([future])
            del ids, memory
            fields = future.result()
            del future  # it holds the result too
    touchpoint, labels, times, persona, personas, optional = fields
    value, sentiment, device, devices, field_bad = optional
    del fields, optional
    time, time_kind = times.time, times.kind
    masks = {  # no customer codes: the encoder grouped the rows, no id is null
        "missing_customer": customer < 0 if customer is not None else np.zeros(len(time), bool),
        "missing_timestamp": times.missing,
        "bad_timestamp": times.bad,
        "missing_touchpoint": touchpoint < 0,
    }
    _check_strict(o, name, table, cols, masks, field_bad)
    n = len(time)
    keep, observed_until = _rows_to_keep(o.replace(time_format=o.time_format or times.fmt),
                                         name, ledger, masks, time, time_kind, alerts)
    every_row = keep is None or bool(keep.all())
    idx = None if every_row else np.flatnonzero(keep)
    if customer is None and not every_row:
        customer = grouped_codes(grouped)
    cust_s, time_s = (customer, time) if every_row else (customer[idx], time[idx])
    order, sorted_cust = sort_order(cust_s, time_s, grouped if every_row else None)
    if cust_s is None and sorted_cust is None:  # rows out of time order: codes per row needed
        cust_s = grouped_codes(grouped)
    from_encoder = every_row and "order" in grouped  # then every id is used: no compact
    # let go of what is no longer needed (at 8M rows fresh memory costs as much as the work)
    grouped.clear()
    del customer, time, masks, times, keep
    tp_s = touchpoint if every_row else touchpoint[idx]
    if order is not None:  # random gathers (8M rows: a cache miss each): in two threads
        idx = order if every_row else idx[order]
        time_s, tp_s, *rest = take_rows([time_s, tp_s] + ([cust_s] if sorted_cust is None
                                                          else []), order, out=spare)
        cust_s = rest[0] if sorted_cust is None else sorted_cust
        del rest
    elif every_row:
        idx = np.arange(n)
        cust_s = cust_s if sorted_cust is None else sorted_cust
    spare.clear()
    dup = duplicate_rows(idx, cust_s, time_s, touchpoint, persona, value, sentiment, device)
    n_dup = int(np.count_nonzero(dup))
    ledger.drop("duplicate", n_dup)
    if n_dup:
        # every one of them is this function's own (made here, or by the encoder and the
        # readers of the columns, which are let go of): moved within, no new memory
        idx, cust_s, time_s, tp_s = take_rows([idx, cust_s, time_s, tp_s], ~dup, in_place=True)
    ledger.rows_used = len(idx)
    ledger.check()
    if ledger.rows_used == 0:
        raise InputError(f"no usable rows ({ledger.summary_line()})", source=name)
    _warn(name, ledger, table, cols, field_bad, alerts)
    in_order = order is None and len(idx) == n  # every row kept, in input order: no gathers
    take = (lambda a: a) if in_order else (lambda a: a[idx])  # noqa: E731
    if not from_encoder:
        customer, customers = compact(cust_s, customers)
    else:
        customer = cust_s
    # every label is used when every row is (a dropped duplicate has its twin): the labels
    # came from the column's own values unless the column was a dictionary already
    used = every_row and not any(pa.types.is_dictionary(table.schema.field(cols[k]).type)
                                 for k in ("touchpoint", "persona", "device") if cols[k])
    touchpoint, labels = (tp_s, labels) if used else compact(tp_s, labels)
    del tp_s
    if persona is not None:
        persona = take(persona)
        if not used:
            persona, personas = compact(persona, personas)
    else:  # no column: every row unknown (one value, read-only, no memory per row)
        persona = np.broadcast_to(np.int32(-1), (len(idx),))
    if device is not None:
        device = take(device)
        if not used:
            device, devices = compact(device, devices)
    return EventTable(
        customer=customer, customers=customers.astype(str, copy=False), time=time_s,
        time_kind=time_kind, touchpoint=touchpoint.astype(np.int32, copy=False),
        labels=tuple(str(x) for x in labels), persona=persona.astype(np.int32, copy=False),
        personas=tuple(str(x) for x in personas),
        value=np.broadcast_to(np.nan, (len(idx),)) if value is None else take(value),
        sentiment=None if sentiment is None else take(sentiment),
        device=None if device is None else device.astype(np.int32, copy=False),
        devices=tuple(str(x) for x in devices), row=idx.astype(np.int64, copy=False),
        observed_until=observed_until, ledger=ledger,
    )


def _touched(n: int) -> np.ndarray:
    """A new int64 array of ``n`` items, its memory touched (the kernel maps fresh pages on
    first touch: at 800k rows a few milliseconds, here beside the encoder's own work)."""
    out = np.empty(n, np.int64)
    out.fill(0)
    return out


def _gather_memory(fields, o: ReadOptions) -> list:
    """Arrays for the times and touchpoints gathered into customer order, their memory
    touched once (``[None, None]`` when some row may be dropped: the gathers are then
    shorter). Made by the thread beside the encoder once its columns are read: at 800k rows
    the first touch of fresh memory costs the kernel about as much as the gathers, and the
    encoder still has its sort to do."""
    touchpoint, _, times = fields[:3]
    if o.observed_until is not None or times.missing.any() or times.bad.any() or bool(
            (touchpoint < 0).any()):
        return [None, None]
    out = [np.empty(len(times.time), times.time.dtype), np.empty(len(touchpoint),
                                                                 touchpoint.dtype)]
    for a in out:
        a.fill(0)
    return out


def _other_columns(table, cols, o: ReadOptions, name, ledger: Ledger, alerts):
    """Touchpoints, times, personas and the optional fields (all but the customer ids), with
    their notes and alerts recorded in this order."""
    nul: dict[str, np.ndarray] = {}
    touchpoint, labels = encode(table[cols["touchpoint"]], dtype=np.int32, nul=nul,
                                 key="touchpoint")
    times = parse_times(table[cols["time"]], o.timestamps, o.time_format, source=name,
                        column=cols["time"])
    ledger.notes.extend(times.notes)
    alerts.extend(times.alerts)
    persona, personas = (encode(table[cols["persona"]], dtype=np.int32, nul=nul,
                                 key="persona") if cols["persona"]
                         else (None, np.array([], dtype=object)))
    optional = _optional_fields(table, cols, o, ledger, nul, alerts)
    return touchpoint, labels, times, persona, personas, optional


def _rows_to_keep(o: ReadOptions, name, ledger: Ledger, masks, time, time_kind, alerts):
    """Mask of rows kept (valid and not after the end of observation; ``None`` when every row
    is), and that end; each dropped row is counted once, under the first reason that
    applies."""
    if not any(mask.any() for mask in masks.values()) and o.observed_until is None:
        return None, _observed_until(o, time, None, time_kind, name, alerts)  # the usual log
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
        value, field_bad["value"] = numeric(table[cols["value"]])
    sentiment = None
    if cols["sentiment"]:
        raw, bad = numeric(table[cols["sentiment"]])
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
        device, devices = encode(table[cols["device"]], dtype=np.int32, nul=nul, key="device")
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
    # no copy when every row is valid (``invalid`` None: known to be)
    valid = time if invalid is None or not invalid.any() else time[~invalid]
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
