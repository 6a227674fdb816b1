"""The churn models' log densities and gradients by hand, in numba, as nutpie's C callbacks.

The same densities as the PyMC models of :func:`journeymodel.models.churn.graph.build_pymc`
(tests/test_churn_native.py checks the log density, the gradient, the stored variables and the
chains' starts against PyMC's); see :mod:`journeymodel.fit.native` for why. Importing this
module compiles nothing: :func:`callbacks` loads a model's C callbacks from numba's cache, or
compiles them (a few seconds) the first time.

Every array the callbacks read is in one float64 array ``data``, laid out by
:func:`journeymodel.models.churn.native.pack`:

==========  =====================================================================
``0``       its length
``1-5``     personas ``P``, coordinates ``C``, the statistics' length (sBG: periods ``T``,
            Weibull: rows), ``n_dim``, ``n_expanded``
``6 ...``   per coordinate ``j``, eight numbers: how it is sampled (0: its own prior per
            persona, 1: pooled with ``mu`` integrated out, 2: non-centred), the
            offsets in ``x`` of ``log sigma``, of ``u`` (0, 1) or ``mu`` (2), of ``eta``
            (1) or ``z`` (2), its prior's centre and scale, and the centre and scale of
            the normal prior of ``log sigma``
then        the model's statistics (sBG: survivors and lost by period, each ``P x T``;
            Weibull: see :func:`weibull_logp`)
==========  =====================================================================
"""

from __future__ import annotations

import math
from functools import cache

import numba
import numpy as np

from journeymodel.fit.native import signatures

#: Where the coordinates' description starts in ``data``, and its width per coordinate.
HEAD, WIDTH = 6, 8
_LOG_2PI = math.log(2.0 * math.pi)
LOGP_SIGNATURE, EXPAND_SIGNATURE = signatures()


@numba.njit(cache=True, error_model="numpy")
def _normal(value, loc, scale):
    """log Normal(value | loc, scale) and its derivative in ``value``."""
    z = (value - loc) / scale
    return -0.5 * z * z - math.log(scale) - 0.5 * _LOG_2PI, -z / scale


@numba.njit(cache=True, error_model="numpy")
def _sigmoid(v):
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@numba.njit(cache=True, error_model="numpy")
def pooled_prior(x, data, u):
    """log density of the pooling level; ``u`` (C, P) filled with the coordinates."""
    n_p, n_c = int(data[1]), int(data[2])
    total = 0.0
    for j in range(n_c):
        h = HEAD + WIDTH * j
        mode, o_s, o_a, o_b = int(data[h]), int(data[h + 1]), int(data[h + 2]), int(data[h + 3])
        loc, scale = data[h + 4], data[h + 5]
        if mode == 0:
            for p in range(n_p):
                u[j, p] = x[o_a + p]
                total += _normal(u[j, p], loc, scale)[0]
            continue
        s = x[o_s]
        sigma = math.exp(s)
        total += _normal(s, data[h + 6], data[h + 7])[0]
        if mode == 1:
            for p in range(n_p):
                u[j, p] = x[o_a + p]
            total += _pooled(u[j], s, sigma, loc, scale)[0]
            total += _normal(x[o_b], 0.0, 1.0)[0]
        else:
            mu = x[o_a]
            total += _normal(mu, loc, scale)[0]
            for p in range(n_p):
                z = x[o_b + p]
                u[j, p] = mu + sigma * z
                total += _normal(z, 0.0, 1.0)[0]
    return total


@numba.njit(cache=True, error_model="numpy")
def _pooled(u, s, sigma, m, scale):
    """``pooled_logp`` of graph.py (``mu`` integrated out), its derivative in ``log sigma``
    and the common part of its derivative in each ``u_p``: ``d/du_p = -(u_p - ubar) /
    sigma**2 - shift``; returns (value, d/ds, ubar, shift)."""
    n = u.shape[0]
    ubar = 0.0
    for p in range(n):
        ubar += u[p]
    ubar /= n
    ss = 0.0
    for p in range(n):
        ss += (u[p] - ubar) ** 2
    s2 = sigma * sigma
    wide = s2 + n * scale * scale
    d = ubar - m
    value = (-(n - 1) * s - 0.5 * math.log(wide) - ss / (2.0 * s2)
             - n * d * d / (2.0 * wide))
    d_s = -(n - 1) - s2 / wide + ss / s2 + n * d * d * s2 / (wide * wide)
    return value, d_s, ubar, d / wide


