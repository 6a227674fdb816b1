"""Journeys: an event log cut into customer journeys, stored as compact arrays.

A :class:`JourneySet` holds variable-length touchpoint sequences the way hmmlearn holds
sequences: one flat ``codes`` array plus ``offsets`` (CSR), so journey ``j`` is
``codes[offsets[j]:offsets[j + 1]]``. Outcome rows (conversion, churn) are not touchpoints: they
set the journey's ``outcome`` and end it.

Segmentation rules (see ``design.md``): a journey ends at a conversion or a churn, or when the
customer is silent for longer than the inactivity gap. A journey without an outcome is a
``dropoff`` if the data go on past its gap, and ``censored`` (still in progress) if not.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeymodel.data.datachecks import conversion_candidates
from journeymodel.data.events import (
    EventTable,
    Ledger,
    ReadOptions,
    parse_gap,
    read_table,
)
from journeymodel.errors import DataWarning, InputError, OptionError

#: Journey outcomes; ``JourneySet.outcome`` holds indices into this tuple.
OUTCOMES = ("conversion", "churn", "dropoff", "censored")
CONVERSION, CHURN, DROPOFF, CENSORED = range(4)


def sequence_keys(codes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A 64-bit key per sequence of a CSR layout, equal for equal sequences (vectorised).

    Each position has its own fixed random multiplier, so the key is a hash of the whole
    sequence; collisions among distinct sequences are negligible (probability ~ n^2 / 2^64).
    The one hash of paths: journeys' paths (:meth:`JourneySet.path_keys`) and the stages
    model's encoded sequences both use it.

    Examples
    --------
    >>> k = sequence_keys(np.array([0, 1, 0, 1, 1]), np.array([0, 2, 4, 5, 5]))
    >>> bool(k[0] == k[1]), bool(k[0] == k[2]), bool(k[2] == k[3])
    (True, False, False)
    """
    lengths = np.diff(offsets)
    n = len(lengths)
    if len(codes) == 0:
        return lengths.astype(np.uint64)
    pos = np.arange(len(codes)) - np.repeat(offsets[:-1], lengths)
    mult = np.random.default_rng(0x5EED).integers(
        1, 2**63, size=int(pos.max()) + 1, dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        terms = (np.asarray(codes).astype(np.uint64) + np.uint64(1)) * mult[pos]
        key = np.zeros(n, np.uint64)
        nonempty = lengths > 0
        key[nonempty] = np.add.reduceat(terms, offsets[:-1][nonempty])
        key += lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return key


@dataclass(frozen=True, eq=False)
class JourneySet:
    """Customer journeys as flat arrays.

    Attributes
    ----------
    codes : ndarray of int32, shape (n_events,)
        Touchpoint codes, indices into ``touchpoints``; journeys are contiguous.
    offsets : ndarray of int64, shape (n_journeys + 1,)
        Journey ``j`` holds ``codes[offsets[j]:offsets[j + 1]]`` (may be empty: a conversion with
        no touchpoint before it).
    touchpoints : tuple of str
        Touchpoint names, sorted.
    outcome : ndarray of int8, shape (n_journeys,)
        Index into :data:`OUTCOMES`.
    weight : ndarray of float64, shape (n_journeys,)
        How many journeys each row stands for (1 for event logs; counts for aggregated paths).
    customer : ndarray of int64, shape (n_journeys,)
        Index into ``customers`` (-1 for aggregated paths, which have no customers).
    customers : ndarray of str, shape (n_customers,)
    persona : ndarray of int32, shape (n_journeys,)
        Index into ``personas``; -1 where unknown.
    personas : tuple of str
    start, end : ndarray of float64, shape (n_journeys,)
        Time of the first and of the last event (the outcome row included); NaN without times.
    value : ndarray of float64, shape (n_journeys,)
        Sum of event values of one journey (revenue of its conversion), 0 where none.
    times : ndarray of float64, shape (n_events,)
        Event times, on the axis given by ``time_kind``: ``"datetime"`` (seconds since the Unix
        epoch, UTC), ``"period"`` (plain period numbers) or ``"none"`` (aggregated paths, NaN).
    sentiment : ndarray of float64, shape (n_events,), or None
        Sentiment scaled to -1..1, NaN where unscored.
    device : ndarray of int32, shape (n_events,), or None
        Index into ``devices``; -1 where unknown.
    devices : tuple of str
    observed_until : float
        End of observation on the time axis.
    gap : float or None
        Inactivity gap used for segmentation, on the time axis.
    ledger : Ledger
        Where every input row went.
    """

    codes: np.ndarray
    offsets: np.ndarray
    touchpoints: tuple[str, ...]
    outcome: np.ndarray
    weight: np.ndarray
    customer: np.ndarray
    customers: np.ndarray
    persona: np.ndarray
    personas: tuple[str, ...]
    start: np.ndarray
    end: np.ndarray
    value: np.ndarray
    times: np.ndarray
    time_kind: str
    observed_until: float
    gap: float | None
    ledger: Ledger
    sentiment: np.ndarray | None = None
    device: np.ndarray | None = None
    devices: tuple[str, ...] = ()

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_journeys(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.codes)

    @property
    def lengths(self) -> np.ndarray:
        """Number of touchpoints of each journey, shape (n_journeys,)."""
        return np.diff(self.offsets)

    @property
    def journey_of_event(self) -> np.ndarray:
        """Journey index of each event, shape (n_events,)."""
        return np.repeat(np.arange(self.n_journeys), self.lengths)

    def __len__(self) -> int:
        return self.n_journeys

    def __repr__(self) -> str:
        return (f"JourneySet({self.n_journeys} journeys, {self.n_events} events, "
                f"{len(self.touchpoints)} touchpoints, {len(self.personas)} personas)")

    # -- selections --------------------------------------------------------------------------
    def take(self, index: np.ndarray) -> JourneySet:
        """The journeys at ``index`` (integer indices or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        ev = csr_event_index(self.offsets, index)
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        pick = lambda a: None if a is None else a[ev]  # noqa: E731
        return replace(
            self, codes=self.codes[ev], offsets=offsets, outcome=self.outcome[index],
            weight=self.weight[index], customer=self.customer[index],
            persona=self.persona[index], start=self.start[index], end=self.end[index],
            value=self.value[index], times=self.times[ev], sentiment=pick(self.sentiment),
            device=pick(self.device),
        )

    def split(self, fraction: float, seed: int | np.random.Generator = 0):
        """Randomly split journeys into (train, holdout) with ``fraction`` held out."""
        if not 0.0 < fraction < 1.0:
            raise OptionError(f"--holdout must be between 0 and 1 (got {fraction})")
        rng = np.random.default_rng(seed)
        mask = rng.random(self.n_journeys) < fraction
        return self.take(~mask), self.take(mask)

    # -- summaries ---------------------------------------------------------------------------
    def outcome_counts(self) -> dict[str, float]:
        """Weighted number of journeys per outcome."""
        counts = np.bincount(self.outcome, weights=self.weight, minlength=len(OUTCOMES))
        return {name: _num(c) for name, c in zip(OUTCOMES, counts, strict=True)}

    def touchpoint_counts(self) -> dict[str, float]:
        w = np.repeat(self.weight, self.lengths)
        counts = np.bincount(self.codes, weights=w, minlength=len(self.touchpoints))
        return {name: _num(c) for name, c in zip(self.touchpoints, counts, strict=True)}

    def persona_customers(self) -> dict[str, int]:
        """Number of distinct customers per persona."""
        known = (self.persona >= 0) & (self.customer >= 0)
        pairs = np.unique(np.stack([self.customer[known], self.persona[known]]), axis=1)
        counts = np.bincount(pairs[1], minlength=len(self.personas)) if pairs.size else (
            np.zeros(len(self.personas), int))
        return {p: int(c) for p, c in zip(self.personas, counts, strict=True)}

    def path_keys(self) -> np.ndarray:
        """A 64-bit key per journey, equal for equal paths (see :func:`sequence_keys`)."""
        return sequence_keys(self.codes, self.offsets)

    def path_strings(self, sep: str = " > ") -> np.ndarray:
        """Each journey's path as text, e.g. ``"email > web"`` (for display, not hot paths)."""
        names = np.asarray(self.touchpoints, dtype=object)
        parts = np.split(names[self.codes], self.offsets[1:-1])
        return np.array([sep.join(p) for p in parts], dtype=object)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def csr_event_index(offsets: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Flat event indices of the journeys at ``index``, concatenated (vectorised gather)."""
    starts = offsets[:-1][index]
    lengths = offsets[1:][index] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + shift


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
    table, name = read_table(source, options)
    if is_path_table(table.column_names, options):
        from journeymodel.data.paths import journeys_from_paths

        return journeys_from_paths(table, name, options)
    from journeymodel.data.events import events_from_table

    return build_journeys(events_from_table(table, name, options), options)


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
    row_outcome = outcome_of_label[events.touchpoint]  # -1 for touchpoints
    n = len(cust)
    new = np.ones(n, bool)
    new[1:] = (cust[1:] != cust[:-1]) | (row_outcome[:-1] >= 0)
    if gap is not None:
        new[1:] |= np.diff(time) > gap
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

    is_tp = row_outcome < 0
    tp_labels = [i for i, o in enumerate(outcome_of_label) if o < 0]
    recode = np.full(len(events.labels), -1, np.int32)
    recode[tp_labels] = np.arange(len(tp_labels), dtype=np.int32)
    lengths = (np.add.reduceat(is_tp, first, dtype=np.int64) if n_j
               else np.zeros(0, np.int64))  # touchpoints per journey (rows are contiguous)
    offsets = np.zeros(n_j + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])

    persona_of_customer = _persona_per_customer(events, cust)
    if np.isnan(events.value).all():  # no values: no journey index per row needed
        value = np.zeros(n_j)
    else:
        jid = np.repeat(np.arange(n_j), np.diff(np.append(first, n)))
        value = np.bincount(jid, weights=np.nan_to_num(events.value), minlength=n_j)
    return JourneySet(
        codes=recode[events.touchpoint[is_tp]],
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
        times=events.time[is_tp],
        time_kind=events.time_kind,
        observed_until=events.observed_until,
        gap=gap,
        ledger=events.ledger,
        sentiment=None if events.sentiment is None else events.sentiment[is_tp],
        device=None if events.device is None else events.device[is_tp],
        devices=events.devices,
    )


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
    if not (out < 0).any() and labels:
        raise InputError(
            "every row is an outcome label; the log has no touchpoints "
            f"(labels {list(labels)})", source=None)
    return out


def _persona_per_customer(events: EventTable, cust: np.ndarray) -> np.ndarray:
    """First known persona of each customer (in time order); notes customers with several."""
    n_c = len(events.customers)
    persona = events.persona
    out = np.full(n_c, -1, np.int32)
    known = persona >= 0
    if not known.any():
        return out
    kc, kp = cust[known], persona[known]
    uc, first = np.unique(kc, return_index=True)
    out[uc] = kp[first]
    pairs = np.unique(np.stack([kc, kp]), axis=1)
    conflicts = int(np.count_nonzero(np.bincount(pairs[0], minlength=n_c) > 1))
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
