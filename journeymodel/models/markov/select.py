"""Choosing the order of a Markov journey model: held-out log-likelihood and BIC.

Orders are compared as models of the same data: each journey's touchpoint sequence with runs of
one touchpoint merged (so no order has repeated windows to collapse), followed by its outcome.
At order ``k`` the next event (touchpoint or outcome) depends on the previous ``min(k, t)``
touchpoints; this is the sequence model behind the window chain (for maximum-likelihood
estimates both give the same probability to every journey). The held-out log-likelihood uses
add-1/2 smoothing over all possible next events, so unseen contexts or moves are penalised, not
impossible. BIC uses the maximum-likelihood fit to all journeys, counting one free parameter
per observed move beyond the first of each context.

Both read only the weighted moves (context, next event) of the training and of the held-out
journeys (:class:`OrderStats`, additive): on Dask each partition counts its own and the sums
choose the order (issue 15), as one process does from the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeys import CENSORED, JourneySet
from journeymodel.errors import OptionError
from journeymodel.stats.additive import Additive
from journeymodel.stats.transitions import state_base
from journeymodel.stats.vocab import align

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ALPHA = 0.5  # smoothing of held-out probabilities
#: The :meth:`~journeymodel.data.journeyset.JourneySet.split` stream of the order selection:
#: independent of a split of the same seed in stream 0 (``fit markov --holdout``'s, whose
#: training journeys the selection splits again).
SELECT_STREAM = 1


def merge_runs(journeys: JourneySet) -> JourneySet:
    """Journeys with consecutive repeats of a touchpoint merged into one touch."""
    rel = np.arange(journeys.n_events) - np.repeat(journeys.offsets[:-1], journeys.lengths)
    keep = np.ones(journeys.n_events, bool)
    keep[1:] = (journeys.codes[1:] != journeys.codes[:-1]) | (rel[1:] == 0)
    lengths = np.bincount(journeys.journey_of_event[keep], minlength=journeys.n_journeys)
    offsets = np.zeros(journeys.n_journeys + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    pick = (lambda a: None if a is None else a[keep])  # noqa: E731
    return replace(journeys, codes=journeys.codes[keep], offsets=offsets,
                   times=journeys.times[keep], sentiment=pick(journeys.sentiment),
                   device=pick(journeys.device))


def _events(journeys: JourneySet, order: int):
    """(context key, next-event symbol, weight) of every move, vectorised.

    Symbols: touchpoint codes ``0..T-1``, then ``T + outcome`` for the outcome of a journey
    that has ended.
    """
    T = len(journeys.touchpoints)
    base = state_base(T, order)
    L = journeys.lengths
    rel = np.arange(journeys.n_events) - np.repeat(journeys.offsets[:-1], L)
    key = np.zeros(journeys.n_events, np.int64)  # window ending at each event
    codes = journeys.codes.astype(np.int64) + 1
    for j in range(order):
        ok = rel >= j
        key[ok] += codes[np.flatnonzero(ok) - j] * base**j
    ctx = np.zeros(journeys.n_events, np.int64)
    ctx[rel > 0] = key[np.flatnonzero(rel > 0) - 1]
    w_ev = np.repeat(journeys.weight, L)
    ended = journeys.outcome != CENSORED
    last_ctx = np.zeros(journeys.n_journeys, np.int64)
    has = L > 0
    last_ctx[has] = key[journeys.offsets[1:][has] - 1]
    ctx_all = np.concatenate([ctx, last_ctx[ended]])
    sym = np.concatenate([journeys.codes.astype(np.int64),
                          T + journeys.outcome[ended].astype(np.int64)])
    w = np.concatenate([w_ev, journeys.weight[ended]])
    return ctx_all, sym, w, T + 4


def _lookup(keys, values, query):
    if len(keys) == 0:
        return np.zeros(len(query))
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0.0)


@dataclass(frozen=True, eq=False)
class MoveCounts(Additive):
    """The moves of journeys at one order: each distinct (context window, next event) pair
    with its summed weight, over a touchpoint vocabulary. Counts of parts of a log add up on
    the sorted union of their vocabularies (integer weights: exactly).

    Attributes
    ----------
    touchpoints : tuple of str
    order : int
    keys : ndarray of int64
        Sorted distinct pair keys ``context * V + next``, ``V = len(touchpoints) + 4``: the
        context is the window of the last ``order`` touchpoints (digits ``code + 1`` in base
        ``len(touchpoints) + 1``, 0 before the journey's start), the next event a touchpoint
        code or ``len(touchpoints) + outcome``.
    weight : ndarray of float64

    Examples
    --------
    Moves (start, ad), (start, web), (ad, web) once and (web, conversion) twice:

    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> a = move_counts(journeys_from_codes([["web"]], ["conversion"]), 1)
    >>> b = move_counts(journeys_from_codes([["ad", "web"]], ["conversion"]), 1)
    >>> total = a + b
    >>> total.touchpoints, total.weight.tolist()
    (('ad', 'web'), [1.0, 1.0, 1.0, 2.0])
    """

    touchpoints: tuple[str, ...]
    order: int
    keys: np.ndarray
    weight: np.ndarray

    @property
    def n_next(self) -> int:
        """``V``: touchpoints and the four outcomes."""
        return len(self.touchpoints) + 4

    def _add(self, other: MoveCounts) -> MoveCounts:
        a, b = self, other
        if a.order != b.order:
            raise OptionError(f"moves at order {a.order} and {b.order} cannot be added")
        if a.touchpoints != b.touchpoints:
            union, ia, ib = align(a.touchpoints, b.touchpoints)
            a, b = a.recoded(union, ia), b.recoded(union, ib)
        keys, inverse = np.unique(np.concatenate([a.keys, b.keys]), return_inverse=True)
        weight = np.bincount(inverse, weights=np.concatenate([a.weight, b.weight]),
                             minlength=len(keys))
        return MoveCounts(a.touchpoints, a.order, keys, weight)

    def recoded(self, touchpoints: tuple[str, ...], index: np.ndarray) -> MoveCounts:
        """The same moves over ``touchpoints`` (``touchpoints[index[i]] ==
        self.touchpoints[i]``); OptionError when their keys would overflow."""
        T, V = len(self.touchpoints), self.n_next
        base, new_base = T + 1, state_base(len(touchpoints), self.order)
        index = np.asarray(index, np.int64)
        ctx, nxt = self.keys // V, self.keys % V
        digit = np.concatenate([[0], index + 1])
        new_ctx = np.zeros(len(ctx), np.int64)
        for j in range(self.order):
            new_ctx += digit[(ctx // base**j) % base] * new_base**j
        touch = nxt < T
        new_next = np.where(touch, index[np.where(touch, nxt, 0)] if T else 0,
                            len(touchpoints) + nxt - T)
        keys = new_ctx * (len(touchpoints) + 4) + new_next
        order = np.argsort(keys)
        return MoveCounts(tuple(touchpoints), self.order, keys[order], self.weight[order])

    def contexts(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct contexts and the summed weight of the moves out of each."""
        ctx, inverse = np.unique(self.keys // self.n_next, return_inverse=True)
        return ctx, np.bincount(inverse, weights=self.weight, minlength=len(ctx))


def move_counts(journeys: JourneySet, order: int) -> MoveCounts:
    """The :class:`MoveCounts` of ``journeys`` at ``order`` (vectorised)."""
    ctx, sym, w, V = _events(journeys, order)
    keys, inverse = np.unique(ctx * V + sym, return_inverse=True)
    return MoveCounts(tuple(journeys.touchpoints), order, keys,
                      np.bincount(inverse, weights=w, minlength=len(keys)))


@dataclass(frozen=True, eq=False)
class OrderStats(Additive):
    """What choosing the order reads: for each candidate order, the moves of the training
    and of the held-out journeys, and the held-out journeys' weight. Additive (statistics of
    parts of a log add up; the split is a hash of each journey, the same in every part:
    :meth:`~journeymodel.data.journeyset.JourneySet.split`), so the order is chosen the same
    way on Dask (issue 15). An order whose keys overflow the vocabulary of the sum is left
    out, as one process leaves it out.

    Attributes
    ----------
    train, test : dict of int to MoveCounts
    test_weight : float
    """

    train: dict[int, MoveCounts]
    test: dict[int, MoveCounts]
    test_weight: float

    def _add(self, other: OrderStats) -> OrderStats:
        train, test = {}, {}
        for k in sorted(set(self.train) & set(other.train)):
            try:
                train[k] = self.train[k] + other.train[k]
                test[k] = self.test[k] + other.test[k]
            except OptionError:  # too many touchpoints for this order's keys
                train.pop(k, None)
        return OrderStats(train, test, self.test_weight + other.test_weight)


def order_stats(journeys: JourneySet, *, orders=(1, 2, 3, 4), holdout: float = 0.2,
                seed: int | np.random.Generator = 0, collapse: bool = True) -> OrderStats:
    """The :class:`OrderStats` of ``journeys`` (split into training and held-out journeys by
    ``holdout`` and ``seed``; repeats merged with ``collapse``)."""
    data = merge_runs(journeys) if collapse else journeys
    train, test = data.split(holdout, seed, SELECT_STREAM)
    fits = [k for k in orders if float(len(journeys.touchpoints) + 1) ** (k + 1) < 2.0**62]
    return OrderStats({k: move_counts(train, k) for k in fits},
                      {k: move_counts(test, k) for k in fits}, float(test.weight.sum()))


def score_order(train: MoveCounts, test: MoveCounts, test_weight: float) -> dict[str, float]:
    """Held-out log-likelihood (per held-out journey) and BIC (on all journeys) of one order,
    from the moves of the training and of the held-out journeys."""
    if train.touchpoints != test.touchpoints:
        union, ia, ib = align(train.touchpoints, test.touchpoints)
        train, test = train.recoded(union, ia), test.recoded(union, ib)
    V = train.n_next
    uc, nctx = train.contexts()
    tc, tw_ctx = test.contexts()
    num = np.log(_lookup(train.keys, train.weight, test.keys) + ALPHA)
    den = np.log(_lookup(uc, nctx, tc) + ALPHA * V)
    heldout = float((np.dot(test.weight, num) - np.dot(tw_ctx, den))
                    / max(test_weight, 1e-300))
    full = train + test
    fuc, fnc = full.contexts()
    ll = float(np.sum(full.weight * np.log(full.weight / _lookup(fuc, fnc, full.keys // V))))
    n_params = len(full.keys) - len(fuc)
    bic = -2 * ll + n_params * np.log(full.weight.sum())
    return {"order": train.order, "contexts": len(fuc), "parameters": n_params,
            "heldout_loglik": heldout, "bic": float(bic)}


def choose_order(stats: OrderStats) -> tuple[int, pd.DataFrame]:
    """The order with the best held-out log-likelihood, and the table of every order (see
    :func:`select_order`)."""
    import pandas as pd

    rows = [score_order(stats.train[k], stats.test[k], stats.test_weight)
            for k in sorted(stats.train)]
    table = pd.DataFrame(rows)
    best = int(table["order"][int(np.argmax(table["heldout_loglik"].to_numpy()))])
    table["selected"] = np.where(table["order"] == best, "*", "")
    return best, table


def select_order(journeys: JourneySet, *, orders=(1, 2, 3, 4), holdout: float = 0.2,
                 seed: int | np.random.Generator = 0, collapse: bool = True
                 ) -> tuple[int, pd.DataFrame]:
    """Compare orders on a random held-out part of the journeys; the best held-out
    log-likelihood wins (:func:`choose_order` of :func:`order_stats`).

    Returns
    -------
    order : int
    table : DataFrame
        One row per order: ``order``, ``contexts``, ``parameters``, ``heldout_loglik`` (mean
        log-likelihood of a held-out journey), ``bic`` (on all journeys), ``selected``.
    """
    return choose_order(order_stats(journeys, orders=orders, holdout=holdout, seed=seed,
                                    collapse=collapse))
