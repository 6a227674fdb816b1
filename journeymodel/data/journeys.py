"""Journeys: an event log (or a path table) cut into customer journeys, a :class:`JourneySet`.

Segmentation rules (see ``docs/architecture.md``, "Journeys"): a journey ends at a conversion or
a churn, or when the customer is silent for longer than the inactivity gap. A journey without an
outcome is a ``dropoff`` if the data go on past its gap, and ``censored`` (still in progress) if
not. The journey set itself (CSR arrays, outcome codes) lives in
:mod:`journeymodel.data.journeyset`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from journeymodel.data.datachecks import conversion_candidates
from journeymodel.data.events import EventTable, events_from_table
from journeymodel.data.journeyset import (
    CENSORED,
    CHURN,
    CONVERSION,
    DROPOFF,
    OUTCOMES,
    JourneySet,
    csr_event_index,
    sequence_keys,
)
from journeymodel.data.ledger import Ledger
from journeymodel.data.memory import reuse_freed_memory
from journeymodel.data.options import ReadOptions, parse_gap
from journeymodel.data.ordering import lookup
from journeymodel.data.paths import journeys_from_paths
from journeymodel.data.readers import read_table
from journeymodel.errors import DataWarning, InputError, OptionError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: The journey set's names are this module's too: a JourneySet is what it builds, and code
#: across the package imports them from here.
__all__ = ["CENSORED", "CHURN", "CONVERSION", "DROPOFF", "OUTCOMES", "JourneySet",
           "build_journeys", "csr_event_index", "is_path_table", "journeys_from_codes",
           "load_journeys", "sequence_keys"]


# ---------------------------------------------------------------------------------------------
# Building journeys from events


def load_journeys(source: str | Path | pd.DataFrame, options: ReadOptions | None = None,
                  **overrides: Any) -> JourneySet:
    """Read an event log (or a ChannelAttribution path table) and cut it into journeys.

    Parameters
    ----------
    source : path or DataFrame
        Event log (CSV, Parquet, DataFrame), or an aggregated path table with columns ``path``
        (``"a > b > c"``), ``total_conversions``, ``total_null`` and optionally
        ``total_conversion_value``, detected automatically and kept as weighted unique paths.
    options : ReadOptions, optional
        Reading and segmentation options; keyword ``overrides`` replace fields.

    Returns
    -------
    JourneySet

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"customer_id": ["a"] * 3, "timestamp": [1, 2, 3],
    ...                    "touchpoint": ["email", "web", "conversion"]})
    >>> js = load_journeys(df)
    >>> js.n_journeys, js.path_strings()[0], js.outcome_counts()["conversion"]
    (1, 'email > web', 1)
    """
    options = options or ReadOptions()
    if overrides:
        options = options.replace(**overrides)
    with reuse_freed_memory():  # the arrays of reading and of cutting reuse each other's pages
        table, name = read_table(source, options)
        if is_path_table(table.column_names, options):
            return journeys_from_paths(table, name, options)
        events = events_from_table(table, name, options)
        del table  # the Arrow columns are no longer needed while the journeys are cut
        return build_journeys(events, options)


def is_path_table(columns: Sequence[str], options: ReadOptions) -> bool:
    """An aggregated ChannelAttribution table: ``path`` + ``total_conversions``, no time."""
    return ("path" in columns and "total_conversions" in columns
            and options.time_col not in columns)


def build_journeys(events: EventTable, options: ReadOptions | None = None) -> JourneySet:
    """Cut validated events into journeys (vectorised: one sort, then numpy)."""
    options = options or ReadOptions()
    gap = parse_gap(options.gap, events.time_kind)
    outcome_of_label = _outcome_of_label(events.labels, options)
    cust = events.customer  # EventTable rows come sorted by customer and time
    time = events.time
    row_outcome = lookup(outcome_of_label, events.touchpoint)  # -1 for touchpoints
    n = len(cust)
    is_tp = row_outcome < 0
    tp_labels = [i for i, o in enumerate(outcome_of_label) if o < 0]
    recode = np.full(len(events.labels), -1, np.int32)
    recode[tp_labels] = np.arange(len(tp_labels), dtype=np.int32)

    def per_event():  # the touchpoint rows' codes and fields
        return (lookup(recode, np.compress(is_tp, events.touchpoint), in_place=True),
                np.compress(is_tp, events.time),
                None if events.sentiment is None else np.compress(is_tp, events.sentiment),
                None if events.device is None else np.compress(is_tp, events.device))

    # from THREAD_ROWS rows, in a thread beside the journeys' own arrays (numpy frees the GIL)
    pool = ThreadPoolExecutor(1) if n >= THREAD_ROWS else None
    try:
        beside = pool.submit(per_event) if pool is not None else None
        new = _journey_starts(cust, row_outcome, time, gap)
        first = np.flatnonzero(new)
        n_j = len(first)
        last = np.append(first[1:] - 1, n - 1)
        del new
        if not (outcome_of_label == CONVERSION).any():
            _warn_no_conversions(events, options, first)

        outcome = row_outcome[last].astype(np.int8)
        open_ = outcome < 0
        if gap is None:
            outcome[open_] = CENSORED
        else:
            quiet_long_enough = (events.observed_until - time[last]) > gap
            outcome[open_] = np.where(quiet_long_enough[open_], DROPOFF, CENSORED)
        # touchpoints per journey: its rows, less its outcome row (an outcome row ends a
        # journey, so it can only be its last): per journey, not per row
        lengths = last - first + 1 - (row_outcome[last] >= 0)
        offsets = np.zeros(n_j + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])

        persona_of_customer = _persona_per_customer(events, cust)
        if np.isnan(events.value).all():  # no values: no journey index per row needed
            value = np.zeros(n_j)
        else:
            jid = np.repeat(np.arange(n_j), np.diff(np.append(first, n)))
            value = np.bincount(jid, weights=np.nan_to_num(events.value), minlength=n_j)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    codes, times, sentiment, device = per_event() if beside is None else beside.result()
    return JourneySet(
        codes=codes,
        offsets=offsets,
        touchpoints=tuple(events.labels[i] for i in tp_labels),
        outcome=outcome,
        weight=np.ones(n_j),
        customer=cust[first],
        customers=events.customers,
        persona=persona_of_customer[cust[first]],
        personas=events.personas,
        start=time[first],
        end=time[last],
        value=value,
        times=times,
        time_kind=events.time_kind,
        observed_until=events.observed_until,
        gap=gap,
        ledger=events.ledger,
        sentiment=sentiment,
        device=device,
        devices=events.devices,
    )


#: From this many rows, the touchpoint rows' codes and times are taken in a thread beside the
#: journeys' own arrays.
THREAD_ROWS = 1 << 18

#: Rows :func:`_journey_starts` compares at a time (its scratch arrays stay in the cache).
_BLOCK = 1 << 16


def _journey_starts(cust: np.ndarray, row_outcome: np.ndarray, time: np.ndarray,
                    gap: float | None) -> np.ndarray:
    """Mask of the rows that start a journey: the first row, a new customer, the row after an
    outcome, or (with ``gap``) a silence longer than ``gap`` since the previous row. By blocks
    of rows, so no array of n time differences is made (8M rows: 64 MB of fresh memory).

    Examples
    --------
    >>> _journey_starts(np.array([0, 0, 0, 1, 1]), np.array([-1, 0, -1, -1, -1]),
    ...                 np.array([0.0, 1.0, 2.0, 3.0, 9.0]), 5.0).tolist()
    [True, False, True, True, True]
    """
    n = len(cust)
    new = np.ones(n, bool)
    diff = np.empty(min(_BLOCK, n), np.float64)
    late = np.empty(min(_BLOCK, n), bool)
    for a in range(1, n, _BLOCK):  # new[a:b] from rows a-1..b-1
        b = min(a + _BLOCK, n)
        out = new[a:b]
        np.not_equal(cust[a:b], cust[a - 1:b - 1], out=out)
        np.greater_equal(row_outcome[a - 1:b - 1], 0, out=late[:b - a])
        out |= late[:b - a]
        if gap is not None:
            np.subtract(time[a:b], time[a - 1:b - 1], out=diff[:b - a])
            np.greater(diff[:b - a], gap, out=late[:b - a])
            out |= late[:b - a]
    return new


def _warn_no_conversions(events: EventTable, options: ReadOptions, first: np.ndarray) -> None:
    """No row carries a conversion label: say so once, naming touchpoints that look like
    conversions (by name and by ending most journeys they appear in) and the option."""
    found = conversion_candidates(events.labels, events.touchpoint, first,
                                  exclude={options.churn_label}, value=events.value)
    given = ", ".join(repr(lab) for lab in options.conversion_labels)
    text = (f"{events.ledger.source}: no conversion rows: no touchpoint is labelled {given} "
            "(--conversion-label), so every journey ends in churn, drop-off or censored")
    if found:
        text += ". Touchpoints that look like conversions: " + ", ".join(
            f"{lab!r} ({why})" for lab, why in found)
        text += (f". If one of them is the conversion, pass --conversion-label {found[0][0]} "
                 "(repeatable)")
    else:
        text += "; if the log has conversions, name their touchpoint with --conversion-label"
    warnings.warn(text, DataWarning, stacklevel=3)


def _outcome_of_label(labels: tuple[str, ...], options: ReadOptions) -> np.ndarray:
    conv = set(options.conversion_labels)
    if options.churn_label in conv:
        raise OptionError(
            f"--churn-label {options.churn_label!r} is also a --conversion-label")
    out = np.full(len(labels), -1, np.int8)
    for i, lab in enumerate(labels):
        if lab in conv:
            out[i] = CONVERSION
        elif lab == options.churn_label:
            out[i] = CHURN
    if not (out < 0).any() and labels and options.touchpoints_required:
        raise InputError(
            "every row is an outcome label; the log has no touchpoints "
            f"(labels {list(labels)}); a transaction log (every row a purchase) fits "
            "`journeymodel fit churn --model bgnbd --conversion-label LABEL`", source=None)
    return out


def _persona_per_customer(events: EventTable, cust: np.ndarray) -> np.ndarray:
    """First known persona of each customer (in time order); notes customers with several."""
    n_c = len(events.customers)
    persona = events.persona
    out = np.full(n_c, -1, np.int32)
    if persona.strides == (0,) and persona.size and persona[0] < 0:  # no persona column
        return out
    known = persona >= 0
    if not known.any():
        return out
    kc, kp = cust[known], persona[known]
    if not bool(np.all(kc[1:] >= kc[:-1])):  # EventTables come sorted by customer
        by_customer = np.argsort(kc, kind="stable")  # keeps each customer's time order
        kc, kp = kc[by_customer], kp[by_customer]
    # each customer's rows are a run: its first persona starts it; several personas show as
    # a change inside a run (np.unique over (customer, persona) pairs took seconds at 4M rows)
    start = np.ones(len(kc), bool)
    np.not_equal(kc[1:], kc[:-1], out=start[1:])
    out[kc[start]] = kp[start]
    changed = kc[1:][~start[1:] & (kp[1:] != kp[:-1])]
    conflicts = int(np.count_nonzero(changed[1:] != changed[:-1])) + int(changed.size > 0)
    if conflicts:
        note = (f"{conflicts} customers have more than one persona; "
                "each keeps its first (in time order)")
        if note not in events.ledger.notes:
            events.ledger.notes.append(note)
    return out


def journeys_from_codes(
    sequences: Sequence[Sequence[str]], outcomes: Sequence[str], *,
    weights: Sequence[float] | None = None, touchpoints: Sequence[str] | None = None,
) -> JourneySet:
    """Build a small JourneySet from Python lists (tests, examples, hand-worked cases).

    Examples
    --------
    >>> js = journeys_from_codes([["c1", "c2", "c3"], ["c1"], ["c2", "c3"]],
    ...                          ["conversion", "dropoff", "dropoff"])
    >>> js.touchpoints, js.lengths.tolist()
    (('c1', 'c2', 'c3'), [3, 1, 2])
    """
    names = tuple(sorted(touchpoints or {t for s in sequences for t in s}))
    index = {t: i for i, t in enumerate(names)}
    lengths = np.array([len(s) for s in sequences], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    codes = np.array([index[t] for s in sequences for t in s], np.int32)
    unknown = set(outcomes) - set(OUTCOMES)
    if unknown:
        raise OptionError(f"outcomes must be among {OUTCOMES} (got {sorted(unknown)})")
    n = len(sequences)
    nan = np.full(n, np.nan)
    return JourneySet(
        codes=codes, offsets=offsets, touchpoints=names,
        outcome=np.array([OUTCOMES.index(o) for o in outcomes], np.int8),
        weight=np.ones(n) if weights is None else np.asarray(weights, np.float64),
        customer=np.full(n, -1, np.int64), customers=np.array([], dtype=str),
        persona=np.full(n, -1, np.int32), personas=(), start=nan, end=nan.copy(),
        value=np.zeros(n), times=np.full(len(codes), np.nan), time_kind="none",
        observed_until=float("nan"), gap=None,
        ledger=Ledger(source="<sequences>", rows_read=n, rows_used=n),
    )
