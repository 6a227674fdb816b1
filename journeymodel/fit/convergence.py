"""Rank-normalised split R-hat and bulk effective sample size, in numpy.

The convergence checks of :func:`journeymodel.fit.bayes.diagnose`, computed as ArviZ computes
them (``arviz_stats``: ``rhat(method="rank")``, ``ess(method="bulk")``; Vehtari et al. 2021)
without importing ArviZ: ArviZ brings in ``scipy.stats``, matplotlib and its plotting and
I/O packages, 2 s of CPU of every Bayesian fit's 4-6 s of imports (issue 20), to compute a few
hundred numbers. The results agree with ArviZ's to rounding (tests/test_convergence.py).

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B., Bürkner, P.-C. (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian
Analysis 16(2), 667-718.
"""

from __future__ import annotations

import numpy as np

#: Blom's (1958) offset of the ranks' normal scores.
BLOM = 3 / 8


def rhat_rank(draws: np.ndarray) -> float:
    """Rank-normalised split R-hat of one scalar: the larger of the bulk and the tail (folded
    draws) R-hat.

    Parameters
    ----------
    draws : ndarray, shape (chains, draws)

    Returns
    -------
    float
        NaN with any NaN draw, fewer than 2 chains or fewer than 4 draws.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(rhat_rank(rng.normal(size=(4, 1000))), 2)
    1.0
    >>> bool(rhat_rank(np.r_[rng.normal(size=(2, 500)), rng.normal(3, 1, (2, 500))]) > 1.5)
    True
    """
    ary = np.asarray(draws, dtype=float)
    if _invalid(ary, min_chains=2):
        return float("nan")
    split = _split_chains(ary)
    bulk = _rhat(_z_scale(split))
    tail = _rhat(_z_scale(np.abs(split - np.median(split))))
    return float(max(bulk, tail))


def ess_bulk(draws: np.ndarray) -> float:
    """Bulk effective sample size of one scalar (split chains, rank-normalised).

    Parameters
    ----------
    draws : ndarray, shape (chains, draws)

    Returns
    -------
    float
        NaN with any NaN draw or fewer than 4 draws; the number of draws when they are
        constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> 3000 < ess_bulk(rng.normal(size=(4, 1000))) < 5000
    True
    """
    ary = np.asarray(draws, dtype=float)
    if _invalid(ary, min_chains=1):
        return float("nan")
    return _ess(_z_scale(_split_chains(ary)))


def _invalid(ary: np.ndarray, *, min_chains: int) -> bool:
    chains, n = ary.shape
    return bool(np.isnan(ary).any()) or chains < min_chains or n < 4


def _split_chains(ary: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as separate chains (the middle draw of an odd
    length left out)."""
    half = ary.shape[1] // 2
    return np.vstack((ary[:, :half], ary[:, -half:]))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the flattened ``values``, ties given their average rank (as
    ``scipy.stats.rankdata(method="average")``).

    Examples
    --------
    >>> average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    flat = np.ravel(values)
    order = np.argsort(flat, kind="mergesort")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    ordered = flat[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = np.cumsum(first)[inverse]
    count = np.r_[np.nonzero(first)[0], first.size]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def _z_scale(ary: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of all the draws together (Blom's offset)."""
    from scipy.special import ndtri

    ranks = (average_ranks(ary) - BLOM) / (ary.size - 2 * BLOM + 1)
    return ndtri(ranks).reshape(ary.shape)


def _rhat(ary: np.ndarray) -> float:
    n = ary.shape[1]
    between = n * np.var(np.mean(ary, axis=1), ddof=1)
    within = np.mean(np.var(ary, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


def next_regular(target: int) -> int:
    """The least integer >= ``target`` with no prime factor above 5 (a fast FFT length, as
    ``scipy.fft.next_fast_len`` for real transforms).

    Examples
    --------
    >>> [next_regular(n) for n in (1, 7, 11, 2001)]
    [1, 8, 12, 2025]
    """
    n = max(int(target), 1)
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _autocov(ary: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain (rows) at every lag, by FFT."""
    n = ary.shape[1]
    m = next_regular(2 * n)
    centred = ary - ary.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=1)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=m, axis=1)[:, :n] / n


def _ess(ary: np.ndarray) -> float:
    """Effective sample size of (chains, draws) by Geyer's initial monotone sequence."""
    if np.max(ary) - np.min(ary) < np.finfo(float).resolution:
        return float(ary.size)
    chains, n = ary.shape
    acov = _autocov(ary)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus += np.var(ary.mean(axis=1), ddof=1)
    rho = np.zeros(n)
    rho[0] = even = 1.0
    rho[1] = odd = 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    t = 1
    while t < n - 3 and even + odd > 0.0:  # initial positive sequence
        even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if even + odd >= 0:
            rho[t + 1], rho[t + 2] = even, odd
        t += 2
    max_t = t - 2
    if even > 0:
        rho[max_t + 1] = even
    t = 1
    while t <= max_t - 2:  # initial monotone sequence
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    size = chains * n
    tau = -1.0 + 2.0 * np.sum(rho[:max_t + 1]) + np.sum(rho[max_t + 1:max_t + 2])
    tau = max(tau, 1 / np.log10(size))
    return float("nan") if np.isnan(rho).any() else float(size / tau)
