"""The Markov statistic: transitions between touchpoint windows, dwell, heuristics, totals.

States follow ChannelAttribution's ``markov_model`` so that results can be compared with it:

* at order ``k`` a state is a window of ``k`` consecutive touchpoints; a journey enters its first
  window (its first ``min(k, L)`` touchpoints) straight from the start state, then slides one
  touchpoint at a time. A journey shorter than ``k`` is a single state holding its whole path.
* with ``collapse_repeats`` (the default, as ChannelAttribution does) consecutive identical states
  are merged, so at order 1 ``email > email > web`` is ``email > web``.
* absorbing states: ``conversion``, ``dropoff`` and ``churn`` (where the data have churn).
  Censored journeys contribute their transitions but no absorption.

A state is encoded as one integer: with ``base = n_touchpoints + 1`` the window
``(c_1, ..., c_j)`` (oldest first, ``j <= k``) is ``sum_i (c_i + 1) * base**(j - i)``, so the
empty window, ``0``, is the start state and the newest touchpoint is the lowest digit.
Absorbing states have negative keys. Counting works on whole arrays (no loop per journey).

:class:`TransitionCounts` of two parts of a log add up to those of the whole, whatever
touchpoints each part knows: keys are decoded, their codes mapped onto the sorted union of both
vocabularies (:func:`journeymodel.stats.vocab.align`) and encoded again. :class:`MarkovStats`
bundles them with everything else a Markov model is fitted from (first/last/linear touch totals,
the range of journey starts, conversion totals and the experience statistic), so that
``MarkovJourneyModel.fit_stats`` needs no journeys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeyset import (
    CENSORED,
    CHURN,
    CONVERSION,
    DROPOFF,
    OUTCOMES,
    JourneySet,
)
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.holding import HoldingStats, bin_of, grid_edges, holding_stats
from journeymodel.stats.vocab import recode, union

if TYPE_CHECKING:  # imported where counted: attribution alone needs no experience (issue 20)
    from journeymodel.stats.experience import ExperienceStats

#: Absorbing states, in the order they follow the transient states.
ABSORBING = ("conversion", "dropoff", "churn")
#: Key of each outcome's absorbing state (indexed by journeys.OUTCOMES code).
ABSORBING_KEYS = {CONVERSION: -1, DROPOFF: -2, CHURN: -3}
#: The first/last/linear touch heuristics, in the order of :class:`MarkovStats`' rows.
HEURISTICS = ("first", "last", "linear")


def state_base(n_touchpoints: int, order: int) -> int:
    """The integer base of window keys; raises OptionError if keys would overflow int64."""
    base = n_touchpoints + 1
    if order < 1 or order > 4:
        raise OptionError(f"order must be 1, 2, 3, 4 or 'auto' (got {order!r})")
    if float(base) ** (order + 1) >= 2.0**62:
        raise OptionError(f"order {order} with {n_touchpoints} touchpoints is too large "
                          "to encode; use a lower order")
    return base


def decode_keys(keys: np.ndarray, base: int, order: int) -> np.ndarray:
    """Window keys -> touchpoint codes, shape (n, order), oldest first, -1 padded at the end."""
    keys = np.asarray(keys, np.int64)
    digits = np.stack([(keys // base**p) % base for p in range(order - 1, -1, -1)], axis=1) - 1
    # windows shorter than `order` have leading zeros (-1 after the shift): move them to the end
    n_pad = (digits < 0).sum(axis=1)
    idx = (np.arange(order)[None, :] + n_pad[:, None]) % order
    out = np.take_along_axis(digits, idx, axis=1)
    out[np.arange(order)[None, :] >= order - n_pad[:, None]] = -1
    return out


def encode_windows(codes: np.ndarray, base: int) -> np.ndarray:
    """Touchpoint codes, shape (n, order), oldest first, -1 padded at the end -> window keys
    (the inverse of :func:`decode_keys`).

    Examples
    --------
    >>> keys = np.array([0, 1, 7, 14])
    >>> encode_windows(decode_keys(keys, 4, 2), 4).tolist()
    [0, 1, 7, 14]
    """
    codes = np.asarray(codes, np.int64)
    key = np.zeros(codes.shape[0], np.int64)
    for p in range(codes.shape[1]):  # loop over window positions (at most 4)
        c = codes[:, p]
        key = np.where(c >= 0, key * base + c + 1, key)
    return key


def recode_keys(keys: np.ndarray, index: np.ndarray, base: int, new_base: int,
                order: int) -> np.ndarray:
    """Window keys re-encoded after mapping their touchpoint codes through ``index`` (from
    :func:`journeymodel.stats.vocab.align`); negative (absorbing) keys stay as they are."""
    keys = np.asarray(keys, np.int64)
    out = keys.copy()
    pos = keys >= 0
    codes = recode(decode_keys(keys[pos], base, order), index)
    out[pos] = encode_windows(codes, new_base)
    return out


@dataclass(frozen=True)
class StateSequences:
    """Each journey's sequence of state keys (CSR), with the time each state was entered."""

    keys: np.ndarray  # (n_occurrences,) int64
    offsets: np.ndarray  # (n_journeys + 1,) int64
    entered: np.ndarray  # (n_occurrences,) float64


