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
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln, hyp2f1

# ---------------------------------------------------------------------------------------------
# shifted-beta-geometric


def sbg_log_survival(alpha, beta, t):
    """log S(t) = log P(T > t) = log B(alpha, beta + t) - log B(alpha, beta), t = 0, 1, ..."""
    return betaln(alpha, beta + t) - betaln(alpha, beta)


def sbg_log_pmf(alpha, beta, t):
    """log P(T = t) = log B(alpha + 1, beta + t - 1) - log B(alpha, beta), t = 1, 2, ..."""
    return betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)


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
          + betaln(a, b + x) - betaln(a, b))
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
    return betaln(a, b + n) - betaln(a, b)


# ---------------------------------------------------------------------------------------------
# PyTensor versions (what is sampled). Data arguments may be numpy arrays or pm.Data tensors;
# see :func:`journeymodel.models.churn.likelihood_data` for how they are built.


def _pt_betaln(a, b):
    import pytensor.tensor as pt

    return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)


def pt_sbg_loglik(alpha, beta, lost_p, lost_t, lost_n, alive_p, alive_t, alive_n):
    """Sum over personas of :func:`sbg_loglik_counts`; ``alpha``, ``beta`` shape (P,).

    The data are the non-zero cells of the count tables: ``lost_n`` customers of persona
    ``lost_p`` lost in period ``lost_t``; ``alive_n`` of persona ``alive_p`` still active after
    ``alive_t`` renewals. The cost depends on the number of cells, not of customers.
    """
    import pytensor.tensor as pt

    al, bl = alpha[lost_p], beta[lost_p]
    aa, ba = alpha[alive_p], beta[alive_p]
    log_pmf = _pt_betaln(al + 1, bl + lost_t - 1) - _pt_betaln(al, bl)
    log_s = _pt_betaln(aa, ba + alive_t) - _pt_betaln(aa, ba)
    return pt.sum(lost_n * log_pmf) + pt.sum(alive_n * log_s)


def pt_weibull_loglik(shape, scale, persona, log_d, churned, weight):
    """Weighted Weibull log-likelihood with right-censoring; ``shape``, ``scale`` (P,).

    Data of shape (n,): ``log_d`` log duration (durations > 0), ``churned`` 1/0, ``weight``.
    """
    import pytensor.tensor as pt

    k, lam = shape[persona], scale[persona]
    log_z = log_d - pt.log(lam)
    ll = churned * (pt.log(k) - pt.log(lam) + (k - 1) * log_z) - pt.exp(k * log_z)
    return pt.sum(weight * ll)


def pt_bgnbd_loglik(r, alpha, a, b, cell_p, cell_x, cell, persona, x, t_x, T, weight):
    """Weighted BG/NBD log-likelihood (stable form of :func:`bgnbd_loglik`); params (P,).

    The gamma-function terms depend on (persona, x) only, so they are computed once per
    distinct cell (``cell_p``, ``cell_x``) and gathered with ``cell`` (the cell of each row).
    """
    import pytensor.tensor as pt

    ru, au, bu = r[cell_p], a[cell_p], b[cell_p]
    a1 = pt.gammaln(ru + cell_x) - pt.gammaln(ru) + _pt_betaln(au, bu + cell_x) - _pt_betaln(
        au, bu)
    # [x > 0] a / (b + x - 1); for x = 0 a finite stand-in for 0 (exp(-1e4)) keeps the
    # gradients finite
    none = pt.le(cell_x, 0)
    log_c4 = pt.log(au) - pt.log(bu + cell_x - 1 + none) - 1e4 * none
    rr, al = r[persona], alpha[persona]
    rx = rr + x
    log_at = pt.log(al + t_x)
    log_c3 = rx * (log_at - pt.log(al + T))
    ll = a1[cell] + rr * pt.log(al) - rx * log_at + pt.logaddexp(log_c3, log_c4[cell])
    return pt.sum(weight * ll)
