"""The PyMC graph of the conversion model and the rule that picks its parameterisation.

Moved unchanged from :mod:`journeymodel.models.conversion.model` (issue 14); the model class
there builds and samples this graph, on the counts of :mod:`journeymodel.stats.conversion`.

Parameterisation
----------------
The persona effects (the first grouping's levels) are sampled in the *informed* form
(:func:`_informed_levels`): an exact change of coordinates, built from each level's own
counts, that is centred where a level's data dominate the hierarchy's prior and non-centred
where they do not, for every value of the spread. With three personas the spread
``sigma_levels`` is barely identified (90% of its posterior in 0.1-1.1 on the 500-customer
sample data) and crosses that boundary inside one posterior: the centred form diverged
where it is small (7 divergences of 4,000 draws, seed 1), the non-centred one mixed slowly
where it is large (R-hat 1.0105, bulk ESS 356).

Parameterisation rule
---------------------
The other hierarchical components (touchpoint effects, cell effects), and the persona effects
when a parameterisation is forced, are sampled
*centred* when their data dominate their prior and *non-centred* otherwise. For a level with
:math:`n` journeys and :math:`k` conversions the information about its logit rate is
:math:`I = k (n - k) / n`; with :math:`\\hat\\sigma` a cautious moment estimate of the
component's spread (the variance of the empirical logits minus their mean sampling variance,
shrunk by :math:`(L-1)/(L+1)` for :math:`L` levels, at least :math:`0.01^2`; for cell effects,
of the two-way residuals of the logits), the component
is centred when the median over its levels of :math:`I \\hat\\sigma^2` is at least 1 (4 for the
cell interaction, whose estimate is the noisiest: see ``CELLS_CENTERED_MIN``) — the
data pin each level more tightly than the prior does, so the non-centred form would couple
every level to the scale and mix badly (R-hat 1.1 seen with 20 personas of 1k-50k journeys).
Sparse groups (few journeys, rates alike) keep the non-centred form, which avoids the funnel
of the centred one.

References
----------
Gelman, A., Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical Models,
ch. 13-14 (varying-intercept logistic models). Betancourt, M., Girolami, M. (2015). Hamiltonian
Monte Carlo for hierarchical models (centred vs non-centred).
Gorinova, M., Moore, D., Hoffman, M. (2020). Automatic reparameterisation of probabilistic
programs. ICML (parameterisations between centred and non-centred, per variable).
Papaspiliopoulos, O., Roberts, G. O., Sköld, M. (2007). A general framework for the
parametrization of hierarchical models. Statistical Science 22(1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from journeymodel.fit.bayes import register_native
from journeymodel.models.conversion.native import native_density

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from journeymodel.stats.conversion import ConversionCounts

# -- parameterisation ------------------------------------------------------------------------


def _empirical_logits(trials: np.ndarray, conversions: np.ndarray):
    n, k = np.asarray(trials, float), np.asarray(conversions, float)
    logit = np.log((k + 0.5) / (n - k + 0.5))
    sampling = 1.0 / (k + 0.5) + 1.0 / (n - k + 0.5)
    return logit, sampling


def spread_estimate(trials: np.ndarray, conversions: np.ndarray) -> float:
    """Cautious moment estimate of the SD of logit rates across levels (>= 0.01; 1 if one level).

    The moment estimate of the variance (between-level variance of the empirical logits minus
    their mean sampling variance) is shrunk by ``(L - 1) / (L + 1)`` for ``L`` levels: from few
    levels it is noisy (relative error ``sqrt(2 / (L - 1))``), and overstating the spread would
    pick the centred form, whose failure (a funnel: divergences) is worse than the non-centred
    one's (a lower ESS).

    ``trials`` and ``conversions``: shape (n_levels,); for shape (n_a, n_b) the spread of the
    interaction (two-way residuals of the logits) is estimated. Empty levels are ignored.
    """
    n = np.asarray(trials, float)
    logit, sampling = _empirical_logits(n, conversions)
    seen = n > 0
    if n.ndim == 2:
        if min(seen.any(1).sum(), seen.any(0).sum()) < 2:
            return 1.0
        masked = np.where(seen, logit, np.nan)
        resid = (masked - np.nanmean(masked, 1, keepdims=True)
                 - np.nanmean(masked, 0, keepdims=True) + np.nanmean(masked))
        g, h = masked.shape
        dof = (g - 1) * (h - 1) / (g * h)
        between = np.nanmean(resid**2) / dof
    else:
        if seen.sum() < 2:
            return 1.0
        between = np.var(logit[seen], ddof=1)
    levels = int(seen.sum())
    spread = (between - sampling[seen].mean()) * (levels - 1) / (levels + 1)
    return float(np.sqrt(max(spread, 1e-4)))


#: The rule's threshold for the cell interaction of a crossed grouping: its spread is a
#: moment estimate from two-way residuals of noisy logits, which overstates it on moderate
#: data. On the 2,000-customer sample data (3 personas x 9 first touchpoints) it gave 0.24
#: (median ``I * sigma**2`` 2.0) where the posterior put ``sigma_cells`` at 0.12 [0.015, 0.30];
#: the centred form then mixed badly (R-hat 1.027, bulk ESS 129 for ``sigma_cells``).
CELLS_CENTERED_MIN = 4.0
#: The persona effects' form under ``parameterization="auto"`` (see :func:`_informed_levels`).
INFORMED = "informed"


def prefers_centered(trials: np.ndarray, conversions: np.ndarray,
                     sigma: float | None = None, threshold: float = 1.0) -> bool:
    """The parameterisation rule (module docstring): median of ``I * sigma**2`` >= 1 (or
    ``threshold``)."""
    sigma = spread_estimate(trials, conversions) if sigma is None else sigma
    n, k = np.asarray(trials, float).ravel(), np.asarray(conversions, float).ravel()
    info = np.where(n > 0, k * (n - k) / np.maximum(n, 1), 0.0)
    return bool(np.median(info * sigma**2) >= threshold)


def choose_parameterization(counts: ConversionCounts, forced: str) -> dict[str, str]:
    """``{"levels": ..., ["second": ..., "cells": ...]}`` -> ``"centered"``/``"non-centered"``
    (``"informed"`` for the levels under ``"auto"``)."""
    if forced != "auto":
        names = ("levels", "second", "cells")[: 1 if len(counts.by) == 1 else 3]
        return dict.fromkeys(names, forced)
    pick = lambda c: "centered" if c else "non-centered"  # noqa: E731
    n, k = counts.trials, counts.conversions
    if len(counts.by) == 1:
        return {"levels": INFORMED}
    return {
        "levels": INFORMED,
        "second": pick(prefers_centered(n.sum(0), k.sum(0))),
        "cells": pick(prefers_centered(n, k, threshold=CELLS_CENTERED_MIN)),
    }


# -- the PyMC model --------------------------------------------------------------------------


#: nutpie samples the default model (one grouping, informed persona effects) from its
#: hand-written log density (models/conversion/native.py), the same as :func:`build_model`'s.
register_native("conversion", native_density)
#: How the levels of the first grouping share strength (``partial``: the hierarchy above).
POOLING = ("partial", "none", "complete")


def build_model(shape: tuple[int, ...], choice: dict[str, str], trials: np.ndarray,
                conversions: np.ndarray, pooling: str = "partial"):
    """The PyMC model for counts of ``shape`` (data in ``pm.Data`` "trials"/"conversions").

    Variables kept in the posterior: ``mu``, ``sigma_levels``, ``logit_levels`` (n_levels,) and,
    for two groupings, ``sigma_second``, ``effect_second`` (n_second,), ``sigma_cells``,
    ``effect_cells`` (n_levels, n_second).

    ``pooling="none"`` (one grouping): each level's logit rate has ``mu``'s prior ``N(0, 3)``
    on its own, and ``mu`` is their mean (no ``sigma_levels``); ``"complete"``: one logit rate
    ``mu ~ N(0, 3)`` for every level (the fit of all journeys together).
    """
    import pymc as pm

    with pm.Model() as model:
        n = pm.Data("trials", trials)
        k = pm.Data("conversions", conversions)
        if pooling == "none":
            alpha = pm.Normal("logit_levels", 0.0, 3.0, shape=shape[0])
            pm.Deterministic("mu", alpha.mean())
        elif pooling == "complete":
            mu = pm.Normal("mu", 0.0, 3.0)
            alpha = pm.Deterministic("logit_levels", mu * np.ones(shape[0]))
        elif choice["levels"] == INFORMED:
            alpha = _informed_levels(n if len(shape) == 1 else n.sum(axis=1),
                                     k if len(shape) == 1 else k.sum(axis=1), shape[0])
        else:
            mu = pm.Normal("mu", 0.0, 3.0)
            sigma = pm.HalfNormal("sigma_levels", 1.0)
            if choice["levels"] == "centered":
                alpha = pm.Normal("logit_levels", mu, sigma, shape=shape[0])
            else:
                z = pm.Normal("z_levels", 0.0, 1.0, shape=shape[0])
                alpha = pm.Deterministic("logit_levels", mu + sigma * z)
        eta = alpha
        if len(shape) == 2:
            beta = _zero_sum("second", choice["second"], (shape[1],), 1)
            gamma = _zero_sum("cells", choice["cells"], shape, 2)
            eta = alpha[:, None] + beta[None, :] + gamma
        pm.Binomial("observed", n=n, logit_p=eta, observed=k)
    return model


def _informed_levels(trials, conversions, n_levels: int):
    """``logit_levels`` (and ``mu``, ``sigma_levels``) in coordinates informed by the data.

    The model is unchanged: ``alpha_l ~ N(mu, sigma)``, ``mu ~ N(0, 3)``, ``sigma ~
    HalfNormal(1)``. Only the coordinates NUTS moves in differ. Each level's data are
    approximated by its empirical logit ``h_l`` with sampling variance ``v_l`` (as in
    :func:`spread_estimate`); under that approximation, given ``sigma``, ``mu`` is normal with
    precision ``1/9 + sum 1/(sigma**2 + v_l)``, and given ``mu`` too, ``alpha_l`` is normal
    with mean ``w_l h_l + (1 - w_l) mu`` and variance ``w_l v_l``, ``w_l = sigma**2 /
    (sigma**2 + v_l)``. ``mu`` and ``alpha`` are written as those means plus those sds times
    free coordinates ``z_mu``, ``z_levels``; the exact prior density of ``mu`` and ``alpha``
    with the log Jacobian of the change goes into a ``pm.Potential``. Where the approximation
    holds, ``z_mu``, ``z_levels`` and ``log sigma`` are nearly independent standard normals
    whatever ``sigma`` is: the form is centred for a level whose data dominate (``w_l``
    near 1) and non-centred for one whose data are weak (``w_l`` near 0), at each ``sigma``.
    Where it does not hold (a level with no conversion) the posterior is still exact, only
    less round.

    ``trials``, ``conversions``: the per-level counts as tensors (``pm.Data`` or sums of it),
    so a compiled model is reused on new counts.
    """
    import pymc as pm
    import pytensor.tensor as pt

    k = pt.cast(conversions, "float64")
    n = pt.cast(trials, "float64")
    h = pt.log((k + 0.5) / (n - k + 0.5))
    v = 1.0 / (k + 0.5) + 1.0 / (n - k + 0.5)
    sigma = pm.HalfNormal("sigma_levels", 1.0)
    s2 = sigma**2
    precision = 1.0 / 3.0**2 + pt.sum(1.0 / (s2 + v))
    sd_mu = 1.0 / pt.sqrt(precision)
    mu = pm.Deterministic("mu", pt.sum(h / (s2 + v)) / precision
                          + sd_mu * pm.Flat("z_mu"))
    w = s2 / (s2 + v)
    sd = pt.sqrt(w * v)
    alpha = pm.Deterministic("logit_levels", w * h + (1.0 - w) * mu
                             + sd * pm.Flat("z_levels", shape=n_levels))
    pm.Potential("prior_levels", pm.logp(pm.Normal.dist(0.0, 3.0), mu)
                 + pt.sum(pm.logp(pm.Normal.dist(mu, sigma), alpha))
                 + pt.log(sd_mu) + pt.sum(pt.log(sd)))
    return alpha


def _zero_sum(name: str, choice: str, shape: tuple[int, ...], axes: int):
    import pymc as pm

    sigma = pm.HalfNormal(f"sigma_{name}", 1.0)
    if choice == "centered":
        return pm.ZeroSumNormal(f"effect_{name}", sigma=sigma, shape=shape, n_zerosum_axes=axes)
    z = pm.ZeroSumNormal(f"z_{name}", sigma=1.0, shape=shape, n_zerosum_axes=axes)
    return pm.Deterministic(f"effect_{name}", sigma * z)
