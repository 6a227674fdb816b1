"""Log-likelihoods and derived quantities of the churn models, in numpy/scipy and in PyTensor.

The numpy functions are closed forms used for results (survival curves, P(alive), expected
transactions) and as the independent reference of the PyTensor log-likelihoods that are sampled;
the tests check one against the other and both against hand-worked cases.

Parameters broadcast: pass arrays of draws with a trailing axis, or scalars.

References
----------
.. [1] Fader, P. S. & Hardie, B. G. S. (2007). How to project customer retention. Journal of
   Interactive Marketing, 21(1), 76-90. (shifted-beta-geometric, ``alpha``, ``beta``)
.. [2] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
   way: an alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284. (BG/NBD,
   ``r``, ``alpha``, ``a``, ``b``; equations 6, 9, 10 and 11)
.. [3] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves
   for customer base analysis. Journal of Marketing Research, 42(4), 415-430. (Gamma-Gamma
   spend, ``p``, ``q``, ``v``; equations 1-5; the "gamma-gamma" note of Fader & Hardie 2013)
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1

# ---------------------------------------------------------------------------------------------
# shifted-beta-geometric


#: Above this the gamma-function differences lose digits; ratios are summed term by term.
_BIG = 1e5


def log_rising_ratio(num, den, n):
    """``log(G(num + n) G(den) / (G(num) G(den + n))) = sum_{j < n} log((num + j) / (den + j))``.

    ``n``: non-negative integers (any dtype); arguments broadcast. Gamma-function differences
    where ``num`` and ``den`` are moderate, the sum of ``n`` log-ratios where either exceeds
    1e5 (there ``gammaln`` differences cancel catastrophically: at 1e12 no digit is left).
    """
    num, den, n = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64),
                                      np.rint(n))
    out = gammaln(num + n) - gammaln(num) - gammaln(den + n) + gammaln(den)
    big = (np.maximum(num, den) > _BIG) & (n > 0)
    if big.any():
        nb, db, kb = num[big], den[big], n[big]
        acc = np.zeros(len(kb))
        for j in range(int(kb.max())):  # loop over the count, vectorised over elements
            acc += np.where(kb > j, np.log((nb + j) / (db + j)), 0.0)
        out = np.array(out)
        out[big] = acc
    return out


def sbg_log_survival(alpha, beta, t):
    """log S(t) = log P(T > t) = log B(alpha, beta + t) - log B(alpha, beta), t = 0, 1, ..."""
    return log_rising_ratio(beta, np.add(alpha, beta), t)


def sbg_log_pmf(alpha, beta, t):
    """log P(T = t) = log B(alpha + 1, beta + t - 1) - log B(alpha, beta), t = 1, 2, ..."""
    return np.log(alpha / np.add(alpha + beta, t - 1)) + sbg_log_survival(alpha, beta, t - 1)


def sbg_hazard(alpha, beta, t):
    """Churn probability in period t given alive at its start: alpha / (alpha + beta + t - 1)."""
    return alpha / (alpha + beta + t - 1)


def sbg_loglik_counts(alpha, beta, lost, alive):
    """sBG log-likelihood from per-period counts (see :func:`churn_data.period_counts`).

    Parameters
    ----------
    alpha, beta : float or ndarray, shape (...,)
    lost : ndarray, shape (K,)
        Customers lost in period t = 1..K.
    alive : ndarray, shape (K + 1,)
        Customers still active after t = 0..K renewals.
    """
    alpha, beta = np.asarray(alpha)[..., None], np.asarray(beta)[..., None]
    t_lost = np.arange(1, len(lost) + 1)
    t_alive = np.arange(len(alive))
    return ((lost * sbg_log_pmf(alpha, beta, t_lost)).sum(-1)
            + (alive * sbg_log_survival(alpha, beta, t_alive)).sum(-1))


# ---------------------------------------------------------------------------------------------
# Weibull


def weibull_log_survival(shape, scale, t):
    """log S(t) = -(t / scale) ** shape."""
    return -((t / scale) ** shape)


def weibull_loglik(shape, scale, duration, churned):
    """Weibull log-likelihood with right-censoring, per customer.

    ``churned`` customers contribute log f(d), the others log S(d).
    """
    z = duration / scale
    with np.errstate(divide="ignore"):
        log_f = np.log(shape) - np.log(scale) + (shape - 1) * np.log(z)
    return np.where(churned, log_f, 0.0) - z**shape


# ---------------------------------------------------------------------------------------------
# BG/NBD


def bgnbd_loglik(r, alpha, a, b, x, t_x, T):
    """BG/NBD log-likelihood per customer, FHL (2005) eq. 6 in the stable log form.

    ``log L = A1 + log(((alpha + t_x) / (alpha + T)) ** (r + x) + [x > 0] a / (b + x - 1))
    - (r + x) log(alpha + t_x)`` with ``A1 = log G(r + x) - log G(r) + r log alpha +
    log B(a, b + x) - log B(a, b)`` (the form of lifetimes and pymc-marketing).
    """
    a1 = (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
          + log_rising_ratio(b, np.add(a, b), x))  # log B(a, b + x) - log B(a, b)
    log_c3 = (r + x) * (np.log(alpha + t_x) - np.log(alpha + T))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_c4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)), -np.inf)
    return a1 - (r + x) * np.log(alpha + t_x) + np.logaddexp(log_c3, log_c4)


def bgnbd_p_alive(r, alpha, a, b, x, t_x, T):
    """P(alive | x, t_x, T), FHL (2005) eq. 11 (1 for customers with no repeat)."""
    log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    with np.errstate(divide="ignore"):
        log_d = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + log_ratio
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.minimum(log_d, 700.0))), 1.0)


def bgnbd_expected_new(r, alpha, a, b, t):
    """E[X(t)]: expected transactions of a new customer in (0, t], FHL (2005) eq. 9."""
    z = t / (alpha + t)
    return ((a + b - 1) / (a - 1)
            * (1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)))


def bgnbd_expected_future(r, alpha, a, b, x, t_x, T, t):
    """E[Y(t) | x, t_x, T]: expected transactions in (T, T + t], FHL (2005) eq. 10."""
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    tail = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x,
                                                                     a + b + x - 1, z)
    return head * tail * bgnbd_p_alive(r, alpha, a, b, x, t_x, T)


def bgnbd_log_survival(a, b, n):
    """log P(still alive after n repeat transactions) = log B(a, b + n) - log B(a, b)."""
    return log_rising_ratio(b, np.add(a, b), n)


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma spend per transaction


def gg_loglik(p, q, v, x, m):
    """Gamma-Gamma log-likelihood of a customer's mean repeat spend ``m`` over ``x`` > 0
    transactions (the density of the mean: ``z ~ Gamma(p, nu)``, ``nu ~ Gamma(q, v)``), in the
    form of lifetimes' ``GammaGammaFitter``."""
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
            + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v))


