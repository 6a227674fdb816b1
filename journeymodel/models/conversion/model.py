"""Conversion by persona: a hierarchical (logit-normal) Bayesian model, fitted on counts.

A completed journey either converts or not. Journeys are grouped by persona (and optionally by
a second, crossed grouping: the first touchpoint of the journey), and the model is

.. math::

    k_{c} \\sim \\mathrm{Binomial}(n_{c}, \\operatorname{logit}^{-1}\\eta_{c}), \\qquad
    \\eta_{c} = \\alpha_{a(c)} \\; [+ \\beta_{b(c)} + \\gamma_{a(c) b(c)}]

    \\alpha_a \\sim N(\\mu, \\sigma_A), \\quad \\mu \\sim N(0, 3), \\quad
    \\sigma_A \\sim \\mathrm{HalfNormal}(1)

with, for a crossed grouping, zero-sum effects :math:`\\beta \\sim \\mathrm{ZeroSumNormal}
(\\sigma_B)` and :math:`\\gamma \\sim \\mathrm{ZeroSumNormal}(\\sigma_{AB})` over both axes. The
likelihood uses the counts of conversions :math:`k_c` and completed journeys :math:`n_c` of
each cell (sufficient statistics), so the cost of a fit does not grow with the number of
customers. Censored (still open) journeys are left out and counted as such.

The PyMC graph and the rule that picks its parameterisation (centred or non-centred per
component) are in :mod:`journeymodel.models.conversion.graph`; the counts in
:mod:`journeymodel.stats.conversion`.

References
----------
Gelman, A., Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical Models,
ch. 13-14 (varying-intercept logistic models). Betancourt, M., Girolami, M. (2015). Hamiltonian
Monte Carlo for hierarchical models (centred vs non-centred).
Papaspiliopoulos, O., Roberts, G. O., Sköld, M. (2007). A general framework for the
parametrization of hierarchical models. Statistical Science 22(1).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self

import numpy as np

from journeymodel.choices import PARAMETERIZATIONS, SAMPLERS
from journeymodel.data.journeys import JourneySet
from journeymodel.errors import InputError, OptionError
from journeymodel.models.base import JourneyModel, Result
from journeymodel.models.conversion.graph import POOLING, build_model, choose_parameterization
from journeymodel.stats.conversion import ConversionCounts, check_grouping, count_conversions

#: NUTS target acceptance: 0.8 left 12-16 divergences (of 4000 draws) on the 3-persona demo
#: data, centred; 0.95 none, for about twice the leapfrog steps (still well under a second).
TARGET_ACCEPT = 0.95
#: Advice of this model, after the general remedies of :func:`journeymodel.fit.bayes.remedies`.
REMEDIES = (
    "force a parameterisation (--parameterization centered or non-centered)",
    "merge personas or touchpoints with very few journeys",
)


def _label_posterior(tree, counts: ConversionCounts):
    """Keep the named variables, with dims named after the groupings and their levels."""
    import xarray as xr

    post = tree["posterior"].to_dataset()
    keep = [v for v in post.data_vars if not str(v).startswith("z_")]
    post = post[keep]
    rename = {}
    for var in keep:
        da = post[var]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        target = {"logit_levels": counts.by[:1], "effect_second": counts.by[1:2],
                  "effect_cells": counts.by}.get(str(var), ())
        rename[var] = da.rename(dict(zip(extra, target, strict=True))) if extra else da
    post = xr.Dataset(rename).assign_coords({
        name: np.array(levels, dtype=object)
        for name, levels in zip(counts.by, counts.levels, strict=True)})
    post = post.assign_coords(chain=post["chain"].values.astype(np.int64),
                              draw=post["draw"].values.astype(np.int64))
    return xr.DataTree.from_dict({"/posterior": post,
                                  "/sample_stats": tree["sample_stats"].to_dataset()})


# -- the model class -------------------------------------------------------------------------


class ConversionModel(JourneyModel):
    """Conversion rate of completed journeys per persona, with partial pooling (PyMC NUTS).

    Parameters
    ----------
    by : list of str
        ``["persona"]`` (default), ``["persona", "first_touchpoint"]`` (crossed: which first
        touchpoint converts which persona) or ``["first_touchpoint"]``.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, number of chains.
    seed : int
        Same seed, same posterior.
    parameterization : {"auto", "centered", "non-centered"}
        ``"auto"``: the persona effects in the data-informed form, the other groupings by the
        rule (see :mod:`journeymodel.models.conversion.graph`); the other two force one form
        on every grouping.
    hdi_prob : float
        Credible mass of the reported highest-density intervals.
    sampler : {"nutpie", "pymc"}, optional
        NUTS implementation; default nutpie when installed. nutpie samples fastest but compiles
        the model with numba in every new process (about 5 s here unloaded); PyMC's sampler
        reuses its compiled C code from disk across processes and samples slower.
    target_accept : float, optional
        NUTS target acceptance in (0, 1); default :data:`TARGET_ACCEPT`.
    pooling : {"partial", "none", "complete"}
        ``partial`` (the hierarchical model above, the default); ``none``: each level on its
        own data (its own ``N(0, 3)`` prior); ``complete``: one rate for every level (all
        journeys together). ``none`` and ``complete`` take one grouping.

    Attributes
    ----------
    counts_ : ConversionCounts
        Completed journeys and conversions per group (and the censored journeys left out).
    posterior_ : xarray.DataTree
        Groups ``posterior`` and ``sample_stats``.
    diagnostics_ : journeymodel.fit.bayes.Diagnostics
    parameterization_ : dict
        The parameterisation used per component.
    timing_ : dict
        ``compile_seconds``, ``sample_seconds`` and ``sampler`` of the fit.

    Examples
    --------
    >>> from journeymodel.models.conversion.model import ConversionModel
    >>> model = ConversionModel(draws=500).fit(journeys)  # doctest: +SKIP
    >>> model.rates()  # doctest: +SKIP
    """

    model_type: ClassVar[str] = "conversion"
    schema_version: ClassVar[int] = 1

    def __init__(self, by: list[str] | tuple[str, ...] = ("persona",), draws: int = 1000,
                 tune: int = 1000, chains: int = 4, seed: int = 0,
                 parameterization: str = "auto", hdi_prob: float = 0.94,
                 sampler: str | None = None, target_accept: float | None = None,
                 pooling: str = "partial") -> None:
        self.by = list(by)
        self.draws, self.tune, self.chains, self.seed = draws, tune, chains, seed
        self.parameterization = parameterization
        self.hdi_prob = hdi_prob
        self.sampler = sampler
        self.target_accept = target_accept
        self.pooling = pooling

    def _check_params(self) -> None:
        from journeymodel.fit.bayes import check_sizes

        check_grouping(tuple(self.by))
        check_sizes(draws=self.draws, tune=self.tune, chains=self.chains)
        if self.parameterization not in PARAMETERIZATIONS:
            raise OptionError(f"parameterization must be one of {list(PARAMETERIZATIONS)} "
                              f"(got {self.parameterization!r})")
        if not 0 < self.hdi_prob < 1:
            raise OptionError(f"hdi_prob must be in (0, 1) (got {self.hdi_prob!r})")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise OptionError(f"sampler must be 'nutpie' or 'pymc' (got {self.sampler!r})")
        if self.pooling not in POOLING:
            raise OptionError(f"pooling must be one of {', '.join(POOLING)} "
                              f"(got {self.pooling!r})")
        if self.pooling != "partial" and len(self.by) != 1:
            raise OptionError(f"--pooling {self.pooling} takes one grouping (by persona); "
                              f"with --by {self.by[1]} only partial pooling is available")

    def stats_of(self, journeys: JourneySet) -> ConversionCounts:
        """Completed journeys and conversions per cell of ``by``: all :meth:`fit_stats` needs
        (they add up over parts of a log).

        Raises
        ------
        InputError
            No persona column (when grouping by persona).
        OptionError
            A bad parameter.
        """
        self._check_params()
        return count_conversions(journeys, tuple(self.by))

    def fit(self, journeys: JourneySet, *, progress: bool = False) -> Self:
        """Count conversions per group and sample the posterior:
        ``fit_stats(stats_of(journeys))``, remembering the journeys' ledger.

        Raises
        ------
        InputError
            No persona column (when grouping by persona), or no completed journey.
        OptionError
            A bad parameter.

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, bulk ESS < 400 or divergences; the message lists remedies.
        """
        self.fit_stats(self.stats_of(journeys), progress=progress)
        self._remember(journeys)
        return self

    def fit_stats(self, counts: ConversionCounts, *, progress: bool = False) -> Self:
        """Sample the posterior from conversion counts (e.g. summed over parts of a log).

        Raises
        ------
        InputError
            No completed journey in the counts.
        OptionError
            A bad parameter, or counts grouped otherwise than ``by``.

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, bulk ESS < 400 or divergences; the message lists remedies.
        """
        from journeymodel.fit import bayes
        from journeymodel.io.lazydask import import_xarray

        import_xarray()  # before the posterior becomes xarray: dask stays unimported

        self._check_params()
        if tuple(counts.by) != tuple(self.by):
            raise OptionError(f"these counts are grouped by {list(counts.by)} and the model by "
                              f"{self.by}: count with the model's grouping (stats_of)")
        if counts.trials.sum() == 0:
            raise InputError("no completed journey to learn conversion from (all "
                             f"{counts.censored} journeys are censored or there are none)")
        choice = (choose_parameterization(counts, self.parameterization)
                  if self.pooling == "partial" else {"levels": f"{self.pooling} pooling"})
        shape = counts.trials.shape
        extra = () if self.pooling == "partial" else (self.pooling,)
        sampled = bayes.sample(
            lambda: build_model(shape, choice, counts.trials, counts.conversions,
                                self.pooling),
            key=("conversion", shape, tuple(sorted(choice.items())), *extra),
            data={"trials": counts.trials, "conversions": counts.conversions},
            draws=self.draws, tune=self.tune, chains=self.chains, seed=self.seed,
            progress=progress, description="Sampling conversion rates", sampler=self.sampler,
            target_accept=self.target_accept or TARGET_ACCEPT)
        self.counts_ = counts
        self.parameterization_ = choice
        self.posterior_ = _label_posterior(sampled.tree, counts)
        self.timing_ = {"sampler": sampled.sampler,
                        "compile_seconds": round(sampled.compile_seconds, 3),
                        "sample_seconds": round(sampled.sample_seconds, 3)}
        self.diagnostics_ = bayes.diagnose(self.posterior_)
        advice = bayes.remedies(self.diagnostics_, draws=self.draws, tune=self.tune,
                                chains=self.chains,
                                target_accept=self.target_accept or TARGET_ACCEPT,
                                extra=REMEDIES)
        bayes.check_convergence(self.diagnostics_, what="conversion model", remedies=advice,
                                stacklevel=3)
        self._remember_counts(counts)
        return self

    def _remember_counts(self, counts: ConversionCounts) -> None:
        from journeymodel.data.ledger import Ledger
        from journeymodel.models.base import JourneyMeta

        total = int(counts.trials.sum()) + counts.censored
        self.ledger_ = Ledger(source="<counts>", rows_read=total, rows_used=total)
        personas = counts.levels[counts.by.index("persona")] if "persona" in counts.by else ()
        self.journeys_ = JourneyMeta(touchpoints=(), personas=tuple(personas), devices=(),
                                     time_kind="none", gap=None, observed_until=float("nan"),
                                     n_journeys=total, n_events=0)

    # -- posterior quantities ----------------------------------------------------------------
    def rate_draws(self) -> dict[str, Any]:
        """Posterior draws of the conversion rates, as DataArrays with dims (chain, draw, ...).

        Returns
        -------
        dict
            ``"levels"``: rate per level of the first grouping (for two groupings: averaged
            over the second grouping with the level's own journey mix), ``"cells"`` (two
            groupings only): rate per cell, ``"pooled"``: inverse logit of the hierarchical
            mean ``mu`` (a typical level), ``"overall"``: the journey-weighted average rate.
        """
        self._check_fitted()
        post = self.posterior_["posterior"].to_dataset()
        n = self.counts_.trials.astype(float)
        first = self.by[0]
        out: dict[str, Any] = {"pooled": expit(post["mu"])}
        if len(self.by) == 1:
            levels = expit(post["logit_levels"])
        else:
            cells = expit(post["logit_levels"] + post["effect_second"] + post["effect_cells"])
            cells = cells.transpose("chain", "draw", *self.by)
            mix = n / np.where(n.sum(1, keepdims=True) > 0, n.sum(1, keepdims=True), 1)
            mix[n.sum(1) == 0] = 1.0 / n.shape[1]
            levels = (cells * _data_array(mix, self.by)).sum(self.by[1])
            out["cells"] = cells
        levels = levels.transpose("chain", "draw", first)
        out["levels"] = levels
        share = n.sum(axis=tuple(range(1, n.ndim))) / n.sum()
        out["overall"] = (levels * _data_array(share, [first])).sum(first)
        return out

    def rates(self) -> Any:
        """Posterior mean and HDI of each level's conversion rate, with its counts.

        Returns
        -------
        pandas.DataFrame
            Index: the levels of the first grouping; columns ``journeys``, ``conversions``,
            ``observed`` (k/n), ``rate_mean``, ``rate_median``, ``hdi_low``, ``hdi_high``.
        """
        draws = self.rate_draws()["levels"]
        n = self.counts_.trials.reshape(len(draws[self.by[0]]), -1).sum(1)
        k = self.counts_.conversions.reshape(len(n), -1).sum(1)
        return self._table(draws, n, k, self.by[0])

    def cell_rates(self) -> Any:
        """Like :meth:`rates` for every cell of a crossed grouping (two columns of labels)."""
        if len(self.by) != 2:
            raise OptionError("cell rates need two groupings, e.g. by=['persona', "
                              f"'first_touchpoint'] (this model has by={self.by})")
        draws = self.rate_draws()["cells"].stack(cell=self.by)
        table = self._table(draws, self.counts_.trials.ravel(),
                            self.counts_.conversions.ravel(), "cell")
        table.index = table.index.set_names(self.by)
        return table

    def _table(self, draws, n: np.ndarray, k: np.ndarray, dim: str) -> Any:
        import pandas as pd

        from journeymodel.fit.bayes import interval

        summary = interval(draws, self.hdi_prob)
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        return pd.DataFrame({
            "journeys": n, "conversions": k, "observed": observed,
            "rate_mean": summary["mean"].values, "rate_median": summary["median"].values,
            "hdi_low": summary["hdi_low"].values, "hdi_high": summary["hdi_high"].values,
        }, index=summary.indexes[dim] if dim == "cell" else pd.Index(
            list(draws[dim].values), name=dim))

    def prob_greater(self) -> Any:
        """P(rate of row level > rate of column level) for every pair, a square DataFrame."""
        import pandas as pd

        from journeymodel.fit.bayes import draws_of

        draws = self.rate_draws()["levels"]
        flat = draws_of(draws)
        prob = (flat[:, :, None] > flat[:, None, :]).mean(0)
        np.fill_diagonal(prob, np.nan)
        names = pd.Index(list(draws[self.by[0]].values), name=self.by[0])
        return pd.DataFrame(prob, index=names, columns=names)


    # -- forecasts and summary ---------------------------------------------------------------
    def forecast(self, *, horizon: float | None = None, journeys: int | None = None,
                 seed: int | np.random.Generator = 0) -> Result:
        """Conversions expected from ``journeys`` new completed journeys, with 94% intervals.

        The new journeys are split across levels in the training mix (largest remainder);
        for every posterior draw each level's conversions are drawn Binomial(n_level, rate), so
        the intervals hold both the uncertainty of the rates and the binomial noise.

        Raises
        ------
        OptionError
            ``journeys`` missing or below 1, or a ``horizon`` given (this model forecasts a
            number of journeys, not a time span).
        """
        from journeymodel.models.conversion import results

        self._check_fitted()
        if horizon is not None:
            raise OptionError("a conversion model forecasts a number of new journeys, not a "
                              "time horizon: give --journeys N instead of --horizon")
        if journeys is None or isinstance(journeys, bool) or int(journeys) != journeys or (
                journeys < 1):
            raise OptionError(f"give the number of new journeys as a whole number >= 1 "
                              f"(--journeys N; got {journeys!r})")
        return results.forecast(self, journeys, seed)

    def summary(self) -> Result:
        """Rates per level (median, HDI), pooled rate, P(A > B), what was counted, diagnostics."""
        from journeymodel.models.conversion import results

        return results.summary(self)

    def outcome_mix(self) -> tuple[str, dict[str, float]]:
        """``("journeys", {"conversion", "no conversion", "censored"})``: the journeys counted
        (completed ones, and those left out because their outcome is not known yet)."""
        n, k = self.counts_.trials.sum(), self.counts_.conversions.sum()
        return "journeys", {"conversion": float(k), "no conversion": float(n - k),
                            "censored": float(self.counts_.censored)}

    def counts_line(self) -> str:
        """What the model counts, in one line (it differs from ``describe``, which counts every
        journey): conversions among journeys whose outcome is known, and what was left out."""
        from journeymodel.models.conversion import results

        return results.counts_line(self)

    # -- persistence -------------------------------------------------------------------------
    def _to_tree(self) -> Any:
        import xarray as xr

        from journeymodel.fit.bayes import storable_groups
        from journeymodel.io.persist import to_attr

        coords = {name: np.array(levels, dtype=object)
                  for name, levels in zip(self.by, self.counts_.levels, strict=True)}
        root = xr.Dataset({"trials": (self.by, self.counts_.trials),
                           "conversions": (self.by, self.counts_.conversions)}, coords=coords)
        root.attrs = {"censored_journeys": int(self.counts_.censored),
                      "recent_journeys": int(self.counts_.recent),
                      "diagnostics": to_attr(self.diagnostics_.to_dict()),
                      "parameterization": to_attr(self.parameterization_),
                      "timing": to_attr(self.timing_)}
        return xr.DataTree.from_dict({"/": root, **storable_groups(self.posterior_)})

    def _from_tree(self, tree: Any) -> None:
        from journeymodel.errors import ModelFileError
        from journeymodel.fit.bayes import Diagnostics, restore_posterior

        root = tree.to_dataset()
        try:
            self.counts_ = ConversionCounts(
                tuple(self.by), tuple(tuple(str(v) for v in root[name].values)
                                      for name in self.by),
                root["trials"].values.astype(np.int64),
                root["conversions"].values.astype(np.int64),
                int(root.attrs["censored_journeys"]),
                int(root.attrs.get("recent_journeys", 0)))
            self.posterior_ = restore_posterior(tree)
        except KeyError as exc:
            raise ModelFileError(f"damaged conversion model file: {exc}") from exc
        self.diagnostics_ = Diagnostics.from_dict(json.loads(root.attrs["diagnostics"]))
        self.parameterization_ = json.loads(root.attrs["parameterization"])
        if self.pooling not in POOLING:
            raise ModelFileError(f"damaged conversion model file: pooling {self.pooling!r}; "
                                 f"expected one of {', '.join(POOLING)}")
        self.timing_ = json.loads(root.attrs["timing"])


def expit(x: Any) -> Any:
    """The inverse logit ``1 / (1 + exp(-x))`` of an array or DataArray: what
    ``scipy.special.expit`` computes (the same bits on the posteriors here), without importing
    SciPy's special functions (about half a second of ``inspect`` and ``report``; issue 20)."""
    return 1.0 / (1.0 + np.exp(-x))


def _data_array(values: np.ndarray, dims: list[str]) -> Any:
    import xarray as xr

    return xr.DataArray(values, dims=dims)
