"""EM for mixtures over customers: each segment a process over journeys, each customer in one.

A customer ``c`` with journeys ``j`` belongs to segment ``k`` with prior ``weights[k]``; given
``k`` all their journeys are independent draws of segment ``k``'s process, so

    log P(customer c) = logsumexp_k( log weights[k] + sum_{j of c} log P(j | k) ).

The E-step computes ``log P(sequence | k)`` once per distinct sequence (journeys are compressed
to distinct sequences with counts, :mod:`journeymodel.stats.segments`), sums them per customer
with one sparse product (customers x sequences counts), and turns them into each customer's
posterior segment probabilities; the M-step gives each distinct sequence the summed posterior of
the customers who made it, as its weight in each segment, and refits every segment's process
from those weighted sequences (exact EM: the log-likelihood never decreases).

Two processes (``component``):

- :class:`MarkovComponent`: a first-order absorbing Markov chain over touchpoints with exits
  to conversion, churn and drop-off. A journey's log-likelihood is linear in its transition
  counts, so all segments' log-likelihoods are one sparse product (sequences x transitions) and
  the M-step another (no loop over sequences or segments).
- :class:`HMMComponent`: the stages HMM (:mod:`journeymodel.models.stages.fit`) per segment,
  with the batched compiled forward pass (log-likelihoods) and forward-backward (weighted
  expected counts) of :mod:`journeymodel.fit.hmm`.

Censored (in-flight) journeys (issue 17). With ``cells``
(:func:`journeymodel.models.stages.censoring.censored_cells`: the distinct (last touchpoint,
elapsed-time bin) of the censored sequences and the survival ``S`` of every next event there,
under holding times fitted once on all journeys and shared by the segments), a censored
journey's last step contributes what is known of it, as in the Markov and stages models: in a
Markov segment, ``f_k(a, e) = sum_w p_k(a, w) S_aw(e) + p_k(a, conversion) S_a,conv(e) +
p_k(a, churn) S_a,churn(e) + p_k(a, drop-off)``, its expected count allocated over the next
events in proportion to the terms in the M-step (the unseen next event is a missing datum:
exact EM); in an HMM segment, the stages model's own term and completion
(:class:`~journeymodel.models.stages.censoring.CensoredCells`). Without ``cells`` the last step
contributes nothing (Markov) or exit factor 1 (HMM): ``censored="ignore"``.

References
----------
I. V. Cadez, D. Heckerman, C. Meek, P. Smyth, S. White, "Model-based clustering and
visualization of navigation patterns on a web site", Data Mining and Knowledge Discovery 7(4),
2003 (mixtures of Markov chains of web sessions). S. Helske and J. Helske, "Mixture hidden
Markov models for sequence data: the seqHMM package in R", J. Stat. Softw. 88(3), 2019.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp

from journeymodel.errors import ConvergenceWarning
from journeymodel.fit import hmm
from journeymodel.models.stages.fit import combine, split
from journeymodel.stats.sequences import N_STATUS, UNKNOWN

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.stages.censoring import CensoredCells
    from journeymodel.stats.segments import SegmentStats

#: Exits of the Markov chains (columns after the touchpoints), by exit status 1..3.
CHAIN_EXITS = ("conversion", "churn", "dropoff")
#: Smallest probability a log is taken of (an impossible move or journey).
LOG_FLOOR = 1e-300


# ---------------------------------------------------------------------------------------------
# The Markov chain process


def transition_matrix(codes: np.ndarray, offsets: np.ndarray, n_x: int) -> sp.csr_matrix:
    """Counts of first-order moves of each sequence, shape (n_sequences, (n_x + 1) * (n_x + 3)).

    Rows of a chain are the touchpoints ``0..n_x-1`` (``(direct)`` last) and ``start`` (row
    ``n_x``); columns are the touchpoints then the exits conversion, churn, drop-off. A move is
    the feature ``row * (n_x + 3) + column``. A censored journey's last step has no move out.
    """
    x, status = codes // N_STATUS, codes % N_STATUS
    seq = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    width = n_x + 3
    nxt = np.empty_like(x)
    nxt[:-1] = x[1:]
    go = status == 0
    end = (status > 0) & (status < UNKNOWN)
    start = offsets[:-1][np.diff(offsets) > 0]
    rows = np.concatenate([seq[go], seq[end], seq[start]])
    cols = np.concatenate([x[go] * width + nxt[go], x[end] * width + n_x + status[end] - 1,
                           n_x * width + x[start]])
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                         shape=(len(offsets) - 1, (n_x + 1) * width))


def cell_matrix(cells: CensoredCells, offsets: np.ndarray) -> sp.csr_matrix:
    """Which censored cell each sequence's last step is, shape (n_sequences, n_cells)."""
    last = cells.codes[offsets[1:][np.diff(offsets) > 0] - 1]
    seq = np.flatnonzero(np.diff(offsets) > 0)
    base = cells.n_x * N_STATUS
    hit = last >= base
    return sp.csr_matrix((np.ones(int(hit.sum())), (seq[hit], last[hit] - base)),
                         shape=(len(offsets) - 1, cells.n_cells))


