"""Customers' bags of distinct encoded journeys: the sufficient statistics of behavioural segments.

A segment model (:mod:`journeymodel.models.segments`) is a mixture over customers: all of a
customer's journeys come from one segment's process, so its likelihood is a product over
customers of a sum over segments of products over that customer's journeys. What it reads of a
log is therefore, for every customer, which distinct journeys (combined-symbol sequences, as
the stages model encodes them: :mod:`journeymodel.stats.sequences`) they made and how often.
:class:`SegmentStats` holds the distinct sequences once and the (customer, sequence, count)
pairs; two parts add by merging sequences on their sorted touchpoint union and customers on
their ids, so a customer split across parts counts once with all their journeys.

An in-flight (censored) journey also carries the time it has been silent since its last event
(its grid bin, as :class:`~journeymodel.stats.sequences.SequenceStats` keeps it: identical
censored journeys silent for different times are different sequences), and the statistics hold
the holding times between events (:class:`~journeymodel.stats.holding.HoldingStats`), so the
segments' fit can give a censored journey's last step its survival term (issue 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeyset import csr_event_index, sequence_keys
from journeymodel.errors import InputError
from journeymodel.stats.additive import Additive
from journeymodel.stats.holding import HoldingStats, holding_stats
from journeymodel.stats.sequences import (
    DIRECT,
    JourneyTotals,
    SequenceStats,
    elapsed_bins,
    encode,
    journey_totals,
)
from journeymodel.stats.vocab import align

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.data.journeyset import JourneySet


def distinct_index(codes: np.ndarray, offsets: np.ndarray, bins: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct sequences of a CSR layout in order of first appearance.

    With ``bins`` (one int per sequence: a censored sequence's elapsed-time bin), sequences
    are told apart by it too.

    Returns
    -------
    codes, offsets : ndarray
        The distinct sequences.
    index : ndarray of int64, shape (n_sequences,)
        The distinct sequence of every input sequence.

    Examples
    --------
    >>> c, o, i = distinct_index(np.array([3, 4, 5, 3, 4]), np.array([0, 2, 3, 5]))
    >>> c.tolist(), o.tolist(), i.tolist()
    ([3, 4, 5], [0, 2, 3], [0, 1, 0])
    """
    n = len(offsets) - 1
    if n == 0:
        return codes[:0], offsets[:1], np.zeros(0, np.int64)
    key = sequence_keys(codes, offsets)
    if bins is not None:
        key = np.rec.fromarrays([key, np.asarray(bins, np.int64)])
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first)  # distinct sequences in order of first appearance
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    first = first[order]
    lengths = np.diff(offsets)[first]
    new_offsets = np.zeros(len(first) + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    return codes[csr_event_index(offsets, first)], new_offsets, rank[inverse.ravel()]


@dataclass(frozen=True, eq=False)
class SegmentStats(Additive):
    """Distinct encoded journeys and how often each customer made each: what a segment model
    is fitted from.

    ``a + b`` merges the sequences on the sorted union of the touchpoints and the customers on
    their ids (a customer in both parts keeps the journeys of both; equal pairs add their
    counts), so ``sum(parts)`` of a log split anywhere equals the statistics of the whole up to
    the order of sequences and float rounding.

    Attributes
    ----------
    sequences : SequenceStats
        The distinct combined-symbol sequences; ``weight`` is the journeys each stands for,
        ``elapsed_bin`` a censored one's time silent (grid bin; -1 for the others).
    customers : ndarray of str, shape (n_customers,)
        Customer ids, sorted (every customer with a journey, those whose journeys carry no
        information too: their membership is the segments' shares).
    pair_customer, pair_sequence : ndarray of int64, shape (n_pairs,)
        Index into ``customers`` and into the sequences.
    pair_weight : ndarray of float64, shape (n_pairs,)
        Journeys of that customer that are that sequence.
    totals : JourneyTotals
        Counts, outcomes and timing of the journeys.
    holding : HoldingStats or None
        Holding times between events (None without timestamps, or when not asked for).

    Examples
    --------
    Customer ``a`` made the journey ``web > conversion`` in each part:

    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> from dataclasses import replace
    >>> def part(seqs, outs, who):
    ...     js = journeys_from_codes(seqs, outs)
    ...     ids, cust = np.unique(who, return_inverse=True)
    ...     return segment_stats(replace(js, customer=cust.astype(np.int64), customers=ids))
    >>> s = part([["web"], ["ad"]], ["conversion", "dropoff"], ["a", "b"]) + part(
    ...     [["web"]], ["conversion"], ["a"])
    >>> s.customers.tolist(), s.pair_weight.tolist(), s.sequences.as_lists()
    (['a', 'b'], [2.0, 1.0], [['web:conversion'], ['ad:dropoff']])
    """

    sequences: SequenceStats
    customers: np.ndarray
    pair_customer: np.ndarray
    pair_sequence: np.ndarray
    pair_weight: np.ndarray
    totals: JourneyTotals
    holding: HoldingStats | None = None

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    def _add(self, other: SegmentStats) -> SegmentStats:
        a, b = self.sequences, other.sequences
        if a.touchpoints != b.touchpoints:
            union, ia, ib = align(a.touchpoints, b.touchpoints)
            a, b = a.recoded(union, ia), b.recoded(union, ib)
        bins = np.concatenate([a.elapsed_bins, b.elapsed_bins])
        codes, offsets, index = distinct_index(
            np.concatenate([a.codes, b.codes]),
            np.concatenate([a.offsets, b.offsets[1:] + a.offsets[-1]]), bins)
        seq = np.concatenate([index[self.pair_sequence],
                              index[a.n_sequences + other.pair_sequence]])
        ids = np.union1d(self.customers, other.customers)
        cust = np.concatenate([np.searchsorted(ids, self.customers)[self.pair_customer],
                               np.searchsorted(ids, other.customers)[other.pair_customer]])
        _, first = np.unique(index, return_index=True)  # each distinct sequence's first copy
        holding = (None if self.holding is None or other.holding is None
                   else self.holding + other.holding)
        return merge_pairs(a.touchpoints, codes, offsets, bins[first], ids, cust, seq,
                           np.concatenate([self.pair_weight, other.pair_weight]),
                           self.totals + other.totals, holding)

    def equals(self, other: SegmentStats, rtol: float = 1e-9) -> bool:
        """The same customers with the same journeys (in any order of the sequences)."""
        same_holding = (self.holding is None and other.holding is None) or (
            self.holding is not None and other.holding is not None
            and self.holding.equals(other.holding, rtol))
        if not (same_holding and np.array_equal(self.customers, other.customers)
                and self.sequences.equals(other.sequences, rtol)
                and self.totals.equals(other.totals, rtol)):
            return False
        return all(np.array_equal(x, y) or np.allclose(x, y, rtol=rtol, atol=0.0)
                   for x, y in zip(self.pair_table(), other.pair_table(), strict=True))

    def pair_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(customer id, sequence as text, count) of every pair, sorted (for comparisons); a
        censored sequence's text ends with its elapsed-time bin."""
        bins = self.sequences.elapsed_bins
        text = np.array([" ".join(s) + (f" @{b}" if b >= 0 else "") for s, b in
                         zip(self.sequences.as_lists(), bins, strict=True)] or [""],
                        dtype=object)
        cust = self.customers[self.pair_customer].astype(object)
        seq = text[self.pair_sequence] if len(self.pair_sequence) else np.zeros(0, object)
        order = np.lexsort((seq.astype(str), cust.astype(str)))
        return cust[order], seq[order], self.pair_weight[order]


def merge_pairs(touchpoints: tuple[str, ...], codes: np.ndarray, offsets: np.ndarray,
                bins: np.ndarray, customers: np.ndarray, cust: np.ndarray, seq: np.ndarray,
                weight: np.ndarray, totals: JourneyTotals,
                holding: HoldingStats | None = None) -> SegmentStats:
    """A :class:`SegmentStats` with equal (customer, sequence) pairs merged, counts summed
    (``bins``: each distinct sequence's elapsed-time bin)."""
    n_seq = len(offsets) - 1
    key = cust.astype(np.int64) * max(n_seq, 1) + seq
    uniq, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=weight, minlength=len(uniq))
    seq_weight = np.bincount(uniq % max(n_seq, 1), weights=summed, minlength=n_seq)
    return SegmentStats(SequenceStats(tuple(touchpoints), codes, offsets, seq_weight,
                                      np.asarray(bins, np.int64)),
                        customers, uniq // max(n_seq, 1), uniq % max(n_seq, 1), summed, totals,
                        holding)