def state_sequences(journeys: JourneySet, order: int, collapse: bool = True,
                    base: int | None = None) -> StateSequences:
    """Window states of every journey (see module docstring), vectorised over all events."""
    keys, offsets, entered = _states(journeys, order, collapse, base, times=True)
    return StateSequences(keys.astype(np.int64), offsets, entered)


def _states(journeys: JourneySet, order: int, collapse: bool, base: int | None, times: bool):
    """(state keys, CSR offsets, entry times or None) of every journey.

    Memory-lean: keys are int32 where they fit; window keys are built from shifted slices (no
    gathers), repeats are found event by event, and each output is gathered once. An event's
    position in its journey is only ever compared with ``order``, so it is kept capped there
    (int8: the first ``order`` events of each journey set, the rest ``order``), and the
    offsets are read from a running count of the events kept (issue 20: at 100k customers
    the positions and a per-journey reduceat were half of this)."""
    base = base or state_base(len(journeys.touchpoints), order)
    n = journeys.n_events
    lengths = journeys.lengths
    starts = journeys.offsets[:-1]
    itype = np.int32 if n < 2**31 and float(base) ** order < 2**31 else np.int64
    rel = np.full(n, order, np.int8)  # position of each event in its journey, capped at order
    at = [starts[lengths > i] + i for i in range(order)]  # the events at each first position
    for i in range(order):  # a loop over the first positions (at most 4)
        rel[at[i]] = i
    key = journeys.codes.astype(itype)
    key += 1
    if order > 1:
        codes = key.copy()
        for j in range(1, order):  # add the touchpoint j steps back, where the journey has one
            contrib = codes[:-j] * itype(base**j)
            for i in range(j):  # not to the journey's first j events (scattered, no mask)
                contrib[at[i][at[i] >= j] - j] = 0
            key[j:] += contrib
        del codes, contrib
    # a journey of L touchpoints has states at its last max(L - order + 1, 1) events ...
    keep = rel >= order - 1
    short = (lengths > 0) & (lengths < order)
    keep[journeys.offsets[1:][short] - 1] = True
    if collapse and n > 1:  # ... minus those repeating the state of the event before
        repeat = np.zeros(n, bool)
        np.equal(key[1:], key[:-1], out=repeat[1:])
        repeat &= rel >= order  # the event before holds a state of the same journey
        keep &= ~repeat
        del repeat
    del rel
    kept = np.zeros(n + 1, np.int64)  # events kept before each event
    np.cumsum(keep, out=kept[1:])
    offsets = kept[journeys.offsets]
    return key[keep], offsets, journeys.times[keep] if times else None