@dataclass
class MarkovComponent:
    """First-order absorbing Markov chains, one per segment, over the sequences' touchpoints.

    Parameters are an array ``theta`` of shape (K, n_x + 1, n_x + 3): row ``r`` of segment
    ``k`` is P(next touchpoint or exit | touchpoint r) (row ``n_x``: the first touchpoint).
    ``cells``: censored last steps with their survival term (see the module docstring).
    """

    codes: np.ndarray
    offsets: np.ndarray
    n_x: int
    cells: CensoredCells | None = None
    moves: sp.csr_matrix = field(init=False)
    at_cell: sp.csr_matrix | None = field(init=False)

    def __post_init__(self) -> None:
        self.moves = transition_matrix(self.codes, self.offsets, self.n_x)
        self.at_cell = None if self.cells is None else cell_matrix(self.cells, self.offsets)

    def _terms(self, theta: np.ndarray) -> np.ndarray:
        """``p_k(a, j) S_aj(e)`` per (segment, cell, next event j), shape (K, n_cells, n_x + 3):
        the terms of each censored last step's factor ``f``."""
        c = self.cells
        surv = np.hstack([c.surv_touch, c.surv_exit[:, 1:]])  # touchpoints, conv, churn, drop
        return theta[:, c.touchpoint, :] * surv[None, :, :]

    def loglik(self, theta: np.ndarray) -> np.ndarray:
        """log P(sequence | segment), shape (n_sequences, K)."""
        # a move a segment never makes costs log(1e-300) (a journey of new data may make one
        # no segment makes; the segments are still told apart by its other moves)
        logs = np.log(np.maximum(theta.reshape(len(theta), -1).T, LOG_FLOOR))
        ll = np.asarray(self.moves @ logs)
        if self.cells is not None:
            f = self._terms(theta).sum(axis=2)  # (K, n_cells)
            ll += np.asarray(self.at_cell @ np.log(np.maximum(f, LOG_FLOOR)).T)
        return ll

    def counts(self, weights: np.ndarray) -> np.ndarray:
        """Observed moves per segment, shape (K, n_x + 1, n_x + 3)."""
        K = weights.shape[1]
        return np.asarray(self.moves.T @ weights).T.reshape(K, self.n_x + 1, self.n_x + 3)

    def censored_counts(self, weights: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Expected moves out of the censored last steps under ``theta``, shape (K, n_x + 1,
        n_x + 3): each cell's weighted count split over its next events in proportion to the
        terms of its factor ``f`` (fractional allocation)."""
        out = np.zeros((weights.shape[1], self.n_x + 1, self.n_x + 3))
        if self.cells is None:
            return out
        g = np.asarray(self.at_cell.T @ weights)  # (n_cells, K)
        terms = self._terms(theta)
        f = terms.sum(axis=2, keepdims=True)
        share = g.T[:, :, None] * np.divide(terms, f, out=np.zeros_like(terms), where=f > 0)
        np.add.at(out, (slice(None), self.cells.touchpoint), share)
        return out

    def m_step(self, weights: np.ndarray, old: np.ndarray) -> np.ndarray:
        """Rows of the expected moves (observed, and the censored last steps' allocated under
        ``old``) normalised (a row without moves kept from ``old``)."""
        return hmm.normalize(self.counts(weights) + self.censored_counts(weights, old), old)

    def init(self, K: int, rng: np.random.Generator) -> np.ndarray:
        """Random chains scattered around the pooled one (moves never seen stay impossible)."""
        pooled = self.counts(np.ones((self.moves.shape[0], 1)))
        noise = rng.lognormal(0.0, 1.0, size=(K, *pooled.shape[1:]))
        fallback = 1.0 / pooled.shape[2]
        return hmm.normalize((pooled + 1e-9 * (pooled > 0)) * noise, fallback)

    def n_parameters(self, K: int) -> int:
        """Free parameters per segment times K: moves seen in the data, less one per row."""
        seen = self.counts(np.ones((self.moves.shape[0], 1)))[0] > 0
        per = int(seen.sum() - np.count_nonzero(seen.any(axis=1)))
        return K * per


# ---------------------------------------------------------------------------------------------
# The stages HMM process


@dataclass
class HMMComponent:
    """One stages HMM (``n_stages`` hidden stages) per segment, fitted with the compiled
    kernels of :mod:`journeymodel.fit.hmm`. Parameters are a list of ``HMMParams`` over the
    combined symbols (factorised emission x exit, as :mod:`journeymodel.models.stages.fit`)."""

    codes: np.ndarray
    offsets: np.ndarray
    n_x: int
    n_stages: int
    cells: CensoredCells | None = None

    def _run(self, p: hmm.HMMParams) -> tuple[np.ndarray, hmm.HMMParams]:
        """Codes and parameters the compiled kernels read: with ``cells``, the censored last
        steps as the cells' symbols and their emission columns built from ``p``."""
        if self.cells is None:
            return self.codes, p
        return self.cells.codes, self.cells.finish(p)

    def loglik(self, params: list[hmm.HMMParams]) -> np.ndarray:
        """log P(sequence | segment), shape (n_sequences, K): one forward pass per segment."""
        out = []
        for p in params:
            codes, full = self._run(p)
            out.append(hmm.filter_last(codes, self.offsets, full)[1])
        return np.stack(out, axis=1)

    def m_step(self, weights: np.ndarray, old: list[hmm.HMMParams]) -> list[hmm.HMMParams]:
        """Each segment's HMM re-estimated from the sequences weighted by its column (with
        ``cells``, the censored last steps' counts completed as the stages model does)."""
        def update(c):
            return combine(*split(c, self.n_x))

        out = []
        for k, p in enumerate(old):  # one compiled pass per segment
            codes, full = self._run(p)
            e = hmm.forward_backward(codes, self.offsets, full,
                                     np.ascontiguousarray(weights[:, k]))
            if self.cells is not None:
                e = self.cells.complete(e, full)
            out.append(hmm.m_step(e, p, update))
        return out

    def init(self, K: int, rng: np.random.Generator) -> list[hmm.HMMParams]:
        """Random HMMs as the stages model starts them (emissions around the frequencies)."""
        counts = np.bincount(self.codes, minlength=self.n_x * N_STATUS).reshape(self.n_x,
                                                                                 N_STATUS)
        x_freq = counts.sum(1) / max(counts.sum(), 1)
        e_freq = counts[:, :4].sum(0) / max(counts[:, :4].sum(), 1)
        out = []
        for _ in range(K):
            p = hmm.random_params(self.n_stages, self.n_x * N_STATUS, rng)
            em_ = (x_freq + 1e-3) * rng.lognormal(0.0, 1.0, (self.n_stages, self.n_x))
            ex = (e_freq + 1e-3) * rng.lognormal(0.0, 0.5, (self.n_stages, 4))
            p.emissionprob = combine(em_ / em_.sum(1, keepdims=True),
                                     ex / ex.sum(1, keepdims=True))
            out.append(p)
        return out

    def n_parameters(self, K: int) -> int:
        """Free parameters: per segment start, transitions, emissions of seen touchpoints and
        seen exits (as the stages model counts them), times K."""
        counts = np.bincount(self.codes, minlength=self.n_x * N_STATUS).reshape(self.n_x,
                                                                                 N_STATUS)
        S = self.n_stages
        used_x, used_e = int((counts.sum(1) > 0).sum()), int((counts[:, :4].sum(0) > 0).sum())
        per = (S - 1) + S * (S - 1) + S * (used_x - 1) + S * (used_e - 1)
        return K * per


# ---------------------------------------------------------------------------------------------
# The mixture EM


@dataclass
class MixtureFit:
    """Result of :func:`fit_mixture` for one number of segments K.

    Attributes
    ----------
    params : Any
        The component's parameters (segments in the order fitted).
    weights : ndarray, shape (K,)
        Segment shares (prior membership).
    responsibilities : ndarray, shape (n_customers, K)
        P(segment | customer's journeys).
    log_likelihood : float
    history : list of float
        Log-likelihood at each EM iteration of the best restart (never decreases).
    n_iter : int
    converged : bool
    restart_log_likelihoods : list of float
    """

    params: Any
    weights: np.ndarray
    responsibilities: np.ndarray
    log_likelihood: float
    history: list[float]
    n_iter: int
    converged: bool
    restart_log_likelihoods: list[float] = field(default_factory=list)


def membership(component, params, weights: np.ndarray, bags: sp.csr_matrix
               ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior segment probabilities of each customer and their log-likelihoods.

    Parameters
    ----------
    component : MarkovComponent or HMMComponent
    params, weights
        The segments' processes and shares.
    bags : sparse matrix, shape (n_customers, n_sequences)
        How often each customer made each distinct sequence.

    Returns
    -------
    responsibilities : ndarray, shape (n_customers, K)
    log_likelihood : ndarray, shape (n_customers,)
    """
    ll = np.maximum(component.loglik(params), -1e250)  # an impossible journey: finite
    with np.errstate(divide="ignore"):
        joint = np.asarray(bags @ ll) + np.log(np.maximum(weights, LOG_FLOOR))
    total = logsumexp(joint, axis=1)
    return np.exp(joint - total[:, None]), total


def customer_bags(stats: SegmentStats) -> sp.csr_matrix:
    """The (customer x distinct sequence) counts of ``stats`` as a sparse matrix."""
    return sp.csr_matrix((stats.pair_weight, (stats.pair_customer, stats.pair_sequence)),
                         shape=(stats.n_customers, stats.sequences.n_sequences))


def em(component, bags: sp.csr_matrix, params, weights: np.ndarray, *, max_iter: int,
       tol: float, n_obs: float) -> MixtureFit:
    """EM from ``params``/``weights`` until the log-likelihood per journey step gains less than
    ``tol`` or ``max_iter`` iterations; the result's log-likelihood is that of its parameters."""
    history: list[float] = []
    converged = False
    bags_t = bags.T.tocsr()
    n_cust = max(bags.shape[0], 1)
    for it in range(max_iter):
        resp, ll = membership(component, params, weights, bags)
        history.append(float(ll.sum()))
        if it and history[-1] - history[-2] < tol * n_obs:
            converged = True
            break
        if it + 1 == max_iter:
            break
        params = component.m_step(np.asarray(bags_t @ resp), params)
        weights = resp.sum(axis=0) / n_cust
    return MixtureFit(params, weights, resp, history[-1], history, len(history), converged)


def fit_mixture(component, bags: sp.csr_matrix, K: int, *, restarts: int, seed, max_iter: int,
                tol: float, n_obs: float, warmup: int | None = None, warn: bool = True,
                progress=None) -> MixtureFit:
    """EM for K segments from ``restarts`` random starts; the best log-likelihood is kept.

    With ``warmup``, each start runs that many iterations and only the best continues to
    convergence (the short-runs strategy of :func:`journeymodel.fit.hmm.fit_hmm`).
    """
    rng = np.random.default_rng(seed)
    short = warmup is not None and restarts > 1 and warmup < max_iter
    best: MixtureFit | None = None
    lls = []
    for r in range(restarts):
        params = component.init(K, rng)
        fit = em(component, bags, params, np.full(K, 1.0 / K),
                 max_iter=warmup if short else max_iter, tol=tol, n_obs=n_obs)
        lls.append(fit.log_likelihood)
        if best is None or fit.log_likelihood > best.log_likelihood:
            best = fit
        if progress is not None:
            progress(r, fit)
    if short and not best.converged:
        more = em(component, bags, best.params, best.weights,
                  max_iter=max_iter - best.n_iter + 1, tol=tol, n_obs=n_obs)
        history = best.history[:-1] + more.history
        best = MixtureFit(more.params, more.weights, more.responsibilities,
                          more.log_likelihood, history, len(history), more.converged)
    best.restart_log_likelihoods = lls
    if warn and not best.converged:
        warnings.warn(
            f"segment EM with {K} segments did not converge in {max_iter} iterations (last "
            f"log-likelihood gain {np.diff(best.history[-2:]).tolist()}); raise max_iter, "
            "loosen tol, or use fewer segments", ConvergenceWarning, stacklevel=2)
    return best


def criteria(log_likelihood: float, n_parameters: int, n_customers: int) -> tuple[float, float]:
    """(AIC, BIC) of a mixture over customers; BIC's sample size is the number of customers
    (the independent units)."""
    return (2.0 * n_parameters - 2.0 * log_likelihood,
            n_parameters * float(np.log(max(n_customers, 1))) - 2.0 * log_likelihood)
