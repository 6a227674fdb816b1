"""ChannelAttribution's aggregated path table, read as weighted journeys.

The table has one row per unique path: ``path`` (``"a > b > c"``), ``total_conversions``,
``total_null`` and optionally ``total_conversion_value``. Each row becomes at most two weighted
journeys (one converting, one ending in drop-off); nothing is expanded row by row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa

from journeymodel.data import compute as pc
from journeymodel.data.arrow_numpy import flags, scalar, values
from journeymodel.data.columns import check_kinds, numeric
from journeymodel.data.journeyset import CONVERSION, DROPOFF, JourneySet, csr_event_index
from journeymodel.data.ledger import Ledger
from journeymodel.data.options import ReadOptions
from journeymodel.errors import DataWarning, InputError


def journeys_from_paths(table: pa.Table, name: str, options: ReadOptions) -> JourneySet:
    """Weighted journeys from an aggregated path table (see module docstring)."""
    n = table.num_rows
    if n == 0:
        raise InputError("the path table has no rows", source=name)
    table = check_kinds(table, {c: c for c in ("path", "total_conversions", "total_null",
                                                 "total_conversion_value")
                                 if c in table.column_names}, name)
    ledger = Ledger(source=name, rows_read=n)
    conv, bad_conv = _counts(table, "total_conversions")
    null, bad_null = _counts(table, "total_null")
    value, _ = (numeric(table["total_conversion_value"]) if "total_conversion_value"
                in table.column_names else (np.zeros(n), None))
    value = np.nan_to_num(value)
    bad_count = bad_conv | bad_null
    path = pc.utf8_trim_whitespace(pc.cast(table["path"], pa.string()))
    parts = pc.split_pattern_regex(pc.fill_null(path, scalar("", path.type)),
                                   r"\s*>\s*").combine_chunks()
    flat = pc.utf8_trim_whitespace(parts.flatten())
    lengths = values(pc.list_value_length(parts), fill=0, dtype=np.int64)
    nonempty = flags(pc.not_equal(flat, scalar("", flat.type)))
    row_of_part = np.repeat(np.arange(n), lengths)
    has_empty = np.bincount(row_of_part[~nonempty], minlength=n) > 0
    if options.strict:
        _strict(name, table, bad_count, has_empty)
    ledger.drop("bad_count", int(np.count_nonzero(bad_count)))
    ledger.drop("bad_path", int(np.count_nonzero(has_empty & ~bad_count)))
    ok = ~(bad_count | has_empty)
    ledger.rows_used = int(np.count_nonzero(ok))
    ledger.check()
    if ledger.rows_used == 0:
        raise InputError(f"no usable paths ({ledger.summary_line()})", source=name)
    if ledger.rows_dropped:
        warnings.warn(f"{name}: {ledger.summary_line()}", DataWarning, stacklevel=3)

    enc = pc.dictionary_encode(flat)
    vocab = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    order = np.argsort(vocab.astype(str), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes_all = rank[values(enc.indices)].astype(np.int32)
    offsets_all = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    conv_rows = np.flatnonzero(ok & (conv > 0))
    null_rows = np.flatnonzero(ok & (null > 0))
    rows = np.concatenate([conv_rows, null_rows])
    ev = csr_event_index(offsets_all, rows)
    offsets = np.concatenate([[0], np.cumsum(lengths[rows])]).astype(np.int64)
    n_j = len(rows)
    weight = np.concatenate([conv[conv_rows], null[null_rows]])
    jvalue = np.concatenate([value[conv_rows] / conv[conv_rows], np.zeros(len(null_rows))])
    nan = np.full(n_j, np.nan)
    return JourneySet(
        codes=codes_all[ev], offsets=offsets,
        touchpoints=tuple(str(v) for v in vocab[order]),
        outcome=np.concatenate([np.full(len(conv_rows), CONVERSION, np.int8),
                                np.full(len(null_rows), DROPOFF, np.int8)]),
        weight=weight, customer=np.full(n_j, -1, np.int64), customers=np.array([], dtype=str),
        persona=np.full(n_j, -1, np.int32), personas=(), start=nan, end=nan.copy(),
        value=jvalue, times=np.full(len(ev), np.nan), time_kind="none",
        observed_until=float("nan"), gap=None, ledger=ledger,
    )


def _counts(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in table.column_names:
        return np.zeros(table.num_rows), np.zeros(table.num_rows, bool)
    vals, bad = numeric(table[column])
    bad = bad | (vals < 0) | np.isinf(vals)
    return np.where(bad | np.isnan(vals), 0.0, vals), bad


def _strict(name, table, bad_count, has_empty) -> None:
    bad = bad_count | has_empty
    if bad.any():
        row = int(np.argmax(bad))
        col = "path" if has_empty[row] and not bad_count[row] else "total_conversions"
        raise InputError("invalid path row (strict mode)", source=name, row=row + 1,
                         column=col, value=table[col][row].as_py())