@dataclass(frozen=True, eq=False)
class TransitionCounts(Additive):
    """Additive sufficient statistics of a Markov journey model's chain.

    Weighted transitions between window states and the time spent in each: the counts of two
    parts of a log add up to those of the whole, whatever touchpoints each part knows (keys are
    re-encoded in the sorted union of both vocabularies).

    Attributes
    ----------
    order : int
    collapse : bool
        Consecutive identical states merged (ChannelAttribution's convention).
    touchpoints : tuple of str
    from_key, to_key : ndarray of int64, shape (n_pairs,)
        Distinct observed transitions (window keys; absorbing states negative), sorted.
    count : ndarray of float64, shape (n_pairs,)
        Weighted number of transitions.
    value : ndarray of float64, shape (n_pairs,)
        Weighted conversion value carried by transitions into ``conversion`` (0 elsewhere).
    dwell_key, dwell_sum, dwell_n : ndarray, shape (n_dwell,)
        Per state key: total and number of observed dwell times (time from entering the state
        to the next state or outcome row); empty without timestamps.

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> a = count_transitions(journeys_from_codes([["web"]], ["conversion"]), 1)
    >>> b = count_transitions(journeys_from_codes([["email", "web"]], ["dropoff"]), 1)
    >>> s = a + b
    >>> s.touchpoints, s.from_key.tolist(), s.to_key.tolist(), s.count.tolist()
    (('email', 'web'), [0, 0, 1, 2, 2], [1, 2, 2, -2, -1], [1.0, 1.0, 1.0, 1.0, 1.0])
    >>> sum([b, a]).equals(s)
    True
    """

    order: int
    collapse: bool
    touchpoints: tuple[str, ...]
    from_key: np.ndarray
    to_key: np.ndarray
    count: np.ndarray
    value: np.ndarray
    dwell_key: np.ndarray
    dwell_sum: np.ndarray
    dwell_n: np.ndarray

    def _add(self, other: TransitionCounts) -> TransitionCounts:
        if (self.order, self.collapse) != (other.order, other.collapse):
            raise OptionError(
                "can only add transition counts of the same order and repeat handling (got "
                f"order {self.order} with collapse_repeats={self.collapse} and order "
                f"{other.order} with collapse_repeats={other.collapse})")
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        a, b = self.in_vocabulary(names, mine), other.in_vocabulary(names, theirs)
        f, t, (c, v) = _group_pairs(np.concatenate([a.from_key, b.from_key]),
                                    np.concatenate([a.to_key, b.to_key]),
                                    [np.concatenate([a.count, b.count]),
                                     np.concatenate([a.value, b.value])])
        dk, (ds, dn) = _group_keys(np.concatenate([a.dwell_key, b.dwell_key]),
                                   [np.concatenate([a.dwell_sum, b.dwell_sum]),
                                    np.concatenate([a.dwell_n, b.dwell_n])])
        return TransitionCounts(self.order, self.collapse, names, f, t, c, v, dk, ds, dn)


    def in_vocabulary(self, names: tuple[str, ...], index: np.ndarray) -> TransitionCounts:
        """The same counts with touchpoint code ``i`` renamed ``index[i]`` in ``names`` (keys
        re-encoded; their order is kept, as it depends only on the windows' touchpoints'
        order, which a sorted union keeps)."""
        if names == self.touchpoints:
            return self
        base = len(self.touchpoints) + 1
        new = state_base(len(names), self.order)

        def keys(k):
            return recode_keys(k, index, base, new, self.order)

        return TransitionCounts(self.order, self.collapse, names, keys(self.from_key),
                                keys(self.to_key), self.count, self.value,
                                keys(self.dwell_key), self.dwell_sum, self.dwell_n)

    def equals(self, other: TransitionCounts, rtol: float = 1e-9) -> bool:
        """Same settings, transitions and counts (up to float rounding), whatever the
        vocabularies (compared on their union)."""
        if (self.order, self.collapse) != (other.order, other.collapse):
            return False
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        a, b = self.in_vocabulary(names, mine), other.in_vocabulary(names, theirs)
        return (np.array_equal(a.from_key, b.from_key)
                and np.array_equal(a.to_key, b.to_key)
                and np.allclose(a.count, b.count, rtol=rtol)
                and np.allclose(a.value, b.value, rtol=rtol)
                and np.array_equal(a.dwell_key, b.dwell_key)
                and np.allclose(a.dwell_sum, b.dwell_sum, rtol=rtol)
                and np.allclose(a.dwell_n, b.dwell_n, rtol=rtol))


def _group_keys(keys: np.ndarray, weights: list[np.ndarray]):
    uniq, inv = _compress(keys)
    return uniq, [np.bincount(inv, weights=w, minlength=len(uniq)) for w in weights]


