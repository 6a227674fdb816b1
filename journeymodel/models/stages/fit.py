"""Fitting the stage HMM for one number of stages K: factorised emissions, topology, EM from
random starts, canonical stage order, information criteria and absorption probabilities.

A step is one symbol of a categorical HMM over (touchpoint, exit) pairs
(:mod:`journeymodel.stats.sequences`), with the factorised emission ``emissionprob[s, x] *
exitprob[s, e]``; :mod:`journeymodel.fit.hmm` runs the batched forward-backward and EM, and the
M-step re-factorises the expected counts (exact, so the log-likelihood never decreases).
Everything here reads the distinct sequences only (:class:`~journeymodel.stats.sequences.
SequenceStats`, or journeys encoded one by one: anything with ``codes``, ``offsets``,
``weight`` and ``n_symbols``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from journeymodel.fit import hmm
from journeymodel.stats.sequences import N_STATUS, UNKNOWN

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.stages.censoring import CensoredCells
    from journeymodel.stats.sequences import SequenceStats


@dataclass
class StageFit:
    """Parameters of one fitted stage HMM (K stages), in canonical order."""

    startprob: np.ndarray
    transmat: np.ndarray
    emission: np.ndarray
    exit: np.ndarray
    log_likelihood: float
    n_parameters: int
    history: list[float]
    n_iter: int
    converged: bool

    @property
    def params(self) -> hmm.HMMParams:
        return hmm.HMMParams(self.startprob, self.transmat, combine(self.emission, self.exit))


def combine(emission: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Combined emission matrix (K, n_x * 5): ``emission[k, x] * exit_[k, e]``, and
    ``emission[k, x]`` in the ``unknown`` column (a censored journey's last step)."""
    K, n_x = emission.shape
    out = np.empty((K, n_x, N_STATUS))
    out[:, :, :4] = emission[:, :, None] * exit_[:, None, :]
    out[:, :, UNKNOWN] = emission
    return out.reshape(K, n_x * N_STATUS)


