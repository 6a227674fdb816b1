"""Distinct encoded journeys: the sufficient statistics of the stages model (an HMM).

The stages model reads a journey only as a sequence of combined symbols, one per step:
``touchpoint * 5 + exit status``, the status being what follows the step (0 continue,
1 conversion, 2 churn, 3 dropoff, 4 unknown: the last step of a censored journey). A journey
with an outcome but no touchpoint is one step of the pseudo-touchpoint ``(direct)``, always the
last symbol of the alphabet. EM's likelihood is a product over sequences, so the distinct
sequences with their summed weights are sufficient: a log split into parts (files, Dask
partitions) gives the statistics of the whole by adding those of the parts, whose touchpoint
vocabularies are merged on their sorted union (:func:`journeymodel.stats.vocab.align`). A
censored sequence also carries the grid bin of the time it has been silent (what the survival
term of its last step reads, issue 17), and identical sequences silent for different times stay
apart.

:class:`StageStats` bundles them with the few totals the model also reads from journeys (how
many journeys and events, the outcomes, and the timing the simulation draws from). The HMM's
expected counts, the other additive piece of a distributed EM, are
:class:`journeymodel.fit.hmm.EStep` (it has ``+``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeyset import (
    CENSORED,
    CHURN,
    CONVERSION,
    DROPOFF,
    OUTCOMES,
    csr_event_index,
    sequence_keys,
)
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.holding import HoldingStats, bin_of, grid_edges, holding_stats
from journeymodel.stats.vocab import align, recode

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.data.journeyset import JourneySet

#: The pseudo-touchpoint of a journey with an outcome but no touchpoint (last symbol).
DIRECT = "(direct)"
#: What follows a step, by exit status 0..3.
EXITS = ("continue", "conversion", "churn", "dropoff")
#: Exit statuses per touchpoint in the combined alphabet (the four of EXITS and ``UNKNOWN``).
N_STATUS = 5
#: Exit status of the last step of a censored journey (exit unknown: factor 1, or its survival
#: term, :mod:`journeymodel.models.stages.censoring`).
UNKNOWN = 4
#: Exit status of a journey's last step, by :data:`~journeymodel.data.journeys.OUTCOMES` index.
STATUS_OF_OUTCOME = np.array([1, 2, 3, UNKNOWN])
assert (CONVERSION, CHURN, DROPOFF, CENSORED) == (0, 1, 2, 3)


# ---------------------------------------------------------------------------------------------
# Journeys -> combined symbol sequences


@dataclass
class Encoded:
    """Journeys as sequences of combined symbols ``touchpoint * 5 + exit status``.

    ``codes``/``offsets``/``weight`` feed :mod:`journeymodel.fit.hmm`; ``journey`` maps each
    sequence back to a journey (the first of its identical copies when deduplicated).
    """

    codes: np.ndarray
    offsets: np.ndarray
    weight: np.ndarray
    journey: np.ndarray
    n_symbols: int

    @property
    def n_obs(self) -> float:
        return float(np.dot(self.weight, np.diff(self.offsets)))


def encode(journeys: JourneySet, symbols: tuple[str, ...], *, dedupe: bool = True) -> Encoded:
    """Combined-symbol sequences of ``journeys`` over the touchpoint alphabet ``symbols``.

    Touchpoints not in ``symbols`` are left out; empty censored journeys are dropped (they carry
    no information). Vectorised: no loop over journeys or events.
    """
    index = {name: i for i, name in enumerate(symbols)}
    recode = np.array([index.get(t, -1) for t in journeys.touchpoints] or [-1], np.int64)
    x = recode[journeys.codes] if journeys.n_events else np.zeros(0, np.int64)
    known = x >= 0
    lengths = np.bincount(journeys.journey_of_event[known], minlength=journeys.n_journeys)
    outcome = journeys.outcome.astype(np.int64)
    direct = (lengths == 0) & (outcome != CENSORED)
    keep = (lengths > 0) | direct
    new_len = (lengths + direct)[keep]
    offsets = np.zeros(len(new_len) + 1, np.int64)
    np.cumsum(new_len, out=offsets[1:])
    codes = np.full(offsets[-1], index[DIRECT], np.int64)
    first = np.repeat(offsets[:-1] - np.concatenate([[0], np.cumsum(lengths[keep])[:-1]]),
                      lengths[keep])
    codes[first + np.arange(len(first))] = x[known][np.repeat(keep, lengths)]
    status = np.zeros(len(codes), np.int64)
    status[offsets[1:] - 1] = STATUS_OF_OUTCOME[outcome[keep]]
    journey = np.flatnonzero(keep)
    enc = Encoded(codes * N_STATUS + status, offsets, journeys.weight[keep].astype(np.float64),
                  journey, len(symbols) * N_STATUS)
    return dedupe_encoded(enc) if dedupe else enc


def distinct(codes: np.ndarray, offsets: np.ndarray, weight: np.ndarray,
             bins: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Identical sequences merged into one with the summed weight (exact for EM).

    Returns the distinct sequences in the order of their first appearance (``codes``,
    ``offsets``, ``weight``) and ``first``, the index of each one's first copy. Sequences are
    compared by :func:`journeymodel.data.journeyset.sequence_keys`, the one path hash, and,
    when ``bins`` (one int per sequence) is given, by it too: censored sequences silent for
    different times are different data.
    """
    lengths = np.diff(offsets)
    if len(lengths) == 0:
        return codes, offsets, weight, np.zeros(0, np.int64)
    key = sequence_keys(codes, offsets)
    if bins is not None:
        key = np.rec.fromarrays([key, np.asarray(bins, np.int64)])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    summed = np.bincount(inverse, weights=weight, minlength=len(first))
    order = np.argsort(first)  # groups in order of first appearance
    first, summed = first[order], summed[order]
    new_offsets = np.zeros(len(first) + 1, np.int64)
    np.cumsum(lengths[first], out=new_offsets[1:])
    return codes[csr_event_index(offsets, first)], new_offsets, summed, first


