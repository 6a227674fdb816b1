"""The PyMC graph of the churn models: pooling coordinates, priors and the likelihood potential.

Moved from :mod:`journeymodel.models.churn.model` (issue 14); the model class there prepares
the likelihood data (:mod:`journeymodel.models.churn.data`) and samples this graph. The priors
and the pooling are explained in :func:`build_pymc`.
"""

from __future__ import annotations

import numpy as np

from journeymodel.fit.bayes import register_native
from journeymodel.models.churn import likelihoods as lk
from journeymodel.models.churn.native import native_density
from journeymodel.models.churn.priors import COORDS, PRIOR_SCALE, SIGMA_PRIOR

#: Parameters of each model, per persona (published names).
PARAMS = {"sbg": ("alpha", "beta"), "weibull": ("shape", "scale"),
          "bgnbd": ("r", "alpha", "a", "b"), "gg": ("p", "q", "v")}
DATA_KEYS = {
    "sbg": ("lost_p", "lost_t", "lost_n", "alive_p", "alive_t", "alive_n"),
    "weibull": ("offsets", "log_d", "weight", "events", "events_log_d"),
    "bgnbd": ("cell_p", "cell_x", "cell_w", "offsets", "times", "x", "t_x_at", "T_at",
              "weight"),
    "gg": ("gg_cell_p", "gg_cell_x", "gg_cell_w", "gg_n", "gg_xlogs", "gg_offsets", "gg_x",
           "gg_s"),
}
LOGLIK = {"sbg": lk.pt_sbg_loglik, "weibull": lk.pt_weibull_loglik,
          "bgnbd": lk.pt_bgnbd_loglik, "gg": lk.pt_gg_loglik}
#: nutpie samples the models of :mod:`journeymodel.models.churn.native` (sBG) from their
#: hand-written log density, the same as :func:`build_pymc`'s (tests/test_churn_native.py).
register_native("journeymodel.churn", native_density)
#: How personas share parameters: ``partial`` (hierarchical, the default), ``none`` (each
#: persona on its own data, independent priors), ``complete`` (one population: every persona
#: gets the parameters of all customers together).
POOLING = ("partial", "none", "complete")


def parts_of(model: str, spend: bool) -> tuple[str, ...]:
    """The likelihood parts sampled together: the churn model, and Gamma-Gamma spend (``gg``,
    an independent factor of the posterior) with ``spend``."""
    return (model, "gg") if spend else (model,)


def published_tensors(model: str, u):
    """Published parameters from the pooling coordinates ``u`` (list of PyTensor vectors)."""
    import pytensor.tensor as pt

    if model == "weibull":
        return {"shape": pt.exp(u[0]), "scale": pt.exp(u[1])}
    if model == "gg":  # u = (log p, log q, log(p v / q)): p v / q ~ typical spend
        p, q = pt.exp(u[0]), pt.exp(u[1])
        return {"p": p, "q": q, "v": pt.exp(u[2]) * q / p}
    if model == "sbg":  # u = (logit of the mean churn probability, log(alpha + beta))
        kappa = pt.exp(u[1])
        return {"alpha": pt.sigmoid(u[0]) * kappa, "beta": pt.sigmoid(-u[0]) * kappa}
    # bgnbd: u = (log mean rate r / alpha, log r, logit of mean drop-out a / (a + b), log(a + b))
    r, kappa = pt.exp(u[1]), pt.exp(u[3])
    return {"r": r, "alpha": r * pt.exp(-u[0]), "a": pt.sigmoid(u[2]) * kappa,
            "b": pt.sigmoid(-u[2]) * kappa}