def split(counts: np.ndarray, n_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Factorised M-step: expected combined-symbol counts (K, n_x * 5) to
    (emission (K, n_x), exit (K, 4)); any positive scaling of a row gives the same result."""
    c = counts.reshape(len(counts), n_x, N_STATUS)
    emission, exit_ = c.sum(axis=2), c[:, :, :4].sum(axis=1)
    return hmm.normalize(emission, 1.0 / n_x), hmm.normalize(exit_, 0.25)


def topology_masks(K: int, topology: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Start and transition masks: ``funnel`` starts in the first ceil(K/2) stages and moves
    forward or one stage back; ``free`` has none."""
    if topology == "free":
        return None, None
    start = np.arange(K) < max(1, -(-K // 2))
    trans = np.arange(K)[None, :] >= np.arange(K)[:, None] - 1
    return start, trans


def fit_stages(seqs: SequenceStats, K: int, *, topology: str, restarts: int, seed,
               max_iter: int, tol: float, engine: str, warmup: int | None = None,
               progress=None, cells: CensoredCells | None = None,
               warn: bool = True, remote=None) -> StageFit:
    """EM for K stages on the distinct sequences ``seqs``, best of ``restarts`` random starts.

    ``cells`` (:func:`~journeymodel.models.stages.censoring.censored_cells`): the censored
    sequences' last steps get the survival term of their holding time (issue 17); None: exit
    factor 1. The log-likelihood is then that of the data with the survival term.

    ``remote`` (:class:`journeymodel.scale.em.RemoteSequences`): the sequences are held by Dask
    workers, which run the E-step (``seqs`` then gives only the alphabet); the same start and
    EM as in one process, from the summed symbol counts and E-steps (issue 15).
    """
    n_x = seqs.n_symbols // N_STATUS
    counts = (symbol_counts(seqs) if remote is None else remote.base_counts
              ).reshape(n_x, N_STATUS)
    x_freq = counts.sum(1) / max(counts.sum(), 1.0)
    e_freq = counts[:, :4].sum(0) / max(counts[:, :4].sum(), 1.0)
    start_mask, trans_mask = topology_masks(K, topology)

    def emission_init(rng):
        em_ = (x_freq + 1e-3) * rng.lognormal(0.0, 1.0, (K, n_x))
        ex = (e_freq + 1e-3) * rng.lognormal(0.0, 0.5, (K, 4))
        return combine(em_ / em_.sum(1, keepdims=True), ex / ex.sum(1, keepdims=True))

    def emission_update(c):
        return combine(*split(c, n_x))

    n_symbols, hooks = seqs.n_symbols, {}
    if cells is not None:
        n_symbols = cells.n_symbols
        hooks = {"complete": cells.complete, "finish": cells.finish}
    data = remote or hmm.LocalSequences(seqs.codes if cells is None else cells.codes,
                                        seqs.offsets, seqs.weight)
    fit = hmm.fit_hmm(None, None, K, n_symbols, data=data, restarts=restarts, seed=seed,
                      max_iter=max_iter, tol=tol,
                      start_mask=start_mask, trans_mask=trans_mask, engine=engine,
                      emission_init=emission_init, emission_update=emission_update,
                      warmup=warmup, progress=progress, warn=warn, **hooks)
    emission, exit_ = split(fit.params.emissionprob[:, :seqs.n_symbols], n_x)
    used_x, used_e = counts.sum(1) > 0, counts[:, :4].sum(0) > 0
    n_par = hmm.n_free_parameters(hmm.HMMParams(fit.params.startprob, fit.params.transmat,
                                                emission), start_mask=start_mask,
                                  trans_mask=trans_mask, symbols_used=used_x)
    n_par += K * (int(used_e.sum()) - 1)
    return StageFit(fit.params.startprob, fit.params.transmat, emission, exit_,
                    fit.log_likelihood, int(n_par), fit.history, fit.n_iter, fit.converged)


def symbol_counts(seqs: SequenceStats) -> np.ndarray:
    """Weighted count of each combined symbol of ``seqs``, shape (n_symbols,)."""
    return np.bincount(seqs.codes, weights=np.repeat(seqs.weight, np.diff(seqs.offsets)),
                       minlength=seqs.n_symbols)


def mean_position(fit: StageFit, seqs: SequenceStats, remote=None) -> np.ndarray:
    """Posterior mean step index (0 = first step of a journey) of each stage, shape (K,);
    summed over the workers' sequences with ``remote`` (see :func:`fit_stages`)."""
    if remote is not None:
        return remote.mean_position(fit.params)
    return position_sums(fit.params, seqs.codes, seqs.offsets, seqs.weight).mean()


@dataclass(frozen=True)
class PositionSums:
    """Posterior-weighted step index and weight of each stage over some sequences (they add
    over parts of the sequences; :meth:`mean` is the mean position)."""

    weighted: np.ndarray
    total: np.ndarray

    def __add__(self, other: PositionSums) -> PositionSums:
        return PositionSums(self.weighted + other.weighted, self.total + other.total)

    def mean(self) -> np.ndarray:
        return self.weighted / np.maximum(self.total, 1e-300)


def position_sums(params: hmm.HMMParams, codes: np.ndarray, offsets: np.ndarray,
                  weight: np.ndarray) -> PositionSums:
    """The :class:`PositionSums` of the sequences ``codes``/``offsets``/``weight``."""
    e = hmm.forward_backward(codes, offsets, params, weight, posteriors=True)
    lengths = np.diff(offsets)
    pos = np.arange(len(codes)) - np.repeat(offsets[:-1], lengths)
    w = np.repeat(weight, lengths)[:, None] * e.posteriors
    return PositionSums((w * pos[:, None]).sum(0), w.sum(0))


def canonical_order(fit: StageFit, seqs: SequenceStats, remote=None
                    ) -> tuple[StageFit, np.ndarray, np.ndarray]:
    """Stages sorted by posterior mean position in the journey (ties keep their order).

    Returns the permuted fit, the sorted mean positions and the order (fitted stage index of
    each new stage). ``remote``: see :func:`fit_stages`.
    """
    mean_pos = mean_position(fit, seqs, remote)
    order = np.argsort(mean_pos, kind="stable")
    return permute(fit, order), mean_pos[order], order


def permute(fit: StageFit, order: np.ndarray) -> StageFit:
    """The same fit with its stages in ``order``."""
    return StageFit(fit.startprob[order], fit.transmat[np.ix_(order, order)],
                    fit.emission[order], fit.exit[order], fit.log_likelihood, fit.n_parameters,
                    fit.history, fit.n_iter, fit.converged)


def criteria(fit: StageFit, n_obs: float) -> tuple[float, float]:
    """(AIC, BIC); BIC's sample size is the weighted number of journey steps."""
    return (2.0 * fit.n_parameters - 2.0 * fit.log_likelihood,
            fit.n_parameters * float(np.log(max(n_obs, 1.0))) - 2.0 * fit.log_likelihood)


def absorption(fit: StageFit) -> np.ndarray:
    """P(the journey ends in conversion, churn, dropoff | at a step in stage k), shape (K, 3).

    Solves ``v = exit[:, o] + exit[:, continue] * (transmat @ v)`` for each outcome ``o``.
    """
    K = len(fit.startprob)
    lhs = np.eye(K) - fit.exit[:, :1] * fit.transmat
    v, *_ = np.linalg.lstsq(lhs, fit.exit[:, 1:], rcond=None)
    return np.clip(v, 0.0, 1.0)