def dedupe_encoded(enc: Encoded) -> Encoded:
    """:func:`distinct` sequences of ``enc``, each mapped to its first journey."""
    if len(enc.offsets) == 1:
        return enc
    codes, offsets, weight, first = distinct(enc.codes, enc.offsets, enc.weight)
    return Encoded(codes, offsets, weight, enc.journey[first], enc.n_symbols)


# ---------------------------------------------------------------------------------------------
# The distinct sequences, additive


@dataclass(frozen=True, eq=False)
class SequenceStats(Additive):
    """Distinct combined-symbol sequences with their summed weights: what the HMM's EM reads.

    Sequence ``j`` is ``codes[offsets[j]:offsets[j + 1]]``, each code ``touchpoint * 5 +
    exit status`` over the alphabet ``(*touchpoints, "(direct)")``. Statistics add: ``a + b``
    holds every distinct sequence of both (``a``'s first, in their order, then ``b``'s new
    ones), a sequence in both with the sum of its weights, over the sorted union of the two
    vocabularies; so ``sum(parts)`` of a log split anywhere equals the statistics of the whole,
    up to the order of the sequences (and float rounding of weights that are not whole).

    A censored sequence (its last step's exit unknown) also carries the time it has been
    silent since its last event, binned on the fixed grid of
    :func:`journeymodel.stats.holding.grid_edges` (so parts add up exactly): the stages fit's
    survival term reads it (issue 17, :mod:`journeymodel.models.stages.censoring`). Identical
    sequences in different bins stay apart.

    Attributes
    ----------
    touchpoints : tuple of str
        Touchpoint names (without ``(direct)``).
    codes : ndarray of int64, shape (n_steps,)
    offsets : ndarray of int64, shape (n_sequences + 1,)
    weight : ndarray of float64, shape (n_sequences,)
        Journeys each sequence stands for.
    elapsed_bin : ndarray of int64, shape (n_sequences,), or None
        Grid bin of the time since a censored sequence's last event; -1 for the others and
        where it is unknown (no timestamps). None: unknown for all.

    Examples
    --------
    Two parts that know different touchpoints; the alphabet of the sum is (ad, call, web,
    (direct)), so web followed by a conversion is ``2 * 5 + 1 = 11``:

    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> a = sequence_stats(journeys_from_codes([["ad", "web"], ["web"]],
    ...                                        ["conversion", "dropoff"]))
    >>> b = sequence_stats(journeys_from_codes([["web"], ["call"], []],
    ...                                        ["dropoff", "churn", "conversion"]))
    >>> total = a + b
    >>> total.touchpoints, total.codes.tolist(), total.weight.tolist()
    (('ad', 'call', 'web'), [0, 11, 13, 7, 16], [1.0, 2.0, 1.0, 1.0])
    >>> total.as_lists()
    [['ad', 'web:conversion'], ['web:dropoff'], ['call:churn'], ['(direct):conversion']]
    >>> sum([b, a]).equals(total), total.n_obs
    (True, 6.0)
    """

    touchpoints: tuple[str, ...]
    codes: np.ndarray
    offsets: np.ndarray
    weight: np.ndarray
    elapsed_bin: np.ndarray | None = None

    @property
    def elapsed_bins(self) -> np.ndarray:
        """:attr:`elapsed_bin`, -1 everywhere when it is None."""
        if self.elapsed_bin is None:
            return np.full(self.n_sequences, -1, np.int64)
        return self.elapsed_bin

    @property
    def symbols(self) -> tuple[str, ...]:
        """The touchpoint alphabet: ``(*touchpoints, "(direct)")``."""
        return (*self.touchpoints, DIRECT)

    @property
    def n_symbols(self) -> int:
        """Size of the combined alphabet, ``len(symbols) * 5``."""
        return len(self.symbols) * N_STATUS

    @property
    def n_sequences(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_obs(self) -> float:
        """Weighted number of steps (the sample size of BIC)."""
        return float(np.dot(self.weight, np.diff(self.offsets)))

    def _add(self, other: SequenceStats) -> SequenceStats:
        a, b = self, other
        if a.touchpoints != b.touchpoints:
            union, ia, ib = align(a.touchpoints, b.touchpoints)
            a, b = a.recoded(union, ia), b.recoded(union, ib)
        bins = (None if a.elapsed_bin is None and b.elapsed_bin is None
                else np.concatenate([a.elapsed_bins, b.elapsed_bins]))
        codes, offsets, weight, first = distinct(
            np.concatenate([a.codes, b.codes]),
            np.concatenate([a.offsets, b.offsets[1:] + a.offsets[-1]]),
            np.concatenate([a.weight, b.weight]), bins)
        return SequenceStats(a.touchpoints, codes, offsets, weight,
                             None if bins is None else bins[first])


    def recoded(self, touchpoints: tuple[str, ...], index: np.ndarray) -> SequenceStats:
        """The same sequences over the vocabulary ``touchpoints`` (``touchpoints[index[i]] ==
        self.touchpoints[i]``, from :func:`journeymodel.stats.vocab.align`)."""
        where = np.append(np.asarray(index, np.int64), len(touchpoints))  # (direct) stays last
        codes = recode(self.codes // N_STATUS, where) * N_STATUS + self.codes % N_STATUS
        return SequenceStats(tuple(touchpoints), codes, self.offsets, self.weight,
                             self.elapsed_bin)

    def canonical(self) -> SequenceStats:
        """The same statistics with the sequences sorted by their hash (an order that does not
        depend on how the parts were added)."""
        order = np.lexsort((self.elapsed_bins, sequence_keys(self.codes, self.offsets)))
        offsets = np.zeros(len(order) + 1, np.int64)
        np.cumsum(np.diff(self.offsets)[order], out=offsets[1:])
        return SequenceStats(self.touchpoints, self.codes[csr_event_index(self.offsets, order)],
                             offsets, self.weight[order], None if self.elapsed_bin is None
                             else self.elapsed_bin[order])

    def equals(self, other: SequenceStats, rtol: float = 1e-9) -> bool:
        """The same touchpoints and the same distinct sequences with weights equal to ``rtol``,
        whatever the order of the sequences and of the vocabularies."""
        if set(self.touchpoints) != set(other.touchpoints):
            return False
        a, b = self + _empty(other.touchpoints), other + _empty(self.touchpoints)
        a, b = a.canonical(), b.canonical()
        return (np.array_equal(a.offsets, b.offsets) and np.array_equal(a.codes, b.codes)
                and np.array_equal(a.elapsed_bins, b.elapsed_bins)
                and bool(np.allclose(a.weight, b.weight, rtol=rtol, atol=0.0)))

    def as_lists(self) -> list[list[str]]:
        """Each sequence as a list of ``touchpoint`` or ``touchpoint:exit`` (for reading)."""
        names = np.asarray(self.symbols, dtype=object)[self.codes // N_STATUS]
        status = self.codes % N_STATUS
        steps = [str(n) if s == 0 else f"{n}:{'censored' if s == UNKNOWN else EXITS[s]}"
                 for n, s in zip(names, status, strict=True)]
        return [steps[s:e] for s, e in zip(self.offsets[:-1], self.offsets[1:], strict=True)]


def _empty(touchpoints: tuple[str, ...]) -> SequenceStats:
    return SequenceStats(tuple(touchpoints), np.zeros(0, np.int64), np.zeros(1, np.int64),
                         np.zeros(0))


def sequence_stats(journeys: JourneySet) -> SequenceStats:
    """The distinct combined-symbol sequences of ``journeys`` over all their touchpoints, in
    the order of first appearance, censored ones apart by their elapsed-time bin."""
    enc = encode(journeys, (*journeys.touchpoints, DIRECT), dedupe=False)
    bins = elapsed_bins(journeys, enc)
    codes, offsets, weight, first = distinct(enc.codes, enc.offsets, enc.weight, bins)
    return SequenceStats(tuple(journeys.touchpoints), codes, offsets, weight, bins[first])


def elapsed_bins(journeys: JourneySet, enc: Encoded) -> np.ndarray:
    """Grid bin of ``observed_until - last event time`` of each censored sequence of ``enc``
    (journeys encoded over all their touchpoints, not deduplicated); -1 for the others and
    without timestamps."""
    bins = np.full(len(enc.journey), -1, np.int64)
    if journeys.time_kind == "none" or not len(bins):
        return bins
    j = enc.journey
    cens = (journeys.outcome[j] == CENSORED) & (journeys.lengths[j] > 0)
    elapsed = journeys.observed_until - journeys.times[journeys.offsets[1:][j[cens]] - 1]
    ok = np.isfinite(elapsed)
    idx = np.flatnonzero(cens)[ok]
    bins[idx] = bin_of(elapsed[ok], grid_edges(journeys.time_kind))
    return bins


# ---------------------------------------------------------------------------------------------
# Totals the stages model reads besides the sequences


@dataclass(frozen=True, eq=False)
class JourneyTotals(Additive):
    """Counts and time range of journeys: what the stages model reads besides the sequences.

    Sums and extremes, so they add: journeys, events, weighted outcomes, the number and sum of
    the gaps between consecutive touchpoints of a journey (the simulation's mean step gap), the
    first start, the last end and the end of observation. ``time_kind`` and ``gap`` are
    settings of reading the log: totals read with different ones are refused.

    Attributes
    ----------
    time_kind : str
        ``"datetime"``, ``"period"`` or ``"none"``.
    gap : float or None
        Inactivity gap that ended journeys.
    n_journeys, n_events : int
    outcomes : ndarray of float64, shape (4,)
        Weighted journeys per outcome (:data:`~journeymodel.data.journeys.OUTCOMES`).
    n_gaps : int
    gap_sum : float
    first_start, last_end, observed_until : float
        NaN when unknown (no times).

    Examples
    --------
    >>> nan = float("nan")
    >>> a = JourneyTotals("period", None, 2, 5, np.array([1.0, 0, 1, 0]), 3, 6.0, 1.0, 9.0, 9.0)
    >>> b = JourneyTotals("period", None, 1, 2, np.array([0.0, 0, 0, 1]), 1, 4.0, 3.0, 7.0, nan)
    >>> (a + b).timing()
    {'step_gap': 2.5, 'origin': 1.0, 'span': 8.0}
    >>> (a + b).outcome_counts()
    {'conversion': 1, 'churn': 0, 'dropoff': 1, 'censored': 1}
    """

    time_kind: str
    gap: float | None
    n_journeys: int
    n_events: int
    outcomes: np.ndarray
    n_gaps: int
    gap_sum: float
    first_start: float
    last_end: float
    observed_until: float

    def _add(self, other: JourneyTotals) -> JourneyTotals:
        if self.time_kind != other.time_kind or not _same(self.gap, other.gap):
            raise OptionError(
                "statistics of journeys read with different settings cannot be added (time "
                f"axis {self.time_kind!r} with gap {self.gap} and {other.time_kind!r} with gap "
                f"{other.gap}); read every part with the same options")
        return JourneyTotals(
            self.time_kind, self.gap, self.n_journeys + other.n_journeys,
            self.n_events + other.n_events, self.outcomes + other.outcomes,
            self.n_gaps + other.n_gaps, self.gap_sum + other.gap_sum,
            _fmin(self.first_start, other.first_start), _fmax(self.last_end, other.last_end),
            _fmax(self.observed_until, other.observed_until))


    def timing(self) -> dict[str, float]:
        """Mean gap between consecutive touchpoints of a journey (1 when no journey has two),
        first start and time span up to the end of observation (NaN without times)."""
        if self.time_kind == "none" or self.n_events < 2:
            return {"step_gap": float("nan"), "origin": float("nan"), "span": float("nan")}
        until = self.observed_until if math.isfinite(self.observed_until) else self.last_end
        return {"step_gap": self.gap_sum / self.n_gaps if self.n_gaps else 1.0,
                "origin": self.first_start,
                "span": float(max(until - self.first_start, 0.0))}

    def outcome_counts(self) -> dict[str, float | int]:
        """Weighted journeys per outcome (whole numbers as int, as ``JourneySet`` gives them)."""
        return {name: int(c) if float(c).is_integer() else float(c)
                for name, c in zip(OUTCOMES, self.outcomes, strict=True)}

    def equals(self, other: JourneyTotals, rtol: float = 1e-9) -> bool:
        """Equal counts and settings, float sums equal to ``rtol``."""
        return (self.time_kind == other.time_kind and _same(self.gap, other.gap)
                and (self.n_journeys, self.n_events, self.n_gaps)
                == (other.n_journeys, other.n_events, other.n_gaps)
                and bool(np.allclose(self.outcomes, other.outcomes, rtol=rtol, atol=0.0))
                and bool(np.allclose(
                    [self.gap_sum, self.first_start, self.last_end, self.observed_until],
                    [other.gap_sum, other.first_start, other.last_end, other.observed_until],
                    rtol=rtol, atol=0.0, equal_nan=True)))


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


def _fmin(a: float, b: float) -> float:
    return float(np.fmin(a, b))


def _fmax(a: float, b: float) -> float:
    return float(np.fmax(a, b))


def journey_totals(journeys: JourneySet) -> JourneyTotals:
    """The :class:`JourneyTotals` of ``journeys`` (vectorised)."""
    timed = journeys.time_kind != "none"
    same = journeys.journey_of_event[1:] == journeys.journey_of_event[:-1]
    gaps = np.diff(journeys.times)[same] if timed else np.zeros(0)
    finite = np.isfinite(gaps)
    nan = float("nan")
    has = timed and journeys.n_journeys > 0
    return JourneyTotals(
        journeys.time_kind, journeys.gap, int(journeys.n_journeys), int(journeys.n_events),
        np.bincount(journeys.outcome, weights=journeys.weight, minlength=len(OUTCOMES)),
        int(finite.sum()), float(np.sum(np.where(finite, gaps, 0.0))),
        float(np.fmin.reduce(journeys.start)) if has else nan,
        float(np.fmax.reduce(journeys.end)) if has else nan, float(journeys.observed_until))


# ---------------------------------------------------------------------------------------------
# The stages model's statistics


@dataclass(frozen=True, eq=False)
class StageStats(Additive):
    """All the stages model fits from: the distinct sequences, the journey totals and the
    holding times between events (:class:`~journeymodel.stats.holding.HoldingStats`; None
    without timestamps).

    ``a + b`` adds every part (see :class:`SequenceStats` and :class:`JourneyTotals`).

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> a = stage_stats(journeys_from_codes([["ad", "web"]], ["conversion"]))
    >>> b = stage_stats(journeys_from_codes([["web"], ["ad", "web"]], ["censored", "conversion"]))
    >>> total = a + b
    >>> total.sequences.as_lists(), total.sequences.weight.tolist()
    ([['ad', 'web:conversion'], ['web:censored']], [2.0, 1.0])
    >>> total.totals.n_journeys, total.totals.outcome_counts()["conversion"]
    (3, 2)
    """

    sequences: SequenceStats
    totals: JourneyTotals
    holding: HoldingStats | None = None

    def _add(self, other: StageStats) -> StageStats:
        holding = (None if self.holding is None or other.holding is None
                   else self.holding + other.holding)
        return StageStats(self.sequences + other.sequences, self.totals + other.totals,
                          holding)

    def equals(self, other: StageStats, rtol: float = 1e-9) -> bool:
        same_holding = (self.holding is None and other.holding is None) or (
            self.holding is not None and other.holding is not None
            and self.holding.equals(other.holding, rtol))
        return (self.sequences.equals(other.sequences, rtol)
                and self.totals.equals(other.totals, rtol) and same_holding)


def stage_stats(journeys: JourneySet) -> StageStats:
    """The :class:`StageStats` of ``journeys``."""
    holding = None if journeys.time_kind == "none" else holding_stats(journeys)
    return StageStats(sequence_stats(journeys), journey_totals(journeys), holding)
