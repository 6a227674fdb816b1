"""Categorical hidden Markov models on many short sequences: forward-backward, EM, Viterbi.

Model-agnostic machinery: arrays in, arrays out. Sequences are given the way
:class:`journeymodel.data.journeys.JourneySet` holds journeys (and hmmlearn holds samples): one flat
array of symbol codes plus CSR ``offsets``, so sequence ``j`` is ``codes[offsets[j]:offsets[j+1]]``.
Each sequence may carry a weight (how many identical sequences it stands for); expected counts
are multiplied by it, so a table of unique paths with counts fits exactly like the expanded data.

The E-step is a scaled forward-backward (Rabiner 1989, section V.A) compiled with numba: one pass
over the flat event array, with no Python loop per sequence and no per-sequence ``logsumexp``.
Its cost grows with the number of events times ``K**2``, not with the number of sequences, which
is what makes it much faster than hmmlearn on many short journeys (see
``benchmarks/bench_stages.py``). hmmlearn's ``CategoricalHMM`` stays available as an engine and is
the reference the tests compare against.

References
----------
L. R. Rabiner, "A tutorial on hidden Markov models and selected applications in speech
recognition", Proc. IEEE 77(2), 1989.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from journeymodel.choices import HMM_ENGINES
from journeymodel.errors import ConvergenceWarning, OptionError
from journeymodel.stats.additive import Additive

ENGINES = HMM_ENGINES


# ---------------------------------------------------------------------------------------------
# Compiled kernels


@njit(cache=True, nogil=True)
def _estep_kernel(codes, offsets, weights, pi, A, B, want_gamma, gamma_out, ll_out,
                  start_c, trans_c, emis_c):  # pragma: no cover - compiled
    """Forward-backward over every sequence; accumulates weighted expected counts.

    One function on purpose (longer than the house's ~60 lines): split into per-sequence
    forward and backward helpers it measured 15-40% slower (numba/LLVM optimise across the
    whole loop nest here).
    """
    n = offsets.shape[0] - 1
    K = pi.shape[0]
    max_t = 1
    for j in range(n):
        max_t = max(max_t, offsets[j + 1] - offsets[j])
    alpha = np.empty((max_t, K))
    beta = np.empty((max_t, K))
    scale = np.empty(max_t)
    tmp = np.empty(K)
    for j in range(n):
        s = offsets[j]
        T = offsets[j + 1] - s
        if T == 0:
            ll_out[j] = 0.0
            continue
        w = weights[j]
        x = codes[s]
        c = 0.0
        for k in range(K):
            a = pi[k] * B[k, x]
            alpha[0, k] = a
            c += a
        ok = c > 0.0
        if ok:
            for k in range(K):
                alpha[0, k] /= c
            scale[0] = c
        ll = math.log(c) if ok else -np.inf
        t = 1
        while ok and t < T:
            x = codes[s + t]
            c = 0.0
            for k in range(K):
                acc = 0.0
                for i in range(K):
                    acc += alpha[t - 1, i] * A[i, k]
                a = acc * B[k, x]
                alpha[t, k] = a
                c += a
            if c <= 0.0:
                ok = False
                ll = -np.inf
                break
            for k in range(K):
                alpha[t, k] /= c
            scale[t] = c
            ll += math.log(c)
            t += 1
        ll_out[j] = ll
        if not ok:
            continue
        for k in range(K):
            beta[T - 1, k] = 1.0
        for t in range(T - 2, -1, -1):
            x1 = codes[s + t + 1]
            inv = 1.0 / scale[t + 1]
            for k in range(K):
                tmp[k] = B[k, x1] * beta[t + 1, k]
            for i in range(K):
                acc = 0.0
                for k in range(K):
                    acc += A[i, k] * tmp[k]
                beta[t, i] = acc * inv
                ai = alpha[t, i] * w * inv
                for k in range(K):
                    trans_c[i, k] += ai * A[i, k] * tmp[k]
        for t in range(T):
            x = codes[s + t]
            for k in range(K):
                g = alpha[t, k] * beta[t, k]
                emis_c[k, x] += w * g
                if want_gamma:
                    gamma_out[s + t, k] = g
        for k in range(K):
            start_c[k] += w * alpha[0, k] * beta[0, k]


@njit(cache=True, nogil=True)
def _filter_kernel(codes, offsets, pi, A, B, last_out, ll_out):  # pragma: no cover - compiled
    n = offsets.shape[0] - 1
    K = pi.shape[0]
    cur = np.empty(K)
    for j in range(n):
        s = offsets[j]
        T = offsets[j + 1] - s
        for k in range(K):
            cur[k] = pi[k]
        ll = 0.0
        for t in range(T):
            x = codes[s + t]
            c = 0.0
            for k in range(K):
                if t == 0:
                    a = pi[k] * B[k, x]
                else:
                    a = 0.0
                    for i in range(K):
                        a += last_out[j, i] * A[i, k]
                    a *= B[k, x]
                cur[k] = a
                c += a
            if c <= 0.0:
                ll = -np.inf
                break
            for k in range(K):
                last_out[j, k] = cur[k] / c
            ll += math.log(c)
        if T == 0:
            for k in range(K):
                last_out[j, k] = pi[k]
        ll_out[j] = ll


@njit(cache=True, nogil=True)
def _viterbi_kernel(codes, offsets, log_pi, log_A, log_B, path_out, lp_out):  # pragma: no cover
    n = offsets.shape[0] - 1
    K = log_pi.shape[0]
    max_t = 1
    for j in range(n):
        max_t = max(max_t, offsets[j + 1] - offsets[j])
    delta = np.empty((max_t, K))
    back = np.zeros((max_t, K), np.int64)
    for j in range(n):
        s = offsets[j]
        T = offsets[j + 1] - s
        if T == 0:
            lp_out[j] = 0.0
            continue
        for k in range(K):
            delta[0, k] = log_pi[k] + log_B[k, codes[s]]
        for t in range(1, T):
            x = codes[s + t]
            for k in range(K):
                best = -np.inf
                arg = 0
                for i in range(K):
                    v = delta[t - 1, i] + log_A[i, k]
                    if v > best:
                        best = v
                        arg = i
                delta[t, k] = best + log_B[k, x]
                back[t, k] = arg
        best = -np.inf
        arg = 0
        for k in range(K):
            if delta[T - 1, k] > best:
                best = delta[T - 1, k]
                arg = k
        lp_out[j] = best
        path_out[s + T - 1] = arg
        for t in range(T - 1, 0, -1):
            arg = back[t, arg]
            path_out[s + t - 1] = arg


# ---------------------------------------------------------------------------------------------
# Parameters and checks


@dataclass
class HMMParams:
    """Parameters of a categorical HMM.

    Attributes
    ----------
    startprob : ndarray, shape (K,)
    transmat : ndarray, shape (K, K)
        Row ``i`` is P(next state | state ``i``).
    emissionprob : ndarray, shape (K, M)
        Row ``k`` is P(symbol | state ``k``).
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emissionprob: np.ndarray

    @property
    def n_states(self) -> int:
        return len(self.startprob)

    def copy(self) -> HMMParams:
        return HMMParams(self.startprob.copy(), self.transmat.copy(), self.emissionprob.copy())

    def check(self) -> None:
        """Raise OptionError unless the shapes agree and every distribution sums to 1."""
        K = len(self.startprob)
        if self.transmat.shape != (K, K) or self.emissionprob.ndim != 2 or (
                self.emissionprob.shape[0] != K):
            raise OptionError(
                f"HMM parameter shapes disagree: startprob {self.startprob.shape}, transmat "
                f"{self.transmat.shape}, emissionprob {self.emissionprob.shape}")
        for name, arr in (("startprob", self.startprob[None]), ("transmat", self.transmat),
                          ("emissionprob", self.emissionprob)):
            sums = arr.sum(axis=1)
            if not np.allclose(sums, 1.0, atol=1e-8) or (arr < 0).any():
                raise OptionError(f"{name} rows must be non-negative and sum to 1 "
                                  f"(got row sums of {np.round(sums, 6).tolist()})")


def _as_csr(codes, offsets, weights):
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    if n < 0 or offsets[0] != 0 or offsets[-1] != len(codes) or (np.diff(offsets) < 0).any():
        raise OptionError(f"offsets must rise from 0 to len(codes)={len(codes)} "
                          f"(got {len(offsets)} offsets ending at {offsets[-1:]})")
    if weights is None:
        weights = np.ones(n)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if weights.shape != (n,) or (weights < 0).any() or not np.isfinite(weights).all():
        raise OptionError(f"weights must be {n} finite non-negative numbers "
                          f"(got shape {weights.shape})")
    return codes, offsets, weights


# ---------------------------------------------------------------------------------------------
# E-step, posteriors, filtering, Viterbi


@dataclass
class EStep(Additive):
    """Result of one forward-backward pass over all sequences.

    E-steps add up: with the same parameters, the E-step over sequences ``A`` plus the E-step
    over sequences ``B`` is the E-step over ``A`` followed by ``B``. The expected counts are sums
    over sequences, so they add (in any order, to float rounding); the per-sequence
    log-likelihoods (and posteriors, when both sides have them) are concatenated in the order
    added, so ``(ea + eb).total(concatenate([wa, wb])) == ea.total(wa) + eb.total(wb)``. An EM
    spread over workers (issue 15) runs :func:`forward_backward` on each part of the sequences,
    sums the E-steps and takes one M-step from the sum (:func:`m_step`). ``0 + e`` is ``e``, so
    ``sum(steps)`` works.

    Attributes
    ----------
    log_likelihood : ndarray, shape (n_sequences,)
        log P(sequence) per sequence (0 for empty ones), unweighted.
    start_counts : ndarray, shape (K,)
    trans_counts : ndarray, shape (K, K)
    emission_counts : ndarray, shape (K, M)
        Expected counts, each sequence's contribution multiplied by its weight.
    posteriors : ndarray, shape (n_events, K), or None
        P(state at event | its sequence), when asked for.

    Examples
    --------
    Two parts of three sequences, the E-step of each added, equal the E-step of all three:

    >>> p = HMMParams(np.array([0.6, 0.4]), np.array([[0.7, 0.3], [0.2, 0.8]]),
    ...               np.array([[0.9, 0.1], [0.3, 0.7]]))
    >>> whole = forward_backward(np.array([0, 1, 1, 0, 1]), np.array([0, 2, 3, 5]), p)
    >>> a = forward_backward(np.array([0, 1, 1]), np.array([0, 2, 3]), p)
    >>> b = forward_backward(np.array([0, 1]), np.array([0, 2]), p)
    >>> both = sum([a, b])
    >>> bool(np.allclose(both.trans_counts, whole.trans_counts))
    True
    >>> bool(np.allclose(both.log_likelihood, whole.log_likelihood))
    True
    """

    log_likelihood: np.ndarray
    start_counts: np.ndarray
    trans_counts: np.ndarray
    emission_counts: np.ndarray
    posteriors: np.ndarray | None = None

    def total(self, weights: np.ndarray) -> float:
        """The weighted log-likelihood sum_j w_j log P(sequence j)."""
        ll = self.log_likelihood
        used = weights > 0
        return float(np.dot(weights[used], ll[used]))

    def _add(self, other: EStep) -> EStep:
        if self.emission_counts.shape != other.emission_counts.shape:
            raise OptionError(
                "E-steps of different models cannot be added (expected counts of shape "
                f"{self.emission_counts.shape} and {other.emission_counts.shape})")
        both = self.posteriors is not None and other.posteriors is not None
        return EStep(np.concatenate([self.log_likelihood, other.log_likelihood]),
                     self.start_counts + other.start_counts,
                     self.trans_counts + other.trans_counts,
                     self.emission_counts + other.emission_counts,
                     np.concatenate([self.posteriors, other.posteriors]) if both else None)


def forward_backward(codes, offsets, params: HMMParams, weights=None, *,
                     posteriors: bool = False) -> EStep:
    """Scaled forward-backward over all sequences at once: log-likelihoods and expected counts.

    Parameters
    ----------
    codes : array of int, shape (n_events,)
        Symbols ``0..M-1``.
    offsets : array of int, shape (n_sequences + 1,)
    params : HMMParams
    weights : array of float, shape (n_sequences,), optional
        Sequence weights (default 1).
    posteriors : bool
        Also return P(state | sequence) for every event.

    Returns
    -------
    EStep

    Examples
    --------
    >>> p = HMMParams(np.array([1.0, 0.0]), np.array([[0.5, 0.5], [0.0, 1.0]]),
    ...               np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> e = forward_backward(np.array([0, 1, 1]), np.array([0, 3]), p)
    >>> round(float(np.exp(e.log_likelihood[0])), 6)
    0.5
    """
    codes, offsets, weights = _as_csr(codes, offsets, weights)
    K, M = params.emissionprob.shape
    if len(codes) and (codes.min() < 0 or codes.max() >= M):
        raise OptionError(f"symbol codes must be in 0..{M - 1} "
                          f"(got {codes.min()}..{codes.max()})")
    n = len(offsets) - 1
    ll = np.empty(n)
    start_c, trans_c, emis_c = np.zeros(K), np.zeros((K, K)), np.zeros((K, M))
    gamma = np.zeros((len(codes) if posteriors else 0, K))
    _estep_kernel(codes, offsets, weights, np.ascontiguousarray(params.startprob, np.float64),
                  np.ascontiguousarray(params.transmat, np.float64),
                  np.ascontiguousarray(params.emissionprob, np.float64), posteriors, gamma, ll,
                  start_c, trans_c, emis_c)
    return EStep(ll, start_c, trans_c, emis_c, gamma if posteriors else None)


def filter_last(codes, offsets, params: HMMParams) -> tuple[np.ndarray, np.ndarray]:
    """P(state at the last event | the sequence so far), and log P(sequence).

    Returns
    -------
    last : ndarray, shape (n_sequences, K)
        Filtered state distribution after the last event; ``startprob`` for empty sequences.
    log_likelihood : ndarray, shape (n_sequences,)
    """
    codes, offsets, _ = _as_csr(codes, offsets, None)
    n = len(offsets) - 1
    last = np.zeros((n, params.n_states))
    ll = np.empty(n)
    _filter_kernel(codes, offsets, params.startprob.astype(np.float64),
                   params.transmat.astype(np.float64), params.emissionprob.astype(np.float64),
                   last, ll)
    return last, ll


def viterbi(codes, offsets, params: HMMParams) -> tuple[np.ndarray, np.ndarray]:
    """Most likely state path of every sequence.

    Returns
    -------
    states : ndarray of int64, shape (n_events,)
    log_prob : ndarray, shape (n_sequences,)
        log P(best path, sequence); 0 for empty sequences.
    """
    codes, offsets, _ = _as_csr(codes, offsets, None)
    with np.errstate(divide="ignore"):
        logs = [np.log(np.asarray(a, np.float64)) for a in
                (params.startprob, params.transmat, params.emissionprob)]
    states = np.zeros(len(codes), np.int64)
    lp = np.empty(len(offsets) - 1)
    _viterbi_kernel(codes, offsets, *logs, states, lp)
    return states, lp


# ---------------------------------------------------------------------------------------------
# EM


@dataclass
class HMMFit:
    """Result of :func:`fit_hmm`.

    Attributes
    ----------
    params : HMMParams
        Best parameters found (over restarts).
    log_likelihood : float
        Weighted log-likelihood of ``params`` (exactly, not of the previous iterate).
    history : list of float
        Log-likelihood at each EM iteration of the best restart (never decreases).
    n_iter : int
    converged : bool
    restart_log_likelihoods : list of float
        Final log-likelihood of each restart, in the order run.
    """

    params: HMMParams
    log_likelihood: float
    history: list[float]
    n_iter: int
    converged: bool
    restart_log_likelihoods: list[float] = field(default_factory=list)


def random_params(n_states: int, n_symbols: int, rng: np.random.Generator, *,
                  symbol_freq: np.ndarray | None = None, start_mask: np.ndarray | None = None,
                  trans_mask: np.ndarray | None = None) -> HMMParams:
    """A random starting point: emissions scattered around the overall symbol frequencies,
    sticky transitions, masks applied (zeros stay zero under EM)."""
    K, M = n_states, n_symbols
    freq = np.full(M, 1.0 / M) if symbol_freq is None else np.asarray(symbol_freq, float)
    freq = (freq + 1e-3) / (freq + 1e-3).sum()
    B = freq * rng.lognormal(0.0, 1.0, size=(K, M))
    A = 0.5 * np.eye(K) + 0.5 * rng.dirichlet(np.ones(K), size=K)
    pi = rng.dirichlet(np.ones(K))
    if start_mask is not None:
        pi = np.where(start_mask, pi + 1e-3, 0.0)
    if trans_mask is not None:
        A = np.where(trans_mask, A + 1e-3, 0.0)
    return HMMParams(pi / pi.sum(), A / A.sum(1, keepdims=True), B / B.sum(1, keepdims=True))


def normalize(counts: np.ndarray, fallback) -> np.ndarray:
    """Rows of ``counts`` (last axis) scaled to sum to 1; a row summing to 0 becomes
    ``fallback`` (an array broadcastable to the row, or a number).

    Examples
    --------
    >>> normalize(np.array([[1.0, 3.0], [0.0, 0.0]]), 0.5).tolist()
    [[0.25, 0.75], [0.5, 0.5]]
    """
    sums = counts.sum(axis=-1, keepdims=True)
    return np.where(sums > 0, counts / np.where(sums > 0, sums, 1.0), fallback)


def m_step(e: EStep, old: HMMParams, emission_update=None) -> HMMParams:
    """New parameters from expected counts (of all sequences, or summed over parts): rows
    normalised, a row without counts kept from ``old``; ``emission_update`` maps the expected
    emission counts to the emission matrix for structured emissions (see :func:`fit_hmm`)."""
    B = (normalize(e.emission_counts, old.emissionprob) if emission_update is None
         else emission_update(e.emission_counts))
    return HMMParams(normalize(e.start_counts, old.startprob),
                     normalize(e.trans_counts, old.transmat), B)


class LocalSequences:
    """Sequences held in this process, the E-step's data: :func:`em` and :func:`fit_hmm` read
    sequences only through this interface (``n_obs``, :meth:`symbol_counts`, :meth:`estep`), so
    an object with the same three members whose E-step runs elsewhere (on Dask workers, each
    over its part of the sequences, the counts summed: :mod:`journeymodel.scale.em`) runs the
    same EM.

    Parameters
    ----------
    codes, offsets, weights
        Sequences as CSR arrays (see the module docstring); weights default to 1.
    """

    def __init__(self, codes, offsets, weights=None) -> None:
        self.codes, self.offsets, self.weights = _as_csr(codes, offsets, weights)

    @property
    def n_obs(self) -> float:
        """Weighted number of events: the scale of EM's stopping rule."""
        return float(np.dot(self.weights, np.diff(self.offsets)))

    def symbol_counts(self, n_symbols: int) -> np.ndarray:
        """Weighted count of each symbol, shape (n_symbols,)."""
        return np.bincount(self.codes, weights=np.repeat(self.weights, np.diff(self.offsets)),
                           minlength=n_symbols)

    def estep(self, params: HMMParams) -> tuple[EStep, float]:
        """The E-step under ``params`` and the weighted log-likelihood of all sequences."""
        e = forward_backward(self.codes, self.offsets, params, self.weights)
        return e, e.total(self.weights)


def em(codes, offsets, init: HMMParams, weights=None, *, max_iter: int = 300,
       tol: float = 1e-6, emission_update=None, complete=None, finish=None,
       data=None) -> HMMFit:
    """Baum-Welch from ``init`` with the compiled E-step.

    Stops when the weighted log-likelihood per weighted event improves by less than ``tol``.
    The returned log-likelihood is that of the returned parameters. ``emission_update``, if
    given, maps expected emission counts (K, M) to the new emission matrix (for structured
    emissions, see :func:`fit_hmm`); by default rows of the counts are normalised.
    ``complete`` and ``finish`` (see :func:`fit_hmm`) default to none: plain Baum-Welch.
    ``data`` (a :class:`LocalSequences`, or an object with its members) replaces ``codes``,
    ``offsets`` and ``weights``: where the E-step runs.
    """
    data = LocalSequences(codes, offsets, weights) if data is None else data
    n_obs = max(data.n_obs, 1.0)
    params = init.copy() if finish is None else finish(init.copy())
    history: list[float] = []
    converged = False
    for it in range(max_iter):
        e, ll = data.estep(params)
        history.append(ll)
        if it and (ll - history[-2]) < tol * n_obs:
            converged = True
            break
        if it + 1 < max_iter:
            if complete is not None:
                e = complete(e, params)
            params = m_step(e, params, emission_update)
            if finish is not None:
                params = finish(params)
    return HMMFit(params, history[-1], history, len(history), converged)


def _em_hmmlearn(codes, offsets, init: HMMParams, weights, *, max_iter: int,
                 tol: float, emission_update=None, complete=None, finish=None) -> HMMFit:
    """The same EM run by hmmlearn's CategoricalHMM (scaling), one hmmlearn iteration at a time.

    Integer weights are expanded into repeated sequences (hmmlearn cannot weight). Emission
    likelihoods come from ``init.emissionprob`` itself (rows may be unnormalised, as for
    structured emissions), and ``emission_update`` maps hmmlearn's re-estimated emission matrix
    (expected counts, row-normalised) to the next one, exactly as in :func:`em`.
    """
    codes, offsets, weights = _as_csr(codes, offsets, weights)
    if complete is not None or finish is not None:
        raise OptionError("engine 'hmmlearn' cannot complete the expected counts (the censored "
                          "journeys' survival term, issue 17); use engine 'numba'")
    if not np.allclose(weights, np.round(weights)):
        raise OptionError("engine 'hmmlearn' cannot weight journeys: weights must be whole "
                          "counts (they are expanded into repeated sequences); use engine 'numba'")
    from journeymodel.data.journeyset import csr_event_index

    lengths = np.diff(offsets)
    reps = np.round(weights).astype(np.int64)
    keep = (lengths > 0) & (reps > 0)
    idx = np.repeat(np.flatnonzero(keep), reps[keep])
    X, lengths = codes[csr_event_index(offsets, idx)].reshape(-1, 1), lengths[idx]
    n_obs = max(float(len(X)), 1.0)
    model = _hmmlearn_model(*init.emissionprob.shape)
    params, history, converged = init.copy(), [], False
    for it in range(max_iter):
        model.startprob_, model.transmat_ = params.startprob.copy(), params.transmat.copy()
        model.likelihood_matrix = params.emissionprob
        model.emissionprob_ = normalize(params.emissionprob, 1.0 / params.emissionprob.shape[1])
        if it + 1 == max_iter:
            history.append(float(model.score(X, lengths)))
            break
        model.fit(X, lengths)
        history.append(float(model.monitor_.history[0]))
        if it and history[-1] - history[-2] < tol * n_obs:
            converged = True
            break
        B = (model.emissionprob_ if emission_update is None
             else emission_update(model.emissionprob_))
        params = HMMParams(model.startprob_.copy(), model.transmat_.copy(), B)
    return HMMFit(params, history[-1], history, len(history), converged)


def _hmmlearn_model(n_states: int, n_symbols: int):
    """A CategoricalHMM doing one EM iteration per ``fit``, with emission likelihoods taken from
    ``likelihood_matrix`` (so structured, unnormalised emissions work)."""
    from hmmlearn.hmm import CategoricalHMM

    class _Categorical(CategoricalHMM):
        likelihood_matrix: np.ndarray

        def _compute_likelihood(self, X):
            return self.likelihood_matrix[:, X.squeeze(1)].T

        def _compute_log_likelihood(self, X):
            with np.errstate(divide="ignore"):
                return np.log(self._compute_likelihood(X))

    return _Categorical(n_components=n_states, n_features=n_symbols, implementation="scaling",
                        init_params="", params="ste", n_iter=1, tol=-np.inf)


def fit_hmm(codes, offsets, n_states: int, n_symbols: int, weights=None, *,
            restarts: int = 3, seed: int | np.random.Generator = 0, max_iter: int = 300,
            tol: float = 1e-6, start_mask=None, trans_mask=None, engine: str = "numba",
            emission_init=None, emission_update=None, warmup: int | None = None,
            warn: bool = True, progress=None, complete=None, finish=None,
            data=None) -> HMMFit:
    """Fit a categorical HMM by EM from several random starts; keep the best log-likelihood.

    Parameters
    ----------
    codes, offsets, weights
        Sequences as CSR arrays (see module docstring); weights default to 1.
    n_states, n_symbols : int
        K hidden states, M symbols.
    restarts : int
        Random starting points; each runs EM to convergence (or for ``warmup`` iterations),
        the best is returned.
    seed : int or Generator
    max_iter, tol
        EM stops after ``max_iter`` iterations or when the log-likelihood per weighted event
        improves by less than ``tol``.
    start_mask : bool array, shape (K,), optional
        States allowed to start a sequence.
    trans_mask : bool array, shape (K, K), optional
        Allowed transitions (EM keeps forbidden ones at zero).
    engine : {"numba", "hmmlearn"}
    emission_init : callable(Generator) -> ndarray (K, M), optional
        Random starting emission matrix (structured emissions); default: rows scattered around
        the symbol frequencies.
    emission_update : callable(ndarray (K, M)) -> ndarray (K, M), optional
        M-step of structured emissions: expected emission counts (any positive row scaling) to
        the new emission matrix. Default: normalise the rows.
    warmup : int, optional
        With several restarts, run each for this many iterations only and continue the best
        one to convergence (much cheaper; the usual short-runs strategy). Default: every
        restart runs to convergence.
    warn : bool
        Emit a ConvergenceWarning when the best run hit ``max_iter``.
    progress : callable(restart, fit), optional
        Called after each restart.
    complete : callable(EStep, HMMParams) -> EStep, optional
        Before each M-step, maps the E-step (under the current parameters) to the expected
        counts of the complete data, for symbols that stand for more than one event (the
        stages model's censored last steps: their next event, not yet seen, allocated in
        proportion to its probability, issue 17). The emission counts it returns may have fewer
        columns than the alphabet (those ``finish`` rebuilds). Default: the counts as they are.
    finish : callable(HMMParams) -> HMMParams, optional
        Applied to every starting point and after every M-step: derived emission columns (the
        survival columns of censored last steps) from the new parameters. Default: none.
        Only engine ``"numba"`` takes ``complete`` and ``finish``.
    data : LocalSequences or an object with its members, optional
        Replaces ``codes``, ``offsets`` and ``weights`` (give None for them): sequences whose
        E-step runs elsewhere (on Dask workers, :mod:`journeymodel.scale.em`). Engine
        ``"numba"`` only.

    Returns
    -------
    HMMFit

    Raises
    ------
    OptionError
        Bad ``engine``, ``restarts``, ``n_states`` or shapes.

    Examples
    --------
    >>> codes = np.array([0, 0, 1, 1, 0, 1]); offsets = np.array([0, 2, 4, 6])
    >>> fit = fit_hmm(codes, offsets, 2, 2, restarts=2, seed=0)
    >>> fit.history == sorted(fit.history)
    True
    """
    if engine not in ENGINES:
        raise OptionError(f"engine must be one of {ENGINES} (got {engine!r})")
    if restarts < 1 or n_states < 1:
        raise OptionError(f"restarts and n_states must be >= 1 (got {restarts}, {n_states})")
    if not (data is None or isinstance(data, LocalSequences) or engine == "numba"):
        raise OptionError(f"engine {engine!r} runs in one process; sequences held elsewhere "
                          "(on Dask) need engine 'numba'")
    data = LocalSequences(codes, offsets, weights) if data is None else data
    rng = np.random.default_rng(seed)
    freq = data.symbol_counts(n_symbols)

    def run(init, max_iter):
        kw = {"max_iter": max_iter, "tol": tol, "emission_update": emission_update,
              "complete": complete, "finish": finish}
        if engine == "numba":
            return em(None, None, init, None, data=data, **kw)
        return _em_hmmlearn(data.codes, data.offsets, init, data.weights, **kw)

    best: HMMFit | None = None
    lls = []
    for r in range(restarts):
        init = random_params(n_states, n_symbols, rng, symbol_freq=freq / max(freq.sum(), 1),
                             start_mask=start_mask, trans_mask=trans_mask)
        if emission_init is not None:
            init.emissionprob = np.asarray(emission_init(rng), np.float64)
        short = warmup is not None and restarts > 1 and warmup < max_iter
        fit = run(init, warmup if short else max_iter)
        lls.append(fit.log_likelihood)
        if best is None or fit.log_likelihood > best.log_likelihood:
            best = fit
        if progress is not None:
            progress(r, fit)
    if short and not best.converged:
        more = run(best.params, max_iter - best.n_iter + 1)
        history = best.history[:-1] + more.history
        best = HMMFit(more.params, more.log_likelihood, history, len(history), more.converged)
    best.restart_log_likelihoods = lls
    if warn and not best.converged:
        warnings.warn(
            f"HMM EM with {n_states} states did not converge in {max_iter} iterations "
            f"(last log-likelihood gain {np.diff(best.history[-2:]).tolist()}); raise max_iter, "
            "loosen tol, or use fewer states", ConvergenceWarning, stacklevel=2)
    return best


def n_free_parameters(params: HMMParams, *, start_mask=None, trans_mask=None,
                      symbols_used=None) -> int:
    """Free parameters: allowed start and transition entries and used symbols, less one per row.

    ``symbols_used`` (bool, shape (M,)) excludes symbols never observed (their emission
    probabilities are fixed at zero by the data).
    """
    K, M = params.emissionprob.shape
    n_start = int(np.sum(start_mask)) if start_mask is not None else K
    n_trans = np.sum(trans_mask, axis=1) if trans_mask is not None else np.full(K, K)
    m = int(np.sum(symbols_used)) if symbols_used is not None else M
    return int((n_start - 1) + np.sum(n_trans - 1) + K * (m - 1))


# ---------------------------------------------------------------------------------------------
# Sampling


def sample(params: HMMParams, n: int, *, stop_symbols=(), max_length: int = 200,
           seed: int | np.random.Generator = 0):
    """Draw ``n`` sequences; a sequence ends at its first symbol in ``stop_symbols``
    (included) or after ``max_length`` symbols. Vectorised across sequences, one step at a time.

    Returns
    -------
    codes : ndarray of int64, shape (n_events,)
    offsets : ndarray of int64, shape (n + 1,)
    states : ndarray of int64, shape (n_events,)
    """
    rng = np.random.default_rng(seed)
    cum_pi = np.cumsum(params.startprob)
    cum_A = np.cumsum(params.transmat, axis=1)
    cum_B = np.cumsum(params.emissionprob, axis=1)
    stop = np.zeros(params.emissionprob.shape[1], bool)
    stop[list(stop_symbols)] = True
    alive = np.arange(n)
    state = _draw(np.broadcast_to(cum_pi, (n, len(cum_pi))), rng)
    seq_parts, state_parts, sym_parts = [], [], []
    for _ in range(max_length):
        if not len(alive):
            break
        sym = _draw(cum_B[state], rng)
        seq_parts.append(alive)
        state_parts.append(state)
        sym_parts.append(sym)
        go = ~stop[sym]
        alive, state = alive[go], state[go]
        state = _draw(cum_A[state], rng)
    if not seq_parts:
        return np.zeros(0, np.int64), np.zeros(n + 1, np.int64), np.zeros(0, np.int64)
    seq = np.concatenate(seq_parts)
    order = np.argsort(seq, kind="stable")  # steps were appended in time order
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(seq, minlength=n), out=offsets[1:])
    return (np.concatenate(sym_parts)[order].astype(np.int64), offsets,
            np.concatenate(state_parts)[order].astype(np.int64))


def _draw(cum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of cumulative probabilities ``cum`` (n, m)."""
    u = rng.random(len(cum)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), cum.shape[1] - 1)