def _group_pairs(a: np.ndarray, b: np.ndarray, weights: list[np.ndarray]):
    """Distinct (a, b) pairs, sorted, with summed weights (bincount when the key space is small)."""
    ua, ia = _compress(a)
    ub, ib = _compress(b)
    combined = ia * len(ub) + ib
    space = len(ua) * len(ub)
    if space <= 1 << 24:
        sums = [np.bincount(combined, weights=w, minlength=space) for w in weights]
        present = np.bincount(combined, minlength=space) > 0
        idx = np.flatnonzero(present)
        sums = [s[idx] for s in sums]
    else:
        idx, inv = np.unique(combined, return_inverse=True)
        sums = [np.bincount(inv, weights=w, minlength=len(idx)) for w in weights]
    return ua[idx // len(ub)], ub[idx % len(ub)], sums


def _compress(keys: np.ndarray, itype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """(distinct sorted keys, index of each key), by a lookup table when keys are small.

    ``itype=np.int32`` halves the memory of the index where the lookup table applies (callers
    must then keep products of indices below 2**31)."""
    if len(keys) == 0:
        return keys.astype(np.int64), keys.astype(np.int64)
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo <= 1 << 24:
        # small non-negative keys index the table as they are (no subtraction of every key)
        # where that at most doubles it; each key's place is made once
        origin = 0 if 0 <= lo <= hi - lo else lo
        at = keys - origin if origin else keys
        present = np.zeros(hi - origin + 1, bool)
        present[at] = True
        index = (np.cumsum(present) - 1).astype(itype)
        return np.flatnonzero(present) + origin, index[at]
    return np.unique(keys, return_inverse=True)


def count_transitions(journeys: JourneySet, order: int, collapse: bool = True, *,
                      dwell: bool = True) -> TransitionCounts:
    """Count weighted transitions between window states of every journey (vectorised).

    Parameters
    ----------
    journeys : JourneySet
    order : int
        Window length, 1..4.
    collapse : bool
        Merge consecutive identical states (ChannelAttribution's convention).
    dwell : bool
        Count the time spent in each state (False: the dwell arrays are empty, as without
        timestamps; what attribution needs not, a fifth of the counting at 100k customers).

    Returns
    -------
    TransitionCounts
        Additive: ``count_transitions(a) + count_transitions(b)`` equals the counts of the
        journeys of ``a`` and ``b`` together.

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> js = journeys_from_codes([["c1", "c2", "c3"], ["c1"], ["c2", "c3"]],
    ...                          ["conversion", "dropoff", "dropoff"])
    >>> tc = count_transitions(js, order=1)
    >>> tc.from_key.tolist(), tc.to_key.tolist(), tc.count.tolist()
    ([0, 0, 1, 1, 2, 3, 3], [1, 2, -2, 2, 3, -2, -1], [2.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0])
    """
    timed = dwell and journeys.time_kind != "none"
    seq = StateSequences(*_states(journeys, order, collapse, None, times=timed))
    n_j = journeys.n_journeys
    n_per = np.diff(seq.offsets)
    has = n_per > 0
    first = seq.offsets[:-1][has]
    last = seq.offsets[1:][has] - 1
    w = journeys.weight
    unit = bool(np.all(w == 1.0))
    # Three kinds of transitions with disjoint (from, to) pairs, grouped separately: start ->
    # first state; state -> next state within a journey; last state -> outcome. Each pair's
    # sum therefore adds the same terms in the same order as one grouping of all of them.
    ended = journeys.outcome != CENSORED
    last_key = np.zeros(n_j, np.int64)
    last_key[has] = seq.keys[last]
    abs_key = np.select([journeys.outcome == o for o in ABSORBING_KEYS],
                        list(ABSORBING_KEYS.values()), 0).astype(np.int64)
    conv_value = np.where(journeys.outcome == CONVERSION, journeys.value * w, 0.0)
    uk, ik = _compress(seq.keys, np.int32)  # state indices 0..U-1, for pairs and dwell
    # every start transition comes from key 0: grouped by the first state alone (the same
    # sums as grouping the pairs, without compressing a column of zeros)
    first_key, first_sums = _group_keys(seq.keys[first], [w[has], np.zeros(len(first))])
    parts = [
        (np.zeros(len(first_key), np.int64), first_key, first_sums),
        _within_pairs(uk, ik, last, None if unit else np.repeat(w, n_per)),
        _group_pairs(last_key[ended], abs_key[ended], [w[ended], conv_value[ended]]),
    ]
    f = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
    t = np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False)
    c = np.concatenate([p[2][0] for p in parts])
    v = np.concatenate([p[2][1] for p in parts])
    srt = np.lexsort((t, f))
    if timed:
        dk, ds, dn = _dwell(seq, uk, ik, _followed(len(seq.keys), last), n_per, last,
                            journeys, has, unit)
    else:
        dk, ds, dn = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    return TransitionCounts(order, collapse, tuple(journeys.touchpoints), f[srt], t[srt], c[srt],
                            v[srt], dk, ds, dn)


def _followed(n: int, last: np.ndarray) -> np.ndarray:
    """Occurrences followed by a state of the same journey: all but each journey's ``last``."""
    nxt = np.ones(n, bool)
    nxt[last] = False
    return nxt


def _within_pairs(uk, ik, last, occ_weight):
    """Distinct (state, next state) pairs inside journeys, sorted, with summed weights (1 per
    transition when ``occ_weight`` is None) and zero value. ``uk, ik`` are the distinct state
    keys and each occurrence's index into them; ``last`` the occurrences that end their
    journeys (no next state)."""
    U = len(uk)
    if len(ik) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), [np.zeros(0), np.zeros(0)]
    if U * U <= 1 << 24:  # bincount over the small pair space; the last bin collects non-pairs
        pair = ik[:-1] * ik.dtype.type(U)
        pair += ik[1:]
        pair[last[last < len(ik) - 1]] = U * U
        present_n = np.bincount(pair, minlength=U * U + 1)[:-1]
        idx = np.flatnonzero(present_n)
        cnt = (present_n[idx].astype(np.float64) if occ_weight is None else
               np.bincount(pair, weights=occ_weight[:-1], minlength=U * U + 1)[idx])
        return uk[idx // U], uk[idx % U], [cnt, np.zeros(len(idx))]
    pos = np.flatnonzero(_followed(len(ik), last))
    fw = [np.ones(len(pos)) if occ_weight is None else occ_weight[pos]]
    a, b, (cnt,) = _group_pairs(uk[ik[pos]], uk[ik[pos + 1]], fw)
    return a, b, [cnt, np.zeros(len(cnt))]


def count_transitions_chunked(journeys: JourneySet, order: int, collapse: bool = True,
                              chunk_events: int = 1_000_000, *, dwell: bool = True
                              ) -> TransitionCounts:
    """:func:`count_transitions` over consecutive chunks of about ``chunk_events`` events,
    summed (the counts are additive): same result, bounded temporary memory."""
    if journeys.n_events <= chunk_events:
        return count_transitions(journeys, order, collapse, dwell=dwell)
    cuts = np.searchsorted(journeys.offsets, np.arange(0, journeys.n_events, chunk_events))
    bounds = np.unique(np.concatenate([cuts, [journeys.n_journeys]]))
    total = None
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):  # loop over chunks only
        part = count_transitions(journeys.take(np.arange(lo, hi)), order, collapse,
                                 dwell=dwell)
        total = part if total is None else total + part
    return total