def segment_stats(journeys: JourneySet, symbols: tuple[str, ...] | None = None, *,
                  holding: bool = True) -> SegmentStats:
    """The :class:`SegmentStats` of ``journeys`` (vectorised: no loop over customers).

    Parameters
    ----------
    journeys : JourneySet
        Journeys of an event log (each with its customer).
    symbols : tuple of str, optional
        Touchpoint alphabet ending in ``(direct)`` (a fitted model's); touchpoints outside it
        are left out. Default: every touchpoint of ``journeys``.
    holding : bool
        Take the holding times too (what a fit needs; membership of new journeys does not).

    Raises
    ------
    InputError
        Journeys without customers (an aggregated path table).
    """
    if journeys.n_journeys and (journeys.customer < 0).any():
        raise InputError("segments group customers, and these journeys have no customer ids "
                         "(an aggregated path table?); use an event log with a customer column")
    symbols = (*journeys.touchpoints, DIRECT) if symbols is None else tuple(symbols)
    enc = encode(journeys, symbols, dedupe=False)
    bins = elapsed_bins(journeys, enc)
    codes, offsets, index = distinct_index(enc.codes, enc.offsets, bins)
    used, cust_of_journey = np.unique(journeys.customer, return_inverse=True)
    ids = np.asarray(journeys.customers, dtype=str)[used] if len(used) else np.zeros(0, str)
    order = np.argsort(ids, kind="stable")  # customers sorted by id
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    cust = rank[cust_of_journey.ravel()][enc.journey]
    _, first = np.unique(index, return_index=True)  # each distinct sequence's first copy
    hold = holding_stats(journeys) if holding and journeys.time_kind != "none" else None
    return merge_pairs(tuple(symbols[:-1]), codes, offsets, bins[first], ids[order], cust,
                       index, enc.weight, journey_totals(journeys), hold)
