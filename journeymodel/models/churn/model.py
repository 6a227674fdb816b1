"""Churn by persona: Bayesian retention models (sBG, Weibull, BG/NBD) with partial pooling.

Three published models, each hierarchical across personas (a persona with little data borrows
strength from the others):

``sbg``
    Shifted-beta-geometric (Fader & Hardie 2007), contractual, discrete renewal periods:
    ``theta ~ Beta(alpha, beta)`` per customer, churn at each renewal with probability ``theta``.
``weibull``
    Continuous time to churn with right-censoring: ``S(t) = exp(-(t / scale) ** shape)``.
``bgnbd``
    BG/NBD (Fader, Hardie & Lee 2005), non-contractual, no churn events needed: transactions
    (conversion events) at rate ``lambda ~ Gamma(r, alpha)`` while alive, drop-out after each
    transaction with probability ``p ~ Beta(a, b)``.

Partial pooling: each persona's parameters are mapped to coordinates that are nearly
uncorrelated in the posterior (sBG: logit of the mean churn probability ``alpha / (alpha +
beta)`` and ``log(alpha + beta)``; Weibull: ``log shape``, ``log scale``; BG/NBD: ``log(r /
alpha)`` (mean transaction rate), ``log r``, logit of ``a / (a + b)``, ``log(a + b)``), and each
coordinate is normal around a population mean: ``u_p ~ Normal(mu, sigma)``, ``mu ~ Normal(m,
s)``, ``log sigma ~ Normal(0, 0.5)``. With one persona there is no population level (``u ~
Normal(m, s)``). The prior centres ``m`` are fixed, except those with the unit of time (Weibull
scale, BG/NBD rate), which centre on the data's time scale. Results are reported in the
published parameters. How the population level is sampled (``mu`` integrated out, or
non-centred where the data identify a coordinate weakly) is explained in
:func:`journeymodel.models.churn.graph.build_pymc`.

The model fits from per-customer summaries (:class:`~journeymodel.stats.customers.CustomerStats`,
which add up over parts of a log); which times are used, and the time units, are described in
:mod:`journeymodel.models.churn.data`, which reduces the summaries to each likelihood's data.

References
----------
.. [1] Fader, P. S. & Hardie, B. G. S. (2007). How to project customer retention. Journal of
   Interactive Marketing, 21(1), 76-90.
.. [2] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy
   way: an alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from journeymodel.choices import CHURN_MODELS
from journeymodel.errors import DataWarning, InputError, ModelFileError, OptionError
from journeymodel.models.base import JourneyModel, Result
from journeymodel.models.churn import data as cd
from journeymodel.models.churn import pooling as pooling
from journeymodel.models.churn.graph import (
    COORDS,
    PARAMS,
    POOLING,
    PRIOR_SCALE,
    build_pymc,
    parts_of,
)
from journeymodel.stats.customers import CustomerStats, customer_stats

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.data.journeys import JourneySet

MODELS = CHURN_MODELS
#: NUTS target acceptance by model. sBG takes 0.98: on short histories (the demo's year of
#: months) its data bound the concentration ``alpha + beta`` from below only, a one-sided wall
#: that still gives a few divergences at 0.8 in every parameterisation tried; 0.95 left a
#: divergence in 14 of 100 seeds on the 2,000-customer sample (6 of 80 with PyTensor's
#: density), 0.98 in none (bulk ESS >= 1,297); its likelihood works on per-period counts, so
#: the smaller steps cost next to nothing.
TARGET_ACCEPT = {"sbg": 0.98, "weibull": 0.8, "bgnbd": 0.8}
#: BG/NBD where the data identify some pooled coordinate only weakly (sampled non-centred, see
#: :mod:`~journeymodel.models.churn.pooling`): the 500-customer sample data (about 90 repeat
#: buyers per persona; ``log_r``, ``logit_mean_dropout`` and ``log_concentration`` weak) gave 2
#: divergences at 0.8 and none at 0.95. Large cohorts identify every coordinate and keep 0.8.
WEAK_TARGET_ACCEPT = {"bgnbd": 0.95}
#: Advice of this model, after the general remedies of :func:`journeymodel.fit.bayes.remedies`.
REMEDIES = {
    "sbg": ("merge personas with very few customers, or fit without --persona-col",
            "check that the log has enough churn events per persona"),
    "weibull": ("merge personas with very few customers, or fit without --persona-col",
                "check that the log has enough churn events per persona"),
    "bgnbd": ("merge personas with very few customers, or fit without --persona-col",),
}
#: Spend and frequency correlated beyond this (in absolute value) are reported with a
#: DataWarning: the Gamma-Gamma model assumes spend per transaction independent of frequency
#: (Fader, Hardie & Lee 2005b check it on CDNOW, where it is 0.11).
SPEND_CORRELATION_MAX = 0.3


@dataclass
class Prepared:
    """Likelihood data of one fit and what the model keeps for forecasts (no customer ids).

    Attributes
    ----------
    data : dict of str to ndarray
        Values of the PyMC model's ``pm.Data`` containers (see
        :data:`journeymodel.models.churn.graph.DATA_KEYS`).
    prior_loc : ndarray, shape (n_params,)
        Prior centres of the log-parameters' population means.
    customers, events : ndarray of int64, shape (n_personas,)
        Customers in the fit and churned customers (sbg, weibull) or customers with a repeat
        transaction (bgnbd), per persona.
    cells : dict of str to ndarray
        sbg, weibull: the still-active customers as ``(cell_persona, cell_age, cell_count)``
        (ages in time units rounded to 1/100 unit). bgnbd: per customer ``x``,
        ``t_x``, ``T`` and row index into the customer table (``index``); ``cell_persona``.
    notes : list of str
    """

    data: dict[str, np.ndarray]
    prior_loc: np.ndarray
    customers: np.ndarray
    events: np.ndarray
    cells: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)
    spend: dict[str, Any] | None = None


def prepare(model: str, stats: CustomerStats, cust: cd.Customers, unit: float,
            origin: str, spend: bool = False) -> Prepared:
    """Likelihood data for ``model`` from per-customer summaries (vectorised).

    ``cust`` is :func:`~journeymodel.models.churn.data.customers_of` of ``stats``; ``spend``
    (bgnbd) adds the Gamma-Gamma data of the repeat buyers.
    """
    n_p = len(cust.personas)
    if model == "bgnbd":
        prep = _prepare_bgnbd(stats, cust, unit, n_p)
        return _add_spend(prep, stats, n_p) if spend else prep
    at_risk, duration, churned = cd.lifetimes(cust, stats.observed_until, unit, origin)
    persona = cust.persona[at_risk]
    notes = []
    if not at_risk.all():
        notes.append(f"{int((~at_risk).sum())} customers never reached the origin "
                     f"({origin.replace('_', ' ')}) or churned before it: not at risk")
    if not churned.any():
        raise InputError(
            f"{model} needs churn events and none of the {int(at_risk.sum())} customers at risk "
            "has one (rows labelled by --churn-label, default 'churn'); for non-contractual "
            "data without churn events use --model bgnbd")
    alive = ~churned
    age = np.round(duration[alive], 2)
    (cell_p, cell_age), cell_n, _ = cd.compress(persona[alive], age)
    cells = {"cell_persona": cell_p.astype(np.int64), "cell_age": cell_age,
             "cell_count": cell_n}
    counts = np.bincount(persona, minlength=n_p)
    events = np.bincount(persona[churned], minlength=n_p)
    if model == "sbg":
        lost, alive_n = cd.period_counts(duration, churned, persona, n_p)
        data = {**_cells("lost", lost, 1), **_cells("alive", alive_n, 0)}
        return Prepared(data, np.array([-1.0, 1.0]), counts, events, cells, notes)
    zero = duration <= 0
    if (zero & churned).any():
        notes.append(f"{int((zero & churned).sum())} customers churned at their origin "
                     "(lifetime 0): left out of the Weibull fit")
    use = ~zero
    data = cd.weibull_rows(persona[use], duration[use], churned[use], n_p)
    scale_loc = float(np.log(max(duration[use].mean(), 1e-3))) + 1.0
    return Prepared(data, np.array([0.0, scale_loc]), counts, events, cells, notes)


def _cells(prefix: str, table: np.ndarray, t0: int) -> dict[str, np.ndarray]:
    p, t = np.nonzero(table)
    return {f"{prefix}_p": p.astype(np.int64), f"{prefix}_t": (t + t0).astype(np.float64),
            f"{prefix}_n": table[p, t]}


def _prepare_bgnbd(stats: CustomerStats, cust: cd.Customers, unit: float, n_p: int
                   ) -> Prepared:
    s = cd.rfm(stats, unit)
    persona = cust.persona[s.index]
    notes = []
    if len(s.index) < len(cust):
        notes.append(f"{len(cust) - len(s.index)} customers without any conversion are not in "
                     "the BG/NBD cohort (it starts at a customer's first transaction)")
    if not (s.T > 0).any():
        raise InputError("bgnbd needs customers observed for some time after their first "
                         "transaction; every first transaction is on the last day observed")
    data = cd.bgnbd_rows(persona, s.x, s.t_x, s.T, n_p)
    rate_loc = float(np.log(max(s.x.mean(), 0.1) / max(s.T.mean(), 1e-3)))
    cells = {"index": s.index, "cell_persona": persona, "x": s.x, "t_x": s.t_x, "T": s.T}
    return Prepared(data, np.array([rate_loc, 0.0, -1.0, 1.0]),
                    np.bincount(persona, minlength=n_p),
                    np.bincount(persona[s.x > 0], minlength=n_p), cells, notes)


def _add_spend(prep: Prepared, stats: CustomerStats, n_p: int) -> Prepared:
    """The Gamma-Gamma data (repeat transactions only) and prior centres added to ``prep``."""
    c = prep.cells
    rfm = cd.RFM(c["index"], c["x"], c["t_x"], c["T"])
    sp = cd.spend_of(stats, rfm)
    persona = c["cell_persona"]
    data = {**prep.data, **cd.spend_rows(persona[sp.use], sp.x[sp.use], sp.m[sp.use], n_p)}
    loc = np.r_[prep.prior_loc, np.log(2.0), np.log(3.0), np.log(np.mean(sp.m[sp.use]))]
    notes = [*prep.notes]
    dropped = int(((c["x"] > 0) & ~sp.use).sum())
    if dropped:
        notes.append(f"{dropped} repeat buyers without a positive repeat spend are not in the "
                     "spend model")
    spend = {"customers": int(sp.use.sum()), "correlation": round(sp.correlation, 4)}
    return replace(prep, data=data, prior_loc=loc, notes=notes,
                   cells={**c, "m": np.where(sp.use, sp.m, np.nan)}, spend=spend)


class ChurnModel(JourneyModel):
    """Bayesian churn / retention model by persona: ``sbg``, ``weibull`` or ``bgnbd``.

    Parameters
    ----------
    model : {"sbg", "weibull", "bgnbd"}
        See the module docstring.
    time_unit : {"D", "W", "M", "Y"} or None
        Unit of periods and parameters for calendar timestamps (M = 30.4375 days, Y = 365.25
        days); default M for sbg/weibull, W for bgnbd. Logs of plain period numbers use their
        own periods (leave it None).
    origin : {"auto", "first_event", "first_conversion"}
        Where a customer's lifetime starts (sbg, weibull): ``auto`` is the first conversion (the
        customer starts paying) when the log has conversions, else the first event. BG/NBD
        always starts at the first transaction.
    draws, tune, chains : int
        NUTS draws and tuning steps per chain, and chains.
    seed : int
        Same seed, same posterior.
    keep_customers : bool
        bgnbd only: store each customer's id and (x, t_x, T) in the model so that
        :meth:`forecast` can list P(alive) and expected transactions per customer. Off by
        default: a model file must be shareable without customer records, so without it the
        file holds no ids and forecasts are per persona.
    hdi_prob : float
        Credible mass of reported intervals.
    spend : bool
        bgnbd only: also fit the Gamma-Gamma model of the value per repeat transaction (Fader,
        Hardie & Lee 2005b), pooled by persona like the other parameters (``p``, ``q``, ``v``),
        from the conversions' values (``value_col``; same-day conversions are one transaction
        worth their sum). Needed for customer lifetime value (:meth:`forecast`).
    pooling : {"partial", "none", "complete"}
        How personas share strength: ``partial`` (hierarchical, the default), ``none`` (each
        persona fitted on its own data, the one-persona prior for each), ``complete`` (one
        population: the fit of all customers together, its parameters for every persona).
    target_accept : float or None
        NUTS target acceptance; default :func:`default_target_accept` (0.8; sbg 0.95; bgnbd
        0.95 where the data identify a pooled coordinate only weakly).

    Attributes
    ----------
    posterior_ : xarray.DataTree
        Groups ``posterior`` (per-persona parameters, dims chain, draw, persona) and
        ``sample_stats``.
    personas_ : tuple of str
    customers_, events_ : ndarray of int64, shape (n_personas,)
        Customers in the fit; churned (sbg, weibull) or repeat buyers (bgnbd) among them.
    diagnostics_ : journeymodel.fit.bayes.Diagnostics
    info_ : dict
        Time unit and its length in seconds, origin, sampler, seconds, notes.

    Examples
    --------
    >>> from journeymodel.data.datasets import make_demo_data
    >>> from journeymodel.data.journeys import load_journeys
    >>> js = load_journeys(make_demo_data(800, seed=1).events)
    >>> m = ChurnModel("sbg", draws=300, tune=300).fit(js)  # doctest: +SKIP
    >>> m.summary().json["personas"]["loyalist"]["params"]["alpha"]["mean"]  # doctest: +SKIP

    References
    ----------
    Fader & Hardie (2007); Fader, Hardie & Lee (2005): see the module docstring.
    """

    model_type: ClassVar[str] = "churn"
    schema_version: ClassVar[int] = 1

    def __init__(self, model: str = "sbg", time_unit: str | None = None, origin: str = "auto",
                 draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0,
                 keep_customers: bool = False, hdi_prob: float = 0.94,
                 target_accept: float | None = None, spend: bool = False,
                 pooling: str = "partial") -> None:
        self.model = model
        self.time_unit = time_unit
        self.origin = origin
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.seed = seed
        self.keep_customers = keep_customers
        self.hdi_prob = hdi_prob
        self.target_accept = target_accept
        self.spend = spend
        self.pooling = pooling

    # -- fitting ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.model not in MODELS:
            raise OptionError(f"model must be one of {', '.join(MODELS)} (got {self.model!r})")
        if not 0 < self.hdi_prob < 1:
            raise OptionError(f"hdi_prob must be in (0, 1) (got {self.hdi_prob!r})")
        if self.pooling not in POOLING:
            raise OptionError(f"pooling must be one of {', '.join(POOLING)} "
                              f"(got {self.pooling!r})")
        if self.spend and self.model != "bgnbd":
            raise OptionError(f"the spend model (--value-col) applies to --model bgnbd, not "
                              f"{self.model} (it models the value of repeat transactions)")

    def stats_of(self, journeys: JourneySet) -> CustomerStats:
        """Per-customer summaries of ``journeys``: all :meth:`fit_stats` needs (the same for
        every model and time unit; they add up over parts of a log)."""
        return customer_stats(journeys)

    def fit(self, journeys: JourneySet, *, progress: bool = False) -> Self:
        """Sample the posterior from ``journeys`` (an event log's JourneySet):
        ``fit_stats(stats_of(journeys))``, remembering the journeys' ledger.

        Raises
        ------
        OptionError
            Bad model name, time unit or origin.
        InputError
            No customers or times; sbg/weibull without churn events; bgnbd without conversions.
        """
        self.fit_stats(self.stats_of(journeys), progress=progress)
        self._remember(journeys)
        return self

    def fit_stats(self, stats: CustomerStats, *, progress: bool = False) -> Self:
        """Sample the posterior from per-customer summaries (e.g. summed over parts of a log).

        Raises
        ------
        OptionError
            Bad model name, time unit or origin.
        InputError
            No customers or times; sbg/weibull without churn events; bgnbd without conversions.

        Warns
        -----
        ConvergenceWarning
            R-hat > 1.01, bulk ESS < 400 or divergences; the message lists remedies.
        """
        from journeymodel.fit import bayes
        from journeymodel.io.lazydask import import_xarray

        import_xarray()  # before the posterior becomes xarray: dask stays unimported

        self._check_params()
        unit_name, unit = cd.unit_length(stats.time_kind, self.time_unit, self.model)
        cust = cd.customers_of(stats)
        origin = "first_transaction" if self.model == "bgnbd" else cd.resolve_origin(
            self.origin, cust)
        prep = prepare(self.model, stats, cust, unit, origin, self.spend)
        # complete pooling: one population, the fit of all customers as one persona
        one = self.pooling == "complete" and len(cust.personas) > 1
        fit_prep = prepare(self.model, stats, replace(
            cust, persona=np.zeros(len(cust), np.int64), personas=(cd.ALL_PERSONAS,)),
            unit, origin, self.spend) if one else prep
        sampling, weak, accept = self._sample(fit_prep, 1 if one else len(cust.personas),
                                              progress)
        keep = {g: sampling.tree[g].to_dataset() for g in bayes.POSTERIOR_GROUPS}
        post = keep["posterior"]
        if one:  # every persona gets the population's draws
            post = post.isel(persona=np.zeros(len(cust.personas), np.int64))
        keep["posterior"] = post.assign_coords(persona=list(cust.personas))
        self.posterior_ = _tree(keep)
        self.personas_ = tuple(cust.personas)
        self.customers_ = prep.customers.astype(np.int64)
        self.events_ = prep.events.astype(np.int64)
        self.cells_ = prep.cells
        self.customer_ids_ = (np.asarray(cust.ids)[prep.cells["index"]].astype(str)
                              if self.model == "bgnbd" and self.keep_customers else None)
        self.info_ = {"time_unit": unit_name, "unit_seconds": unit if stats.time_kind ==
                      "datetime" else None, "origin": origin, "sampler": sampling.sampler,
                      "non_centered": sorted(weak), "target_accept": accept,
                      "compile_seconds": round(sampling.compile_seconds, 2),
                      "sample_seconds": round(sampling.sample_seconds, 2),
                      "notes": prep.notes, "pooling": self.pooling}
        if prep.spend is not None:
            self.info_["spend"] = prep.spend
            _warn_spend_correlation(prep.spend["correlation"])
        self.diagnostics_ = bayes.diagnose(self.posterior_)
        self._remember_stats(stats)
        advice = bayes.remedies(self.diagnostics_, draws=self.draws, tune=self.tune,
                                chains=self.chains,
                                target_accept=accept, extra=REMEDIES[self.model])
        bayes.check_convergence(self.diagnostics_, what=f"{self.model} churn model",
                                remedies=advice, stacklevel=3)
        return self

    def _sample(self, prep: Prepared, n_p: int, progress: bool):
        """NUTS on ``prep``'s data with ``n_p`` personas: the sampling, the coordinates sampled
        non-centred, and the target acceptance used."""
        from journeymodel.fit import bayes

        parts = parts_of(self.model, self.spend)
        weak: frozenset[str] = frozenset()
        if n_p > 1 and self.pooling == "partial":
            start = 0
            for part in parts:  # independent factors of the posterior: one Laplace fit each
                k = len(COORDS[part])
                weak |= pooling.non_centered(COORDS[part], pooling.laplace_sd(
                    part, prep.data, prep.prior_loc[start:start + k],
                    np.array(PRIOR_SCALE[part]), n_p))
                start += k
        accept = self.target_accept or default_target_accept(self.model, weak)
        extra = (("spend",) if self.spend else ()) + (
            (self.pooling,) if self.pooling == "none" and n_p > 1 else ())
        sampling = bayes.sample(
            lambda: build_pymc(self.model, n_p, prep.data, prep.prior_loc, weak,
                               spend=self.spend, pooling=self.pooling),
            key=("journeymodel.churn", self.model, n_p, tuple(sorted(weak)), *extra),
            data={**prep.data, "prior_loc": prep.prior_loc}, draws=self.draws,
            tune=self.tune, chains=self.chains, seed=self.seed, progress=progress,
            target_accept=accept, description=f"Sampling {self.model}")
        return sampling, weak, accept

    def _remember_stats(self, stats: CustomerStats) -> None:
        """What a fit from summaries knows of its journeys (``fit`` then records the ledger)."""
        from journeymodel.data.ledger import Ledger
        from journeymodel.models.base import JourneyMeta

        total = int(stats.journeys.sum())
        self.ledger_ = Ledger(source="<customer statistics>", rows_read=total, rows_used=total)
        self.journeys_ = JourneyMeta(touchpoints=(), personas=tuple(stats.personas),
                                     devices=(), time_kind=stats.time_kind, gap=None,
                                     observed_until=stats.observed_until, n_journeys=total,
                                     n_events=0)

    # -- persistence -----------------------------------------------------------------------
    def _to_tree(self) -> xr.DataTree:
        import xarray as xr

        from journeymodel.fit import bayes
        from journeymodel.io.persist import to_attr

        root = xr.Dataset(
            {"customers": ("persona", self.customers_), "events": ("persona", self.events_)},
            coords={"persona": np.array(self.personas_, dtype=object)},
            attrs={"info": to_attr(self.info_),
                   "diagnostics": to_attr(self.diagnostics_.to_dict())})
        nodes = {"/": root, **{f"/{k}": v
                               for k, v in bayes.storable_groups(self.posterior_).items()}}
        cells = {k: ("cell", v) for k, v in self.cells_.items()
                 if not (self.model == "bgnbd" and k == "index")}
        if self.model == "bgnbd" and self.customer_ids_ is not None:
            cells["customer_id"] = ("cell", self.customer_ids_.astype(object))
        nodes["/at_risk"] = xr.Dataset(cells)
        return xr.DataTree.from_dict(nodes)

    def _from_tree(self, tree: xr.DataTree) -> None:
        from journeymodel.fit import bayes

        for node in ("posterior", "sample_stats", "at_risk"):
            if node not in tree.children:
                raise ModelFileError(f"damaged churn model file: the {node!r} group is missing")
        root = tree.to_dataset()
        self.posterior_ = bayes.restore_posterior(tree)
        self.personas_ = tuple(str(p) for p in root["persona"].values)
        self.customers_ = root["customers"].values
        self.events_ = root["events"].values
        self.info_ = json.loads(root.attrs["info"])
        self.diagnostics_ = bayes.Diagnostics.from_dict(json.loads(root.attrs["diagnostics"]))
        self._check_loaded_options()
        at_risk = tree["at_risk"].to_dataset()
        self.cells_ = {k: at_risk[k].values for k in at_risk.data_vars if k != "customer_id"}
        self.customer_ids_ = (at_risk["customer_id"].values.astype(str)
                              if "customer_id" in at_risk else None)

    def _check_loaded_options(self) -> None:
        """Pooling and spend of a loaded file agree with its posterior."""
        pool = self.info_.get("pooling", "partial")
        if self.pooling not in POOLING or pool != self.pooling:
            raise ModelFileError(f"damaged churn model file: pooling {self.pooling!r} (fit "
                                 f"record {pool!r}); expected one of {', '.join(POOLING)}")
        missing = [n for n in PARAMS["gg"] if n not in self.posterior_["posterior"]]
        if self.spend and missing:
            raise ModelFileError(f"damaged churn model file: spend model without the "
                                 f"posterior of {', '.join(missing)}")

    # -- results ---------------------------------------------------------------------------
    def params(self, part: str = "model") -> xr.Dataset:
        """Per-persona parameter posteriors: variables ``median``, ``mean``, ``hdi_low``,
        ``hdi_high`` with dims (param, persona).

        ``part="spend"``: the Gamma-Gamma spend parameters ``p``, ``q``, ``v`` (a model fitted
        with ``spend=True``).
        """
        import xarray as xr

        from journeymodel.fit import bayes

        self._check_fitted()
        if part == "spend" and not self.spend:
            raise OptionError("this churn model has no spend model; fit --model bgnbd with "
                              "--value-col (spend=True)")
        post = self.posterior_["posterior"].to_dataset()
        names = list(PARAMS["gg" if part == "spend" else self.model])
        stacked = xr.concat([post[n] for n in names], dim=xr.Variable("param", names))
        return bayes.interval(stacked, self.hdi_prob)

    def outcome_mix(self) -> tuple[str, dict[str, float]]:
        """``("customers", ...)``: churned and still active (sbg, weibull), or repeat buyers and
        customers with no repeat purchase yet (bgnbd)."""
        total, events = float(self.customers_.sum()), float(self.events_.sum())
        if self.model == "bgnbd":
            return "customers", {"repeat purchase": events, "no repeat yet": total - events}
        return "customers", {"churn": events, "still active": total - events}

    def summary(self) -> Result:
        """Key figures, retention and hazard, parameters per persona (median, HDI),
        diagnostics."""
        from journeymodel.models.churn import results

        self._check_fitted()
        return results.summary(self)

    def retention(self, periods: int = 12) -> xr.Dataset:
        """Survival / retention and churn hazard per persona and period, with HDIs.

        For bgnbd the axis is the number of repeat transactions (P(still alive after n)).

        Returns
        -------
        xarray.Dataset
            ``survival_median``, ``survival_mean``, ``survival_low``, ``survival_high`` and the
            same four for ``hazard``, with dims (persona, period).
        """
        from journeymodel.models.churn import results

        self._check_fitted()
        return results.retention(self, periods)

    def forecast(self, *, horizon: float | None = None, journeys: int | None = None,
                 seed: int | np.random.Generator = 0, discount_rate: float = 0.0) -> Result:
        """Forecast ``horizon`` time units past the end of observation.

        sbg, weibull: expected survivors per persona among the customers active at the end of
        observation. bgnbd: P(alive) now and expected transactions in the horizon, per
        customer (when stored) and per persona; with a spend model also customer lifetime value
        (:mod:`journeymodel.models.churn.value`) per customer of each persona and per customer,
        discounted at ``discount_rate`` a year.

        Raises
        ------
        OptionError
            ``horizon`` missing or not positive, ``journeys`` given, ``discount_rate`` given
            for a model without spend, or negative.
        """
        from journeymodel.models.churn import results

        self._check_fitted()
        if journeys is not None:
            raise OptionError("--journeys applies to conversion models; churn forecasts take "
                              "--horizon in time units")
        if horizon is None or not horizon > 0:
            raise OptionError(f"a churn forecast needs --horizon > 0 in the model's time unit "
                              f"({self.info_['time_unit']}) (got {horizon!r})")
        if discount_rate and not self.spend:
            raise OptionError("--discount-rate applies to customer lifetime value, which needs "
                              "a bgnbd model fitted with --value-col (its spend model)")
        return results.forecast(self, float(horizon), seed, float(discount_rate))

    def draws_of(self, name: str, max_draws: int | None = None,
                 seed: int | np.random.Generator = 0) -> np.ndarray:
        """Posterior draws of parameter ``name``, shape (n_draws, n_personas), optionally a
        random subset of ``max_draws`` (seeded)."""
        from journeymodel.fit import bayes

        values = bayes.draws_of(self.posterior_["posterior"].to_dataset()[name])
        if max_draws is not None and len(values) > max_draws:
            pick = np.sort(np.random.default_rng(seed).choice(len(values), max_draws,
                                                              replace=False))
            values = values[pick]
        return values


def default_target_accept(model: str, weak: frozenset[str]) -> float:
    """NUTS target acceptance of ``model`` when the coordinates ``weak`` are sampled
    non-centred: :data:`WEAK_TARGET_ACCEPT` if any, else :data:`TARGET_ACCEPT`."""
    if weak and model in WEAK_TARGET_ACCEPT:
        return WEAK_TARGET_ACCEPT[model]
    return TARGET_ACCEPT[model]


def _tree(groups: dict[str, Any]):
    import xarray as xr

    return xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})


def _warn_spend_correlation(corr: float) -> None:
    """A DataWarning when spend per transaction and frequency are correlated (the Gamma-Gamma
    model assumes they are independent)."""
    if abs(corr) > SPEND_CORRELATION_MAX:
        warnings.warn(
            f"spend per transaction and frequency are correlated (Pearson r = {corr:.2f} "
            f"among repeat buyers, beyond +-{SPEND_CORRELATION_MAX:g}); the Gamma-Gamma spend "
            "model assumes they are independent, so expected spend and CLV are less reliable",
            DataWarning, stacklevel=4)