def _dwell(seq: StateSequences, uk, ik, nxt, n_per, last, journeys: JourneySet, has,
           unit: bool):
    """Dwell time per state: to the next state, or to the outcome row of a converted/churned
    journey. Drop-offs and censored ends have no observed dwell. Sums run over the dwell
    times in occurrence order (those to a next state first, then those to an outcome)."""
    empty = np.zeros(0)
    if journeys.time_kind == "none" or len(seq.keys) == 0:
        return empty.astype(np.int64), empty, empty
    jl = np.flatnonzero(has)
    out = np.isin(journeys.outcome[jl], (CONVERSION, CHURN))
    d_last = journeys.end[jl[out]] - seq.entered[last[out]]
    ok_last = np.isfinite(d_last)
    d_last, i_last = d_last[ok_last], ik[last[out]][ok_last]
    d_all = np.diff(seq.entered)
    sel = nxt[:-1] & np.isfinite(d_all)  # a next state, and a finite time to it
    k = int(np.count_nonzero(sel))
    d, idx = np.empty(k + len(d_last)), np.empty(k + len(d_last), ik.dtype)
    np.compress(sel, d_all, out=d[:k])
    del d_all
    np.compress(sel, ik[:-1], out=idx[:k])
    d[k:], idx[k:] = d_last, i_last
    U = len(uk)
    present = np.bincount(idx, minlength=U)
    if unit:
        s, n = np.bincount(idx, weights=d, minlength=U), present.astype(np.float64)
    else:
        wo = np.repeat(journeys.weight, n_per)[:-1][sel]
        w = np.concatenate([wo, journeys.weight[jl[out]][ok_last]])
        s, n = (np.bincount(idx, weights=d * w, minlength=U),
                np.bincount(idx, weights=w, minlength=U))
    keep = np.flatnonzero(present)
    return uk[keep], s[keep], n[keep]


# ---------------------------------------------------------------------------------------------
# Censored last states


