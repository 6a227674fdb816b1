"""Choosing the order of a Markov journey model: held-out log-likelihood and BIC.

Orders are compared as models of the same data: each journey's touchpoint sequence with runs of
one touchpoint merged (so no order has repeated windows to collapse), followed by its outcome.
At order ``k`` the next event (touchpoint or outcome) depends on the previous ``min(k, t)``
touchpoints; this is the sequence model behind the window chain (for maximum-likelihood
estimates both give the same probability to every journey). The held-out log-likelihood uses
add-1/2 smoothing over all possible next events, so unseen contexts or moves are penalised, not
impossible. BIC uses the maximum-likelihood fit to all journeys, counting one free parameter
per observed move beyond the first of each context.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.data.journeys import CENSORED, JourneySet
from journeymodel.stats.transitions import state_base

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

ALPHA = 0.5  # smoothing of held-out probabilities


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


def _table(ctx, sym, w, V):
    pair = ctx * V + sym
    up, inv = np.unique(pair, return_inverse=True)
    npair = np.bincount(inv, weights=w, minlength=len(up))
    uc, cinv = np.unique(ctx, return_inverse=True)
    nctx = np.bincount(cinv, weights=w, minlength=len(uc))
    return up, npair, uc, nctx


def _lookup(keys, values, query):
    if len(keys) == 0:
        return np.zeros(len(query))
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0.0)


def score_order(train: JourneySet, test: JourneySet, full: JourneySet, order: int
                ) -> dict[str, float]:
    """Held-out log-likelihood (per held-out journey) and BIC of one order."""
    ctx, sym, w, V = _events(train, order)
    up, npair, uc, nctx = _table(ctx, sym, w, V)
    tctx, tsym, tw, _ = _events(test, order)
    num = _lookup(up, npair, tctx * V + tsym) + ALPHA
    den = _lookup(uc, nctx, tctx) + ALPHA * V
    heldout = float(np.sum(tw * np.log(num / den)) / max(test.weight.sum(), 1e-300))
    fctx, fsym, fw, _ = _events(full, order)
    fup, fnp, fuc, fnc = _table(fctx, fsym, fw, V)
    ll = float(np.sum(fnp * np.log(fnp / _lookup(fuc, fnc, fup // V))))
    n_params = len(fup) - len(fuc)
    bic = -2 * ll + n_params * np.log(fw.sum())
    return {"order": order, "contexts": len(fuc), "parameters": n_params,
            "heldout_loglik": heldout, "bic": float(bic)}


def select_order(journeys: JourneySet, *, orders=(1, 2, 3, 4), holdout: float = 0.2,
                 seed: int | np.random.Generator = 0, collapse: bool = True
                 ) -> tuple[int, pd.DataFrame]:
    """Compare orders on a random held-out part of the journeys; the best held-out
    log-likelihood wins.

    Returns
    -------
    order : int
    table : DataFrame
        One row per order: ``order``, ``contexts``, ``parameters``, ``heldout_loglik`` (mean
        log-likelihood of a held-out journey), ``bic`` (on all journeys), ``selected``.
    """
    import pandas as pd

    data = merge_runs(journeys) if collapse else journeys
    train, test = data.split(holdout, seed)
    rows = [score_order(train, test, data, k) for k in orders
            if float(len(journeys.touchpoints) + 1) ** (k + 1) < 2.0**62]
    table = pd.DataFrame(rows)
    best = int(table["order"][int(np.argmax(table["heldout_loglik"].to_numpy()))])
    table["selected"] = np.where(table["order"] == best, "*", "")
    return best, table