@numba.njit(cache=True, error_model="numpy")
def pooled_gradient(x, data, u, gu, grad):
    """The gradient of the pooling level plus the likelihood's (``gu``: d/du, (C, P))."""
    n_p, n_c = int(data[1]), int(data[2])
    for j in range(n_c):
        h = HEAD + WIDTH * j
        mode, o_s, o_a, o_b = int(data[h]), int(data[h + 1]), int(data[h + 2]), int(data[h + 3])
        loc, scale = data[h + 4], data[h + 5]
        if mode == 0:
            for p in range(n_p):
                grad[o_a + p] = _normal(u[j, p], loc, scale)[1] + gu[j, p]
            continue
        s = x[o_s]
        sigma = math.exp(s)
        d_s = _normal(s, data[h + 6], data[h + 7])[1]
        if mode == 1:
            _, d_pool, ubar, shift = _pooled(u[j], s, sigma, loc, scale)
            for p in range(n_p):
                grad[o_a + p] = -(u[j, p] - ubar) / (sigma * sigma) - shift + gu[j, p]
            grad[o_s] = d_s + d_pool
            grad[o_b] = -x[o_b]
        else:
            mu = x[o_a]
            d_mu = _normal(mu, loc, scale)[1]
            for p in range(n_p):
                z = x[o_b + p]
                d_mu += gu[j, p]
                d_s += gu[j, p] * sigma * z
                grad[o_b + p] = -z + sigma * gu[j, p]
            grad[o_a] = d_mu
            grad[o_s] = d_s


@numba.njit(cache=True, error_model="numpy")
def pooled_stored(x, data, u, out):
    """Write the pooling level's stored variables after the free ones into ``out``: the
    spreads, then each coordinate's ``mu`` (mode 1: drawn from ``mu | u, sigma`` through
    ``eta``) or ``u`` (mode 2); returns the next position."""
    n_p, n_c, n_dim = int(data[1]), int(data[2]), int(data[4])
    pos = n_dim
    for j in range(n_c):
        h = HEAD + WIDTH * j
        if int(data[h]) != 0:
            out[pos] = math.exp(x[int(data[h + 1])])
            pos += 1
    for j in range(n_c):
        h = HEAD + WIDTH * j
        mode, o_s, o_b = int(data[h]), int(data[h + 1]), int(data[h + 3])
        loc, scale = data[h + 4], data[h + 5]
        if mode == 1:
            sigma = math.exp(x[o_s])
            precision = 1.0 / scale**2 + n_p / sigma**2
            total = 0.0
            for p in range(n_p):
                total += u[j, p]
            mean = (loc / scale**2 + total / sigma**2) / precision
            out[pos] = mean + x[o_b] / math.sqrt(precision)
            pos += 1
        elif mode == 2:
            for p in range(n_p):
                out[pos + p] = u[j, p]
            pos += n_p
    return pos


# -- shifted-beta-geometric ------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _softplus(v):
    """``log(1 + exp(v))`` without overflow."""
    if v > 0.0:
        return v + math.log1p(math.exp(-v))
    return math.log1p(math.exp(v))


@numba.njit(cache=True, error_model="numpy")
def _sbg_params(u0, u1):
    """alpha, beta and the sigmoids of ``u0`` (logit mean churn) and ``-u0``."""
    kappa = math.exp(u1)
    sig, sig_m = _sigmoid(u0), _sigmoid(-u0)
    return sig * kappa, sig_m * kappa, sig, sig_m