def gg_expected_spend(p, q, v, x, m):
    """E[spend per transaction | x, m]: ``p (v + x m) / (p x + q - 1)`` (FHL 2005b eq. 5);
    with ``x = 0`` the population mean ``p v / (q - 1)`` (infinite for ``q <= 1``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p * (v + x * m) / (p * x + q - 1)
    return np.where(p * x + q > 1, out, np.inf)


# ---------------------------------------------------------------------------------------------
# PyTensor versions (what is sampled). Data arguments may be numpy arrays or pm.Data tensors;
# :func:`journeymodel.models.churn.data.weibull_rows` and :func:`~.churn_data.bgnbd_rows` build
# them. Two rules keep them fast and exact at any size:
#
# * terms that are linear in a data column are summed once (sufficient statistics), and rows
#   are sorted by persona so that each persona's rows are one slice with scalar parameters (no
#   gather per row, and the gradient is a plain sum);
# * ratios of gamma functions are products of ``t`` factors, summed as logs on a small grid
#   (``log B(a, b + x) - log B(a, b) = sum_{j < x} log((b + j) / (a + b + j))``): exact, and free
#   of the cancellation that ``gammaln(a) + gammaln(b) - gammaln(a + b)`` suffers when a weakly
#   identified concentration ``a + b`` wanders to 1e10 and beyond.


def _pt_cumlog(step):
    """``out[p, k] = sum_{j < k} step[p, j]`` for k = 0..K: shape (P, K + 1), zeros first."""
    import pytensor.tensor as pt

    return pt.concatenate([pt.zeros_like(step[:, :1]), pt.cumsum(step, axis=1)], axis=1)


def pt_sbg_loglik(alpha, beta, lost_p, lost_t, lost_n, alive_p, alive_t, alive_n):
    """Sum over personas of :func:`sbg_loglik_counts`; ``alpha``, ``beta`` shape (P,).

    The data are the non-zero cells of the count tables: ``lost_n`` customers of persona
    ``lost_p`` lost in period ``lost_t``; ``alive_n`` of persona ``alive_p`` still active after
    ``alive_t`` renewals. The cost depends on the number of cells, not of customers.
    ``log S(t) = sum_{i < t} log((beta + i) / (alpha + beta + i))`` and
    ``log P(T = t) = log S(t - 1) + log(alpha / (alpha + beta + t - 1))`` (Fader & Hardie 2007,
    eq. 3-4) are summed on the grid of periods 0..max t.
    """
    import pytensor.tensor as pt

    lt = pt.cast(lost_t, "int64")
    at = pt.cast(alive_t, "int64")
    i = pt.arange(pt.maximum(pt.max(lt), pt.max(at)))
    log_s = _pt_cumlog(pt.log(beta[:, None] + i) - pt.log((alpha + beta)[:, None] + i))
    al, bl = alpha[lost_p], beta[lost_p]
    log_pmf = log_s[lost_p, lt - 1] + pt.log(al) - pt.log(al + bl + lost_t - 1)
    return pt.sum(lost_n * log_pmf) + pt.sum(alive_n * log_s[alive_p, at])


def pt_weibull_loglik(shape, scale, offsets, log_d, weight, events, events_log_d, *,
                      n_personas):
    """Weighted Weibull log-likelihood with right-censoring; ``shape``, ``scale`` (P,).

    Rows (durations > 0) sorted by persona, persona ``p`` in ``offsets[p]:offsets[p + 1]``:
    ``log_d`` log duration, ``weight``. Per persona the churned rows enter through two sums,
    ``events`` (their weight) and ``events_log_d`` (weighted sum of their ``log_d``):
    ``sum_churned log f(d) + sum_all log S(d) = E (log k - k log lam) + (k - 1) sum log d
    - sum_all w (d / lam) ** k``.
    """
    import pytensor.tensor as pt

    k, log_lam = shape, pt.log(scale)
    total = pt.sum(events * (pt.log(k) - k * log_lam) + (k - 1) * events_log_d)
    for p in range(n_personas):
        rows = slice(offsets[p], offsets[p + 1])
        total -= pt.sum(weight[rows] * pt.exp(k[p] * (log_d[rows] - log_lam[p])))
    return total


def pt_bgnbd_loglik(r, alpha, a, b, cell_p, cell_x, cell_w, offsets, times, x, t_x_at, T_at,
                    weight, *, n_personas):
    """Weighted BG/NBD log-likelihood (:func:`bgnbd_loglik`, FHL 2005 eq. 6); params (P,).

    ``log L = A(x) + r log alpha - (r + x) log(alpha + t_x)
    + log(((alpha + t_x) / (alpha + T)) ** (r + x) + [x > 0] a / (b + x - 1))`` with
    ``A(x) = log G(r + x) - log G(r) + log B(a, b + x) - log B(a, b)
    = sum_{j < x} log((r + j) (b + j) / (a + b + j))``.

    Data (see :func:`journeymodel.models.churn.data.bgnbd_rows`): ``A`` and ``r log alpha``
    enter through the total ``cell_w`` of each (``cell_p``, ``cell_x``) cell; rows are distinct
    (x, t_x, T) per persona, sorted by persona and x, persona ``p``'s customers without repeat
    in ``offsets[2p]:offsets[2p + 1]`` and with repeats in ``offsets[2p + 1]:offsets[2p + 2]``;
    ``t_x`` and ``T`` are indices into ``times`` (the distinct times), so ``log(alpha + t)`` is
    computed once per distinct time.
    """
    import pytensor.tensor as pt

    cx = pt.cast(cell_x, "int64")
    j = pt.arange(pt.max(cx) + 1)
    a_x = _pt_cumlog(pt.log(r[:, None] + j) + pt.log(b[:, None] + j)
                     - pt.log((a + b)[:, None] + j))
    total = pt.sum(cell_w * (a_x[cell_p, cx] + r[cell_p] * pt.log(alpha[cell_p])))
    xi = pt.cast(x, "int64")
    for p in range(n_personas):
        log_at = pt.log(alpha[p] + times)
        none, some = slice(offsets[2 * p], offsets[2 * p + 1]), slice(offsets[2 * p + 1],
                                                                      offsets[2 * p + 2])
        total -= r[p] * pt.sum(weight[none] * log_at[T_at[none]])
        # log(a / (b + x - 1)) by x (x >= 1; entry 0 is a placeholder never gathered)
        log_c4 = pt.log(a[p]) - pt.log(b[p] + pt.maximum(j - 1, 0) + pt.eq(j, 0))
        rx = r[p] + x[some]
        l_tx = log_at[t_x_at[some]]
        total += pt.sum(weight[some] * (pt.logaddexp(rx * (l_tx - log_at[T_at[some]]),
                                                     log_c4[xi[some]]) - rx * l_tx))
    return total


def pt_gg_loglik(p, q, v, gg_cell_p, gg_cell_x, gg_cell_w, gg_n, gg_xlogs, gg_offsets, gg_x,
                 gg_s, *, n_personas):
    """Gamma-Gamma log-likelihood summed over repeat buyers (:func:`gg_loglik` without its
    terms free of parameters); ``p``, ``q``, ``v`` shape (P,).

    With ``s = x m`` a customer's total repeat spend, the parameter terms are
    ``log G(p x + q) - log G(p x) - log G(q) + q log v + p x log s - (p x + q) log(s + v)``:
    the gamma terms enter once per (``gg_cell_p``, ``gg_cell_x``) cell with its count
    ``gg_cell_w``, ``q log v - log G(q)`` once per persona times its ``gg_n`` customers, ``p x
    log s`` through its per-persona sum ``gg_xlogs``; only ``log(s + v)`` is per customer
    (rows sorted by persona, persona ``k``'s in ``gg_offsets[k]:gg_offsets[k + 1]``). See
    :func:`journeymodel.models.churn.data.spend_rows`.
    """
    import pytensor.tensor as pt

    pc, qc = p[gg_cell_p], q[gg_cell_p]
    total = pt.sum(gg_cell_w * (pt.gammaln(pc * gg_cell_x + qc) - pt.gammaln(pc * gg_cell_x)))
    total += pt.sum(gg_n * (q * pt.log(v) - pt.gammaln(q)) + p * gg_xlogs)
    for k in range(n_personas):
        rows = slice(gg_offsets[k], gg_offsets[k + 1])
        total -= pt.sum((p[k] * gg_x[rows] + q[k]) * pt.log(gg_s[rows] + v[k]))
    return total
