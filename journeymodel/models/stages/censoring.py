"""Censored (in-flight) journeys in the stages HMM: what their last step contributes (issue 17).

A journey still in flight at the end of observation ends with touchpoint ``a`` emitted in a
stage ``z``, then silence for ``e = observed_until - last event time`` (``e <= gap``). What is
known of its next event is only that it has not happened yet. With ``S_{a,k}`` the survival of
the holding time from ``a`` to next event ``k`` (the model's own ``holding_``,
:class:`~journeymodel.stats.holding.HoldingTimes`), the last step's exit factor is

    f(z) = exit[z, continue] * sum_{z'} transmat[z, z'] sum_w emission[z', w] S_{a,w}(e)
           + exit[z, conversion] S_{a,conversion}(e) + exit[z, churn] S_{a,churn}(e)
           + exit[z, dropoff]

(drop-off is declared only after the gap, so its survival at ``e`` is 1; the next event is
never ``(direct)``, the pseudo-touchpoint of journeys without touchpoints, whose survival is
therefore 0). Before issue 17 the factor was 1, which loses exactly the journeys that are about
to drop off: on a known process with 40% of journeys in flight, P(conversion) from the start
came out 0.861 against a truth of 0.654; with the survival term 0.656 (0.654 at 15% in flight),
and drop-off after each touchpoint 0.201/0.100/0.094 against 0.2/0.1/0.1 (was 0.075/0.033/0.031;
``benchmarks/censoring_bias.py``, 4 seeds x 20,000 customers).

How it runs in the HMM: each distinct (last touchpoint, elapsed-time bin) of the censored
sequences (a *cell*) becomes one extra symbol of the alphabet, whose emission column is
``emission[:, a] * f(z)`` (rebuilt from the parameters after every M-step: :func:`columns`), so
the compiled forward-backward of :mod:`journeymodel.fit.hmm` runs unchanged. Before each M-step
the expected counts of a cell's symbol (the posterior of the last stage) are split over the
terms of ``f`` (:meth:`CensoredCells.complete`): the last step's touchpoint counts in its stage,
its exit in proportion to ``exit[z, k] S_k(e)``, and the unseen next event of the
``continue`` term as a transition ``z -> z'`` and a touchpoint ``w`` emitted in ``z'`` with
unknown exit. That is exact EM for the likelihood with the survival term (the next event is a
missing datum), so the log-likelihood never decreases. The holding times stay fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.fit import hmm
from journeymodel.models.markov.censoring import bin_middles
from journeymodel.models.stages.fit import split
from journeymodel.stats.sequences import N_STATUS, UNKNOWN

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.stats.holding import HoldingTimes
    from journeymodel.stats.sequences import SequenceStats


@dataclass(frozen=True)
class CensoredCells:
    """The distinct (last touchpoint, elapsed bin) cells of censored sequences, with the
    survival of every next event at each cell's elapsed time.

    Attributes
    ----------
    n_x : int
        Touchpoints of the alphabet (``(direct)`` included, last).
    touchpoint : ndarray of int64, shape (n_cells,)
        The last touchpoint ``a`` of each cell (index into the alphabet).
    surv_touch : ndarray, shape (n_cells, n_x)
        ``S_{a,w}(e)`` for each next touchpoint ``w`` (0 for ``(direct)``).
    surv_exit : ndarray, shape (n_cells, 4)
        Survival of the exits: 1 for continue (its survival is in ``surv_touch``), then
        conversion, churn, and 1 for drop-off.
    codes : ndarray of int64
        The sequences' codes with each censored last step replaced by its cell's symbol
        ``n_x * 5 + cell``.
    """

    n_x: int
    touchpoint: np.ndarray
    surv_touch: np.ndarray
    surv_exit: np.ndarray
    codes: np.ndarray

    @property
    def n_cells(self) -> int:
        return len(self.touchpoint)

    @property
    def n_symbols(self) -> int:
        """The alphabet with one symbol per cell after the combined symbols."""
        return self.n_x * N_STATUS + self.n_cells

    def factors(self, params: hmm.HMMParams) -> np.ndarray:
        """The terms of ``f`` per (cell, stage, next event), shape (n_cells, K, 4): continue
        (summed over next stages and touchpoints), conversion, churn, drop-off."""
        emission, exit_ = _base(params, self.n_x)
        reach = params.transmat @ (emission @ self.surv_touch.T)  # (K, n_cells)
        terms = exit_[None, :, :] * self.surv_exit[:, None, :]
        terms[:, :, 0] *= reach.T
        return terms

    def finish(self, params: hmm.HMMParams) -> hmm.HMMParams:
        """``params`` with the cells' emission columns rebuilt from its base columns."""
        base = params.emissionprob[:, :self.n_x * N_STATUS]
        emission, _ = _base(params, self.n_x)
        f = self.factors(params).sum(axis=2)  # (n_cells, K)
        cols = emission[:, self.touchpoint] * f.T
        return hmm.HMMParams(params.startprob, params.transmat,
                             np.ascontiguousarray(np.hstack([base, cols])))

    def complete(self, e: hmm.EStep, params: hmm.HMMParams) -> hmm.EStep:
        """Expected counts of the complete data: each cell's posterior last-stage counts split
        over the terms of ``f`` (see the module docstring); emission counts of the base
        alphabet only."""
        nb = self.n_x * N_STATUS
        g = e.emission_counts[:, nb:].T  # (n_cells, K) posterior counts of the last stage
        terms = self.factors(params)
        f = terms.sum(axis=2, keepdims=True)
        share = g[:, :, None] * np.divide(terms, f, out=np.zeros_like(terms), where=f > 0)
        emis = e.emission_counts[:, :nb].reshape(len(params.startprob), self.n_x,
                                                 N_STATUS).copy()
        # the last step: its touchpoint in its stage, its exit by the terms of f
        np.add.at(emis, (slice(None), self.touchpoint, slice(0, 4)),
                  share.transpose(1, 0, 2))
        # the unseen next event of "continue": z -> z', then w emitted in z' (exit unknown)
        emission, _ = _base(params, self.n_x)
        cont = share[:, :, 0]  # (n_cells, K)
        per_next = emission[None, :, :] * self.surv_touch[:, None, :]  # (n_cells, K', n_x)
        reach = per_next.sum(axis=2)  # (n_cells, K')
        wz = np.divide(cont, (params.transmat @ reach.T).T, out=np.zeros_like(cont),
                       where=cont > 0)  # (n_cells, K)
        trans = params.transmat * np.einsum("ck,cz->kz", wz, reach)
        emis[:, :, UNKNOWN] += np.einsum("ck,kz,czw->zw", wz, params.transmat, per_next)
        return hmm.EStep(e.log_likelihood, e.start_counts, e.trans_counts + trans,
                         emis.reshape(len(emis), nb), e.posteriors)