@dataclass(frozen=True, eq=False)
class CensoredStates(Additive):
    """Last states of censored (in-flight) journeys by the time already spent there.

    The elapsed time ``observed_until - last event time`` is binned on the fixed grid of
    :func:`journeymodel.stats.holding.grid_edges` (so two parts add up exactly); the Markov fit
    uses it for the survival term of the censored journeys (issue 17,
    :mod:`journeymodel.models.markov.censoring`).

    Attributes
    ----------
    order : int
    collapse : bool
    touchpoints : tuple of str
    key, bin : ndarray of int64, shape (n_cells,)
        Distinct (state key, elapsed-time bin) cells, sorted.
    count : ndarray of float64, shape (n_cells,)
        Weighted censored journeys in each cell.

    Examples
    --------
    >>> a = CensoredStates(1, True, ("web",), np.array([1]), np.array([40]), np.array([1.0]))
    >>> b = CensoredStates(1, True, ("email",), np.array([1]), np.array([40]), np.array([2.0]))
    >>> s = a + b
    >>> s.touchpoints, s.key.tolist(), s.count.tolist(), sum([b, a]).equals(s)
    (('email', 'web'), [1, 2], [2.0, 1.0], True)
    """

    order: int
    collapse: bool
    touchpoints: tuple[str, ...]
    key: np.ndarray
    bin: np.ndarray
    count: np.ndarray

    def _add(self, other: CensoredStates) -> CensoredStates:
        if (self.order, self.collapse) != (other.order, other.collapse):
            raise OptionError("can only add censored states of the same order and repeat "
                              "handling")
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        a, b = self.in_vocabulary(names, mine), other.in_vocabulary(names, theirs)
        k, bn, (c,) = _group_pairs(np.concatenate([a.key, b.key]),
                                   np.concatenate([a.bin, b.bin]),
                                   [np.concatenate([a.count, b.count])])
        return CensoredStates(self.order, self.collapse, names, k.astype(np.int64),
                              bn.astype(np.int64), c)

    def in_vocabulary(self, names: tuple[str, ...], index: np.ndarray) -> CensoredStates:
        if names == self.touchpoints:
            return self
        key = recode_keys(self.key, index, len(self.touchpoints) + 1,
                          state_base(len(names), self.order), self.order)
        srt = np.lexsort((self.bin, key))
        return CensoredStates(self.order, self.collapse, names, key[srt], self.bin[srt],
                              self.count[srt])

    def equals(self, other: CensoredStates, rtol: float = 1e-9) -> bool:
        if (self.order, self.collapse) != (other.order, other.collapse):
            return False
        names, mine, theirs = union(self.touchpoints, other.touchpoints)
        a, b = self.in_vocabulary(names, mine), other.in_vocabulary(names, theirs)
        return (np.array_equal(a.key, b.key) and np.array_equal(a.bin, b.bin)
                and np.allclose(a.count, b.count, rtol=rtol))


def censored_states(journeys: JourneySet, order: int, collapse: bool = True
                    ) -> CensoredStates:
    """The :class:`CensoredStates` of ``journeys`` (empty without timestamps)."""
    names = tuple(journeys.touchpoints)
    none = np.zeros(0, np.int64)
    cens = np.flatnonzero((journeys.outcome == CENSORED) & (journeys.lengths > 0))
    if journeys.time_kind == "none" or len(cens) == 0:
        return CensoredStates(order, collapse, names, none, none, np.zeros(0))
    # a journey's last state is the window of its last touchpoints, whether or not repeats
    # are collapsed (a repeat leaves the state as it was): built from those events alone
    last = journeys.offsets[cens + 1] - 1
    lengths = journeys.lengths[cens]
    base = state_base(len(names), order)
    last_key = np.zeros(len(cens), np.int64)
    for j in range(order):  # a loop over the window's positions (at most 4)
        digit = (journeys.codes[last - np.minimum(j, lengths - 1)] + 1).astype(np.int64)
        last_key += np.where(lengths > j, digit * base**j, 0)
    elapsed = journeys.observed_until - journeys.times[last]
    ok = np.isfinite(elapsed)
    k, bn, (c,) = _group_pairs(last_key[ok],
                               bin_of(elapsed[ok], grid_edges(journeys.time_kind)),
                               [journeys.weight[cens][ok]])
    return CensoredStates(order, collapse, names, k.astype(np.int64), bn.astype(np.int64), c)


# ---------------------------------------------------------------------------------------------
# Heuristics