def build_pymc(model: str, n_personas: int, data: dict[str, np.ndarray],
               prior_loc: np.ndarray, non_centered: frozenset[str] = frozenset(), *,
               spend: bool = False, pooling: str = "partial"):
    """The hierarchical PyMC model (data in ``pm.Data`` so a compiled model can be reused).

    Personas are pooled on coordinates that are nearly uncorrelated in the posterior (see
    :data:`COORDS`): ``u_p ~ Normal(mu, sigma)``, ``mu ~ Normal(prior_loc, PRIOR_SCALE)``,
    ``log sigma ~ Normal(0, 0.5)`` (median 1; a boundary-avoiding prior for a scale estimated
    from few groups, after Chung et al. 2013); one persona: ``u ~ Normal(prior_loc,
    PRIOR_SCALE)``. The spread's prior is normal in ``log sigma``, the coordinate NUTS moves
    in: a ``Gamma(4, 4)`` prior (used before) has a doubly exponential tail there, whose
    curvature grows fourfold from the bulk to ``sigma = 4``, and trajectories that reached it
    diverged.

    How the population level is sampled (the model is the same either way):

    * coordinates in ``non_centered`` (weakly identified by the data, see
      :mod:`journeymodel.models.churn.pooling`) as ``u_p = mu + sigma * z_p``,
      ``z_p ~ Normal(0, 1)``;
    * the others (identified by each persona's data) with ``mu`` integrated out: ``u`` is
      multivariate normal with covariance ``sigma**2 I + s**2 J`` (:func:`pooled_logp`), and
      ``mu`` is drawn exactly from its conditional posterior ``Normal(mu | u, sigma)`` through a
      standard normal ``eta_<coord>``. With two or three personas the conditional spread of
      ``mu`` (``sigma / sqrt(P)``) varies twentyfold over the posterior of ``sigma``, a
      funnel that made NUTS diverge; without ``mu`` only ``u`` and ``sigma`` are sampled and
      neither scale depends much on the other when the data identify ``u``.

    ``spend`` adds the Gamma-Gamma model of spend per repeat transaction (bgnbd), pooled the
    same way on ``log p``, ``log q`` and ``log(p v / q)``; ``prior_loc`` then holds the
    centres of both parts. ``pooling="none"`` gives each persona the one-persona prior
    ``u_p ~ Normal(prior_loc, PRIOR_SCALE)`` independently (no population level); complete
    pooling is a one-persona fit (:class:`~journeymodel.models.churn.model.ChurnModel`).
    """
    import pymc as pm

    with pm.Model(coords={"persona": np.arange(n_personas)}) as m:
        parts = parts_of(model, spend)
        d = {k: pm.Data(k, data[k]) for part in parts for k in DATA_KEYS[part]}
        loc = pm.Data("prior_loc", prior_loc)
        start = 0
        for part in parts:
            u = _coordinates(part, n_personas, loc, start, non_centered, pooling)
            start += len(COORDS[part])
            theta = {k: pm.Deterministic(k, v, dims="persona")
                     for k, v in published_tensors(part, u).items()}
            sizes = {} if part == "sbg" else {"n_personas": n_personas}
            pm.Potential(f"loglik_{part}" if part == "gg" else "loglik",
                         LOGLIK[part](*(theta[n] for n in PARAMS[part]),
                                      *(d[k] for k in DATA_KEYS[part]), **sizes))
    return m


def _coordinates(model: str, n_personas: int, loc, start: int, non_centered: frozenset[str],
                 pooling: str) -> list:
    """The pooled coordinates of one likelihood part (inside the model context)."""
    import pymc as pm

    u = []
    for j, name in enumerate(COORDS[model]):
        i = start + j
        scale = PRIOR_SCALE[model][j]
        if n_personas == 1 or pooling == "none":
            u.append(pm.Normal(name, loc[i], scale, dims="persona"))
            continue
        sigma = pm.LogNormal(f"sigma_{name}", mu=SIGMA_PRIOR[0], sigma=SIGMA_PRIOR[1])
        if name in non_centered:
            mu = pm.Normal(f"mu_{name}", loc[i], scale)
            z = pm.Normal(f"z_{name}", 0.0, 1.0, dims="persona")
            u.append(pm.Deterministic(name, mu + sigma * z, dims="persona"))
            continue
        v = pm.Flat(name, dims="persona")
        pm.Potential(f"pool_{name}", pooled_logp(v, sigma, loc[i], scale))
        eta = pm.Normal(f"eta_{name}", 0.0, 1.0)
        mean, sd = mu_given(v, sigma, loc[i], scale)
        pm.Deterministic(f"mu_{name}", mean + sd * eta)
        u.append(v)
    return u


def pooled_logp(u, sigma, m, s):
    """log density of ``u`` (P personas) with ``u_p ~ Normal(mu, sigma)``, ``mu ~ Normal(m, s)``
    and ``mu`` integrated out: ``u ~ MvNormal(m 1, sigma**2 I + s**2 J)``.

    The covariance has eigenvalue ``sigma**2 + P s**2`` along ``1`` and ``sigma**2`` on its
    complement, so with ``ubar`` the mean of ``u`` and ``S = sum (u_p - ubar)**2``:
    ``-(P - 1) log sigma - log(sigma**2 + P s**2) / 2 - S / (2 sigma**2)
    - P (ubar - m)**2 / (2 (sigma**2 + P s**2))`` (constant ``-P/2 log 2 pi`` left out).
    """
    import pytensor.tensor as pt

    n = u.shape[0]
    ubar = pt.mean(u)
    wide = sigma**2 + n * s**2
    return (-(n - 1) * pt.log(sigma) - 0.5 * pt.log(wide)
            - pt.sum((u - ubar) ** 2) / (2 * sigma**2) - n * (ubar - m) ** 2 / (2 * wide))


def mu_given(u, sigma, m, s):
    """Mean and sd of ``mu | u, sigma`` (conjugate normal): precision ``1/s**2 + P/sigma**2``."""
    import pytensor.tensor as pt

    precision = 1.0 / s**2 + u.shape[0] / sigma**2
    return (m / s**2 + pt.sum(u) / sigma**2) / precision, 1.0 / pt.sqrt(precision)