def _base(params: hmm.HMMParams, n_x: int) -> tuple[np.ndarray, np.ndarray]:
    """(emission (K, n_x), exit (K, 4)) of the combined alphabet's columns."""
    return split(params.emissionprob[:, :n_x * N_STATUS], n_x)


def censored_cells(seqs: SequenceStats, holding: HoldingTimes | None) -> CensoredCells | None:
    """The cells of ``seqs``' censored sequences with a known elapsed time, and their
    survival under ``holding`` (None when there is none or no holding times)."""
    bins = seqs.elapsed_bins
    last = seqs.offsets[1:] - 1
    cens = np.flatnonzero((bins >= 0) & (np.diff(seqs.offsets) > 0))
    if holding is None or len(cens) == 0:
        return None
    cens = cens[seqs.codes[last[cens]] % N_STATUS == UNKNOWN]
    if len(cens) == 0:
        return None
    n_x = len(seqs.symbols)
    a = seqs.codes[last[cens]] // N_STATUS
    cell_key, cell_of = np.unique(a * 10_000 + bins[cens], return_inverse=True)
    touch, cbin = cell_key // 10_000, cell_key % 10_000
    codes = seqs.codes.copy()
    codes[last[cens]] = n_x * N_STATUS + cell_of
    surv_touch, surv_exit = _survival(seqs.symbols, touch, cbin, holding)
    return CensoredCells(n_x, touch.astype(np.int64), surv_touch, surv_exit, codes)


def _survival(symbols, touch, cbin, holding: HoldingTimes):
    """(S_{a,w}(e) for every touchpoint w, exits' survival) per cell; a touchpoint the holding
    times do not know survives with 1 (no information), ``(direct)`` with 0."""
    T = len(holding.touchpoints)
    where = {name: i for i, name in enumerate(holding.touchpoints)}
    h_of = np.array([where.get(s, -1) for s in symbols], np.int64)  # (n_x,)
    e = bin_middles(holding.edges)[cbin]
    e = np.minimum(e, np.nextafter(holding.edges[-1], 0))
    src = h_of[touch]  # (n_cells,)
    known = src >= 0
    s0 = np.maximum(src, 0)[:, None]
    dst = np.maximum(h_of, 0)[None, :]
    surv_touch = np.where(known[:, None] & (h_of >= 0)[None, :],
                          holding.sf(s0, dst, e[:, None]), 1.0)
    surv_touch[:, len(symbols) - 1] = 0.0  # (direct) is never a next event
    outs = holding.sf(s0, np.array([[T, T + 1]]), e[:, None])
    outs = np.where(known[:, None], outs, 1.0)
    ones = np.ones((len(touch), 1))
    return surv_touch, np.hstack([ones, outs, ones])