def heuristic_totals(journeys: JourneySet) -> tuple[np.ndarray, np.ndarray]:
    """First-, last- and linear-touch conversions and value per touchpoint.

    As ChannelAttribution's ``heuristic_models``: a converting path credits its first channel
    (first touch), its last (last touch), or each of its touches ``1 / length`` (linear touch, so
    a channel seen twice in a path of length 4 gets half). Journeys without touchpoints credit
    nobody.

    Returns
    -------
    conversions, value : ndarray, shape (3, n_touchpoints)
        One row per heuristic, in the order of :data:`HEURISTICS`.
    """
    T = len(journeys.touchpoints)
    # converting journeys only: the others credit 0, and a sum's bits do not change by adding
    # zeros (0 + x = x), so leaving them out (two thirds of the events) gives the same totals
    converting = (journeys.outcome == CONVERSION) & (journeys.lengths > 0)
    conv = np.flatnonzero(converting)
    w = journeys.weight[conv]
    v = journeys.value[conv] * w
    starts = journeys.offsets[conv]
    lengths = journeys.lengths[conv]
    conversions, value = np.zeros((3, T)), np.zeros((3, T))
    for i, at in enumerate((starts, starts + lengths - 1)):  # first and last touch
        code = journeys.codes[at]
        conversions[i] = np.bincount(code, weights=w, minlength=T)
        value[i] = np.bincount(code, weights=v, minlength=T)
    # per journey first, then repeated per touch: the same products, one event-sized array
    per_touch = 1.0 / lengths
    touches = journeys.codes[np.repeat(converting, journeys.lengths)]
    conversions[2] = np.bincount(touches, weights=np.repeat(w * per_touch, lengths),
                                 minlength=T)
    if v.any():
        value[2] = np.bincount(touches, weights=np.repeat(v * per_touch, lengths), minlength=T)
    return conversions, value


# ---------------------------------------------------------------------------------------------
# Everything a Markov model is fitted from