@numba.njit(cache=True, error_model="numpy")
def sbg_logp(x, data, grad):
    """The sBG model's log density at ``x``; its gradient into ``grad``.

    Per persona, with ``R_j`` customers who survive period ``j + 1`` and ``L_j`` lost in it,
    ``log L = sum_j R_j log((b + j) / (k + j)) + L_j log(a / (k + j))``, ``k = a + b``
    (Fader & Hardie 2007, eq. 3-4, summed by period). In the sampled coordinates ``u0 =
    logit(a / k)``, ``u1 = log k``: ``log a = u1 - softplus(-u0)`` and ``log b = u1 -
    softplus(u0)``, finite wherever ``u`` is (``a`` or ``b`` may round to 0).
    """
    n_p, n_c, n_t = int(data[1]), int(data[2]), int(data[3])
    u = np.empty((n_c, n_p))
    gu = np.zeros((n_c, n_p))
    total = pooled_prior(x, data, u)
    base = HEAD + WIDTH * n_c
    for p in range(n_p):
        u0, u1 = u[0, p], u[1, p]
        kappa = math.exp(u1)
        sig, sig_m = _sigmoid(u0), _sigmoid(-u0)
        b = sig_m * kappa
        log_a, log_b = u1 - _softplus(-u0), u1 - _softplus(u0)
        d0 = d1 = 0.0
        for j in range(n_t):
            r, lost = data[base + p * n_t + j], data[base + (n_p + p) * n_t + j]
            if r == 0.0 and lost == 0.0:
                continue
            if j == 0:  # log(b + 0) and log(k + 0), and their slopes b / b, k / k
                log_bj, share_b, log_kj, share_k = log_b, 1.0, u1, 1.0
            else:
                log_bj, share_b = math.log(b + j), b / (b + j)
                log_kj, share_k = math.log(kappa + j), kappa / (kappa + j)
            total += r * (log_bj - log_kj) + lost * (log_a - log_kj)
            d0 += lost * sig_m - r * share_b * sig
            d1 += r * (share_b - share_k) + lost * (1.0 - share_k)
        gu[0, p] = d0
        gu[1, p] = d1
    pooled_gradient(x, data, u, gu, grad)
    return total


@numba.njit(cache=True, error_model="numpy")
def sbg_expand(x, data, out):
    """The sBG model's stored variables: ``x``, then the pooling level's, ``alpha``, ``beta``."""
    n_p, n_c, n_dim = int(data[1]), int(data[2]), int(data[4])
    for i in range(n_dim):
        out[i] = x[i]
    u = np.empty((n_c, n_p))
    pooled_prior(x, data, u)
    pos = pooled_stored(x, data, u, out)
    for p in range(n_p):
        a, b, _, _ = _sbg_params(u[0, p], u[1, p])
        out[pos + p] = a
        out[pos + n_p + p] = b


def _sbg_logp_callback(dim, x_ptr, grad_ptr, logp_ptr, data_ptr):
    size = int(numba.carray(data_ptr, (1,), np.float64)[0])
    data = numba.carray(data_ptr, (size,), np.float64)
    if dim != int(data[4]):
        return -1
    x = numba.carray(x_ptr, (dim,))
    grad = numba.carray(grad_ptr, (dim,))
    value = sbg_logp(x, data, grad)
    numba.carray(logp_ptr, (1,))[0] = value
    for i in range(dim):
        if not math.isfinite(grad[i]):
            return 3
    return 0 if math.isfinite(value) else 4


def _sbg_expand_callback(dim, n_expanded, x_ptr, out_ptr, data_ptr):
    size = int(numba.carray(data_ptr, (1,), np.float64)[0])
    data = numba.carray(data_ptr, (size,), np.float64)
    if dim != int(data[4]) or n_expanded != int(data[5]):
        return -1
    sbg_expand(numba.carray(x_ptr, (dim,)), data, numba.carray(out_ptr, (n_expanded,)))
    return 0


