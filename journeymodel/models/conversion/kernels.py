"""The conversion model's log density and gradient by hand, in numba, as nutpie's C callbacks.

The density of :func:`journeymodel.models.conversion.graph.build_model` with one grouping in
the informed form (:func:`~journeymodel.models.conversion.graph._informed_levels`), checked
against PyMC's in tests/test_conversion_native.py; see :mod:`journeymodel.fit.native` for
why. Free variables ``x = (log sigma, z_mu, z_1..z_L)``. ``data``: its length, ``L``, then per
level ``n``, ``k``, ``h`` (empirical logit), ``v`` (its sampling variance) and the binomial
coefficient's log, each ``L`` long.
"""

from __future__ import annotations

import math
from functools import cache

import numba
import numpy as np

from journeymodel.fit.native import signatures

LOGP_SIGNATURE, EXPAND_SIGNATURE = signatures()
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: ``mu ~ Normal(0, MU_SD)``, ``sigma ~ HalfNormal(1)`` (graph.build_model).
MU_SD = 3.0


@numba.njit(cache=True, error_model="numpy")
def _log_sigmoid(v):
    if v > 0.0:
        return -math.log1p(math.exp(-v))
    return v - math.log1p(math.exp(v))


@numba.njit(cache=True, error_model="numpy")
def informed_logp(x, data, grad):
    """The model's log density at ``x``; its gradient into ``grad``.

    With ``s = sigma**2``, ``P = 1/9 + sum 1/(s + v)``, ``mu = sum(h / (s + v)) / P +
    z_mu / sqrt(P)``, ``w = s / (s + v)``, ``alpha = w h + (1 - w) mu + sqrt(w v) z``: the
    HalfNormal prior of sigma (and the log transform's Jacobian), the normal priors of ``mu``
    and of each ``alpha`` given ``mu`` and sigma, the log Jacobian ``log(1 / sqrt(P)) + sum
    log sqrt(w v)``, and the binomial likelihood of ``k`` conversions of ``n`` at logit
    ``alpha``. The gradient runs the chain rule backwards through ``alpha`` and ``mu``.
    """
    n_l = int(data[1])
    t = x[0]
    sigma = math.exp(t)
    s = sigma * sigma
    big_p, big_a, dp, da = 1.0 / MU_SD**2, 0.0, 0.0, 0.0
    for i in range(n_l):
        v, h = data[2 + 3 * n_l + i], data[2 + 2 * n_l + i]
        q = 1.0 / (s + v)
        big_p += q
        big_a += h * q
        dp -= 2.0 * s * q * q  # d/dt of 1 / (s + v)
        da -= 2.0 * s * h * q * q
    sd_mu = 1.0 / math.sqrt(big_p)
    mu = big_a / big_p + sd_mu * x[1]
    dmu_dt = (da * big_p - big_a * dp) / big_p**2 - 0.5 * sd_mu / big_p * dp * x[1]
    total = math.log(2.0) - _HALF_LOG_2PI - 0.5 * s + t  # HalfNormal(1) and the Jacobian
    d_t = -s + 1.0
    total += -0.5 * (mu / MU_SD) ** 2 - math.log(MU_SD) - _HALF_LOG_2PI - 0.5 * math.log(big_p)
    g_mu = -mu / MU_SD**2
    d_t += -0.5 * dp / big_p
    for i in range(n_l):
        n, k = data[2 + i], data[2 + n_l + i]
        h, v = data[2 + 2 * n_l + i], data[2 + 3 * n_l + i]
        w = s / (s + v)
        dw_dt = 2.0 * s * v / (s + v) ** 2
        sd = math.sqrt(w * v)
        z = x[2 + i]
        alpha = w * h + (1.0 - w) * mu + sd * z
        r = alpha - mu
        total += -0.5 * r * r / s - t - _HALF_LOG_2PI + math.log(sd)
        total += (data[2 + 4 * n_l + i] + k * _log_sigmoid(alpha)
                  + (n - k) * _log_sigmoid(-alpha))
        g_alpha = -r / s + k - n * math.exp(_log_sigmoid(alpha))
        g_mu += r / s + g_alpha * (1.0 - w)
        d_t += r * r / s - 1.0 + dw_dt / w * 0.5
        d_t += g_alpha * (dw_dt * (h - mu) + 0.5 * sd * dw_dt / w * z)
        grad[2 + i] = g_alpha * sd
    grad[0] = d_t + g_mu * dmu_dt
    grad[1] = g_mu * sd_mu
    return total


@numba.njit(cache=True, error_model="numpy")
def informed_expand(x, data, out):
    """Stored variables: ``x``, then ``sigma_levels``, ``mu``, ``logit_levels``."""
    n_l = int(data[1])
    n_dim = 2 + n_l
    for i in range(n_dim):
        out[i] = x[i]
    sigma = math.exp(x[0])
    s = sigma * sigma
    big_p, big_a = 1.0 / MU_SD**2, 0.0
    for i in range(n_l):
        v, h = data[2 + 3 * n_l + i], data[2 + 2 * n_l + i]
        big_p += 1.0 / (s + v)
        big_a += h / (s + v)
    mu = big_a / big_p + x[1] / math.sqrt(big_p)
    out[n_dim] = sigma
    out[n_dim + 1] = mu
    for i in range(n_l):
        h, v = data[2 + 2 * n_l + i], data[2 + 3 * n_l + i]
        w = s / (s + v)
        out[n_dim + 2 + i] = w * h + (1.0 - w) * mu + math.sqrt(w * v) * x[2 + i]


def _logp_callback(dim, x_ptr, grad_ptr, logp_ptr, data_ptr):
    size = int(numba.carray(data_ptr, (1,), np.float64)[0])
    data = numba.carray(data_ptr, (size,), np.float64)
    if dim != 2 + int(data[1]):
        return -1
    x = numba.carray(x_ptr, (dim,))
    grad = numba.carray(grad_ptr, (dim,))
    value = informed_logp(x, data, grad)
    numba.carray(logp_ptr, (1,))[0] = value
    for i in range(dim):
        if not math.isfinite(grad[i]):
            return 3
    return 0 if math.isfinite(value) else 4


def _expand_callback(dim, n_expanded, x_ptr, out_ptr, data_ptr):
    size = int(numba.carray(data_ptr, (1,), np.float64)[0])
    data = numba.carray(data_ptr, (size,), np.float64)
    if dim != 2 + int(data[1]) or n_expanded != 2 * dim:
        return -1
    informed_expand(numba.carray(x_ptr, (dim,)), data, numba.carray(out_ptr, (n_expanded,)))
    return 0


@cache
def callbacks():
    """The C callbacks (``logp``, ``expand``), loaded from numba's cache or compiled, once a
    process."""
    return (numba.cfunc(LOGP_SIGNATURE, cache=True, error_model="numpy")(_logp_callback),
            numba.cfunc(EXPAND_SIGNATURE, cache=True, error_model="numpy")(_expand_callback))