@dataclass(frozen=True, eq=False)
class MarkovStats(Additive):
    """What a Markov journey model is fitted from: its sufficient statistics, additive.

    Attributes
    ----------
    transitions : TransitionCounts
    heuristic_conversions, heuristic_value : ndarray, shape (3, n_touchpoints)
        First-, last- and linear-touch conversions and conversion value per touchpoint
        (:func:`heuristic_totals`), in ``transitions.touchpoints``.
    start_min, start_max : float
        Earliest and latest journey start (``inf`` and ``-inf`` without times).
    conversions, value : float
        Weighted conversions and conversion value.
    outcomes : ndarray of float64, shape (4,)
        Weighted journeys per outcome, in the order of ``journeys.OUTCOMES``.
    n_journeys : int
    time_kind : str
        The time axis of the journeys (``datetime``, ``period`` or ``none``).
    observed_until : float
        End of observation (NaN without times).
    experience : ExperienceStats or None
        None when not counted (``transition_stats(..., experience=False)``, for a fit that
        only attributes; a sum has one where both parts have).
    censored : CensoredStates or None
        Last states of in-flight journeys by elapsed time (None: not counted).
    holding : HoldingStats or None
        Holding times between events (None without timestamps).

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> a = transition_stats(journeys_from_codes([["web"]], ["conversion"]), 1)
    >>> b = transition_stats(journeys_from_codes([["email", "web"]], ["conversion"]), 1)
    >>> s = a + b
    >>> s.touchpoints, s.conversions, s.heuristic_conversions.tolist()
    (('email', 'web'), 2.0, [[1.0, 1.0], [0.0, 2.0], [0.5, 1.5]])
    >>> sum([b, a]).equals(s)
    True
    """

    transitions: TransitionCounts
    heuristic_conversions: np.ndarray
    heuristic_value: np.ndarray
    start_min: float
    start_max: float
    conversions: float
    value: float
    outcomes: np.ndarray
    n_journeys: int
    time_kind: str
    observed_until: float
    experience: ExperienceStats | None
    censored: CensoredStates | None = None
    holding: HoldingStats | None = None

    @property
    def touchpoints(self) -> tuple[str, ...]:
        return self.transitions.touchpoints

    def _add(self, other: MarkovStats) -> MarkovStats:
        if self.time_kind != other.time_kind:
            raise OptionError("can only add Markov statistics of journeys on the same time axis "
                              f"(got {self.time_kind!r} and {other.time_kind!r})")
        transitions = self.transitions + other.transitions
        names, mine, theirs = union(self.touchpoints, other.touchpoints)

        def heuristic(x, y):
            out = np.zeros((len(HEURISTICS), len(names)))
            out[:, mine] += x
            out[:, theirs] += y
            return out

        return MarkovStats(
            transitions,
            heuristic(self.heuristic_conversions, other.heuristic_conversions),
            heuristic(self.heuristic_value, other.heuristic_value),
            min(self.start_min, other.start_min), max(self.start_max, other.start_max),
            self.conversions + other.conversions, self.value + other.value,
            self.outcomes + other.outcomes, self.n_journeys + other.n_journeys,
            self.time_kind, float(np.fmax(self.observed_until, other.observed_until)),
            _plus(self.experience, other.experience), _plus(self.censored, other.censored),
            _plus(self.holding, other.holding))


    @property
    def heuristics(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"first" | "last" | "linear": (conversions, value)}`` per touchpoint."""
        return {name: (self.heuristic_conversions[i], self.heuristic_value[i])
                for i, name in enumerate(HEURISTICS)}

    def equals(self, other: MarkovStats, rtol: float = 1e-9) -> bool:
        """Same statistics (float sums up to ``rtol``), compared on the union of names."""
        names, mine, theirs = union(self.touchpoints, other.touchpoints)

        def on_union(stats, index):
            out = np.zeros((2, len(HEURISTICS), len(names)))
            out[0][:, index] = stats.heuristic_conversions
            out[1][:, index] = stats.heuristic_value
            return out

        scalars = np.array([[s.conversions, s.value, *s.outcomes] for s in (self, other)])
        return (self.transitions.equals(other.transitions, rtol)
                and np.allclose(on_union(self, mine), on_union(other, theirs), rtol=rtol)
                and (self.start_min, self.start_max, self.n_journeys, self.time_kind) == (
                    other.start_min, other.start_max, other.n_journeys, other.time_kind)
                and np.array_equal(self.observed_until, other.observed_until, equal_nan=True)
                and np.allclose(scalars[0], scalars[1], rtol=rtol)
                and _equal(self.experience, other.experience, rtol)
                and _equal(self.censored, other.censored, rtol)
                and _equal(self.holding, other.holding, rtol))


def _plus(a, b):
    """Sum of two optional statistics (None where either part has none)."""
    return None if a is None or b is None else a + b


def _equal(a, b, rtol: float) -> bool:
    return (a is None and b is None) or (a is not None and b is not None
                                         and a.equals(b, rtol))


def transition_stats(journeys: JourneySet, order: int, collapse: bool = True,
                     chunk_events: int = 1_000_000, *, experience: bool = True,
                     dwell: bool = True, holding: bool = True) -> MarkovStats:
    """The :class:`MarkovStats` of ``journeys`` at window length ``order``.

    ``experience=False`` leaves the experience statistic out (None) and ``dwell=False`` the
    states' dwell times (empty, see :func:`count_transitions`): what
    :meth:`~journeymodel.models.markov.model.MarkovJourneyModel.fit_attribution` needs not.
    ``holding=False`` leaves the holding-time statistic out (None, as without timestamps), for
    a caller that counts it on its own (:func:`~journeymodel.stats.holding.holding_stats`;
    ``fit_attribution`` does, on another core).

    Transitions are counted in chunks of about ``chunk_events`` events
    (:func:`count_transitions_chunked`); the rest reads the journeys whole.
    """
    starts = journeys.start[np.isfinite(journeys.start)]
    conv = journeys.outcome == CONVERSION
    conversions, value = heuristic_totals(journeys)
    return MarkovStats(
        transitions=count_transitions_chunked(journeys, order, collapse, chunk_events,
                                              dwell=dwell),
        heuristic_conversions=conversions, heuristic_value=value,
        start_min=float(starts.min()) if len(starts) else float("inf"),
        start_max=float(starts.max()) if len(starts) else float("-inf"),
        conversions=float(journeys.weight[conv].sum()),
        value=float((journeys.weight * journeys.value)[conv].sum()),
        outcomes=np.bincount(journeys.outcome, weights=journeys.weight,
                             minlength=len(OUTCOMES)).astype(np.float64),
        n_journeys=journeys.n_journeys, time_kind=journeys.time_kind,
        observed_until=float(journeys.observed_until),
        experience=_experience_stats(journeys) if experience else None,
        censored=censored_states(journeys, order, collapse),
        holding=None if not holding or journeys.time_kind == "none" else holding_stats(journeys))


def _experience_stats(journeys: JourneySet) -> ExperienceStats:
    """:func:`journeymodel.stats.experience.experience_stats`, imported when first asked for
    (its module's three dataclasses cost 4-5 ms to define, which ``attribute EVENTS`` skips)."""
    from journeymodel.stats.experience import experience_stats

    return experience_stats(journeys)