# -- Weibull -----------------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def weibull_logp(x, data, grad):
    """The Weibull model's log density at ``x``; its gradient into ``grad``.

    Per persona, with shape ``k = exp(u0)`` and scale ``exp(u1)``, ``E`` the weight of its
    churned rows and ``D`` their weighted sum of log durations: ``log L = E (u0 - k u1) +
    (k - 1) D - sum_rows w exp(k (log d - u1))`` (``pt_weibull_loglik``). Data after the head:
    ``E`` (P), ``D`` (P), row offsets (P + 1), then ``log d`` and ``w`` of every row
    (``data[3]`` rows).
    """
    n_p, n_c, n_rows = int(data[1]), int(data[2]), int(data[3])
    u = np.empty((n_c, n_p))
    gu = np.zeros((n_c, n_p))
    total = pooled_prior(x, data, u)
    base = HEAD + WIDTH * n_c
    rows = base + 3 * n_p + 1
    for p in range(n_p):
        u0, u1 = u[0, p], u[1, p]
        k = math.exp(u0)
        events, events_log_d = data[base + p], data[base + n_p + p]
        total += events * (u0 - k * u1) + (k - 1.0) * events_log_d
        d0 = events * (1.0 - k * u1) + k * events_log_d
        d1 = -events * k
        for i in range(int(data[base + 2 * n_p + p]), int(data[base + 2 * n_p + p + 1])):
            z = data[rows + i] - u1
            term = data[rows + n_rows + i] * math.exp(k * z)
            total -= term
            d0 -= term * k * z
            d1 += term * k
        gu[0, p] = d0
        gu[1, p] = d1
    pooled_gradient(x, data, u, gu, grad)
    return total


@numba.njit(cache=True, error_model="numpy")
def weibull_expand(x, data, out):
    """The Weibull model's stored variables: ``x``, the pooling level's, ``shape``, ``scale``."""
    n_p, n_c, n_dim = int(data[1]), int(data[2]), int(data[4])
    for i in range(n_dim):
        out[i] = x[i]
    u = np.empty((n_c, n_p))
    pooled_prior(x, data, u)
    pos = pooled_stored(x, data, u, out)
    for p in range(n_p):
        out[pos + p] = math.exp(u[0, p])
        out[pos + n_p + p] = math.exp(u[1, p])


def _weibull_logp_callback(dim, x_ptr, grad_ptr, logp_ptr, data_ptr):
    size = int(numba.carray(data_ptr, (1,), np.float64)[0])
    data = numba.carray(data_ptr, (size,), np.float64)
    if dim != int(data[4]):
        return -1
    x = numba.carray(x_ptr, (dim,))
    grad = numba.carray(grad_ptr, (dim,))
    value = weibull_logp(x, data, grad)
    numba.carray(logp_ptr, (1,))[0] = value
    for i in range(dim):
        if not math.isfinite(grad[i]):
            return 3
    return 0 if math.isfinite(value) else 4


def _weibull_expand_callback(dim, n_expanded, x_ptr, out_ptr, data_ptr):
    size = int(numba.carray(data_ptr, (1,), np.float64)[0])
    data = numba.carray(data_ptr, (size,), np.float64)
    if dim != int(data[4]) or n_expanded != int(data[5]):
        return -1
    weibull_expand(numba.carray(x_ptr, (dim,)), data, numba.carray(out_ptr, (n_expanded,)))
    return 0


_CALLBACKS = {"sbg": (_sbg_logp_callback, _sbg_expand_callback),
              "weibull": (_weibull_logp_callback, _weibull_expand_callback)}


@cache
def callbacks(model: str):
    """The C callbacks (``logp``, ``expand``) of ``model``, loaded from numba's cache or
    compiled, once a process: only the model sampled pays for its compiling."""
    logp, expand = _CALLBACKS[model]
    return (numba.cfunc(LOGP_SIGNATURE, cache=True, error_model="numpy")(logp),
            numba.cfunc(EXPAND_SIGNATURE, cache=True, error_model="numpy")(expand))
