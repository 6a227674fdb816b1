"""Markov journey model: an absorbing Markov chain over touchpoint windows of order 1..4.

States are a start state, windows of ``k`` touchpoints and the absorbing outcomes
``conversion``, ``dropoff`` and ``churn`` (see :mod:`journeymodel.models.markov.chain` for the
exact state definition, which follows ChannelAttribution's ``markov_model``). Each row of the
transition matrix has a Dirichlet posterior: observed (weighted) counts plus ``prior`` on every
feasible next state. The default ``prior=0`` makes the point estimate the maximum-likelihood
matrix, as ChannelAttribution's, and keeps transitions that were never observed impossible (with
``k`` > 1 most windows are rare, and pseudo-counts on every feasible move would invent paths);
the posterior over observed transitions is then Dirichlet(counts) and gives the credible
intervals of attribution.

References
----------
.. [1] Anderl, E., Becker, I., von Wangenheim, F., Schumann, J. H. (2016). Mapping the customer
   journey: Lessons learned from graph-based online attribution modeling. International Journal
   of Research in Marketing 33(3), 457-474.
.. [2] Kemeny, J. G., Snell, J. L. (1960). Finite Markov Chains. Van Nostrand (absorbing chains,
   the fundamental matrix).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from journeymodel.choices import ATTRIBUTION_METHODS
from journeymodel.errors import InputError, ModelFileError, NotFittedError, OptionError
from journeymodel.io.h5tree import H5Group, as_dataset
from journeymodel.models.base import JourneyMeta, JourneyModel, Result
from journeymodel.models.markov import attribution as attr
from journeymodel.models.markov.censoring import CENSORED_HANDLING, censored_allocation
from journeymodel.models.markov.chain import Chain, Csr, build_chain, fundamental_solve
from journeymodel.models.markov.predict import predict_in_flight, simulate_journeys
from journeymodel.stats.holding import HoldingTimes, fit_holding
from journeymodel.stats.transitions import (
    HEURISTICS,
    MarkovStats,
    TransitionCounts,
    decode_keys,
    state_base,
    transition_stats,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from journeymodel.data.journeys import JourneySet

METHODS = ATTRIBUTION_METHODS


class MarkovJourneyModel(JourneyModel):
    """Absorbing Markov chain of customer journeys, with exact attribution and uncertainty.

    Parameters
    ----------
    order : int or "auto"
        Window length 1..4; ``"auto"`` picks the order with the best held-out log-likelihood
        among 1..4 (see :func:`journeymodel.models.markov.select.select_order`).
    prior : float
        Dirichlet concentration added to every feasible next state of each row (default 0: the
        maximum-likelihood matrix; see the module docstring).
    collapse_repeats : bool
        Merge consecutive identical states, as ChannelAttribution does (default). ``False``
        models repeated touchpoints as self-transitions.
    seed : int
        Seed of the held-out split used by ``order="auto"``.
    censored : {"survival", "ignore"}
        What an in-flight (censored) journey's last state contributes. ``"survival"``
        (default): it has not left yet after the time already spent there, a survival term of
        the holding times competing between moving on and dropping off, fitted by EM (see
        :mod:`journeymodel.models.markov.censoring`); without it drop-off probabilities come
        out low on a log cut mid-stream. ``"ignore"``: nothing, as ChannelAttribution (and
        journeymodel before issue 17) does; for comparisons with it. Journeys without
        timestamps (path tables) have no elapsed time and are always ``"ignore"``.

    Attributes
    ----------
    order_ : int
    chain_ : Chain
        Transient state keys, absorbing states and posterior concentration (built from
        ``counts_ + censored_counts_``).
    counts_ : TransitionCounts
        Observed transitions.
    censored_counts_ : TransitionCounts
        Expected transitions of the censored journeys' last states (fractional; empty with
        ``censored="ignore"``, without timestamps or without in-flight journeys).
    holding_ : HoldingTimes or None
        Holding times between events per touchpoint and next event
        (:class:`~journeymodel.stats.holding.HoldingTimes`); None without timestamps.
    p_conversion_, expected_steps_, mean_dwell_ : ndarray, shape (n_states,)
        P(conversion), expected transitions until absorption, and mean time spent in each
        transient state (NaN where not observed or without timestamps).
    experience_ : xarray.Dataset
        Emotion curves and switch outcomes
        (:func:`~journeymodel.analysis.experience.journey_experience`).

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> js = journeys_from_codes([["c1", "c2", "c3"], ["c1"], ["c2", "c3"]],
    ...                          ["conversion", "dropoff", "dropoff"])
    >>> m = MarkovJourneyModel().fit(js)
    >>> a = m.attribution("removal", n_draws=0)
    >>> a.removal_effect.round(6).tolist(), a.conversions.round(6).tolist()
    ([0.5, 1.0, 1.0], [0.2, 0.4, 0.4])
    """

    model_type: ClassVar[str] = "markov"
    schema_version: ClassVar[int] = 1

    def __init__(self, order: int | str = 1, prior: float = 0.0, collapse_repeats: bool = True,
                 seed: int = 0, censored: str = "survival") -> None:
        self.order = order
        self.prior = prior
        self.collapse_repeats = collapse_repeats
        self.seed = seed
        self.censored = censored

    # -- fitting ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.order != "auto" and (isinstance(self.order, bool)
                                     or self.order not in (1, 2, 3, 4)):
            raise OptionError(f"order must be 1, 2, 3, 4 or 'auto' (got {self.order!r})")
        if not (isinstance(self.prior, (int, float)) and np.isfinite(self.prior)
                and self.prior >= 0):
            raise OptionError(f"prior must be a number >= 0 (got {self.prior!r})")
        if self.censored not in CENSORED_HANDLING:
            raise OptionError(f"censored must be one of {CENSORED_HANDLING} "
                              f"(got {self.censored!r})")

    def fit(self, journeys: JourneySet) -> Self:
        """Count transitions, form the posterior and solve the chain's analytics.

        ``fit(journeys)`` is ``fit_stats(stats_of(journeys))`` with the training journeys'
        ledger and vocabularies remembered; with ``order="auto"`` the order is chosen on the
        journeys first (held-out log-likelihood, which needs the journeys themselves), then the
        model is fitted from the statistics at that order.

        Raises
        ------
        OptionError
            Bad ``order`` or ``prior``.
        InputError
            No journey has a touchpoint, or no journey has ended.
        """
        from journeymodel.data.memory import reuse_freed_memory

        self._check_params()
        _check_events(journeys.n_events)
        # the statistics make and free arrays of every event: reusing the freed memory saves
        # the kernel's mapping of fresh pages (0.5-2.5 s of system time at 8M events, issue 20)
        with reuse_freed_memory():
            order, table = self._chosen_order(journeys)
            # fit_stats(transition_stats(...)), the holding times made beside the counts
            self._fit_whole(*_stats_and_holding(journeys, order, self.collapse_repeats,
                                                lean=False))
        self.order_table_ = table
        self._remember(journeys)
        return self

    def fit_attribution(self, journeys: JourneySet) -> Self:
        """Fit what :meth:`attribution` reads and no more (``journeymodel attribute EVENTS``,
        which writes no model file; issue 20).

        The chain with the censored journeys' correction, the totals, the heuristics and the
        states' conversion values are made as :meth:`fit` makes them (the same attribution, bit
        for bit); the experience statistics, the states' dwell times and the chain's analytics
        (P(conversion), expected steps, dwell: a solve over every state) are left out. Such a
        model attributes; its summary and model file need :meth:`fit` (they raise
        :class:`~journeymodel.errors.NotFittedError`).

        Raises
        ------
        OptionError, InputError
            As :meth:`fit`.
        """
        from journeymodel.data.memory import reuse_freed_memory

        self._check_params()
        _check_events(journeys.n_events)
        with reuse_freed_memory():
            order, table = self._chosen_order(journeys)
            stats, holding = _stats_and_holding(journeys, order, self.collapse_repeats)
            self._fit_chain(stats, holding)
        self._experience, self._experience_stats = None, None
        self.conversion_value_ = self._conversion_values()
        self.order_table_ = table
        self._remember(journeys)
        self._attribution_only = True
        return self

    def stats_of(self, journeys: JourneySet) -> MarkovStats:
        """The statistics this model is fitted from (:func:`~journeymodel.stats.transitions.
        transition_stats` at this model's order and repeat handling; ``order="auto"`` chooses
        the order on these journeys first). Statistics of parts of a log add up: fit the sum
        with :meth:`fit_stats`."""
        self._check_params()
        _check_events(journeys.n_events)
        return transition_stats(journeys, self._chosen_order(journeys)[0],
                                self.collapse_repeats)

    def _chosen_order(self, journeys: JourneySet) -> tuple[int, pd.DataFrame | None]:
        """(order, order-selection table or None): ``order="auto"`` is decided here."""
        if self.order != "auto":
            return int(self.order), None
        from journeymodel.models.markov.select import select_order

        return select_order(journeys, seed=self.seed, collapse=self.collapse_repeats)

    def fit_stats(self, stats: MarkovStats) -> Self:
        """Fit from statistics alone (e.g. summed over parts of a log): the posterior of the
        chain, its analytics, the heuristics and totals, and the experience.

        The model remembers what the statistics know of the journeys (touchpoints, devices,
        time axis, outcome counts); its ledger counts journeys as rows (source
        ``<statistics>``). With ``order="auto"`` the statistics' order is kept (no selection
        without journeys); an explicit order must match theirs.

        Raises
        ------
        OptionError
            Bad ``order`` or ``prior``, or statistics of another order or repeat handling.
        InputError
            No journey has a touchpoint, or no journey has ended.
        """
        return self._fit_whole(stats)

    def _fit_whole(self, stats: MarkovStats, holding: HoldingTimes | None = None) -> Self:
        """:meth:`fit_stats`, with the holding times already fitted from ``stats.holding``
        when given."""
        self._fit_chain(stats, holding)
        # the labelled experience dataset (xarray, scipy) is built when first asked for
        self._experience, self._experience_stats = None, stats.experience
        self._analyse()
        self._attribution_only = False
        return self

    def _fit_chain(self, stats: MarkovStats, holding: HoldingTimes | None = None) -> None:
        """:meth:`fit_stats` but the experience and the chain's analytics: the posterior chain
        (with the censored correction), heuristics and totals (what attribution reads).
        ``holding``: the holding times already fitted from ``stats.holding`` (else fitted
        here)."""
        self._check_params()
        counts = stats.transitions
        if (self.order not in ("auto", counts.order)
                or bool(self.collapse_repeats) != counts.collapse):
            raise OptionError(
                f"these statistics were counted at order {counts.order} with "
                f"collapse_repeats={counts.collapse}; the model has order={self.order!r}, "
                f"collapse_repeats={self.collapse_repeats}")
        if not np.any(counts.to_key > 0):  # no transient state: no touchpoint anywhere
            _check_events(0)
        if not np.any(counts.to_key < 0):
            raise InputError("no journey has ended (all are in flight); cannot estimate "
                             "conversion or drop-off")
        self._remember_stats(stats)
        self.order_table_ = None
        self.order_ = counts.order
        self.counts_ = counts
        self._fit_censoring(stats, holding)
        self.chain_, self.notes_ = build_chain(self.expected_counts_, float(self.prior))
        finite = np.isfinite([stats.start_min, stats.start_max]).all()
        self.start_range_ = (stats.start_min, stats.start_max) if finite else (0.0, 0.0)
        self.heuristics_ = stats.heuristics
        self.total_conversions_ = stats.conversions
        self.total_value_ = stats.value

    def _fit_censoring(self, stats: MarkovStats, holding: HoldingTimes | None = None) -> None:
        """Holding times (``holding`` when given: fitted from ``stats.holding`` already) and the
        censored journeys' expected transitions: two EM loops whose steps allocate and free
        arrays of the censored cells, reused here instead of mapped fresh (the censored EM at
        order 3 and 1M journeys: 12 ms a step with fresh pages, 5 ms reused, 288 steps; the
        same bits)."""
        from journeymodel.data.memory import reuse_freed_memory

        with reuse_freed_memory():
            if holding is None and stats.holding is not None:
                holding = fit_holding(stats.holding)
            self.holding_ = holding
            self.censored_counts_ = self._censored_counts(stats)

    def _censored_counts(self, stats: MarkovStats) -> TransitionCounts:
        """Expected transitions of the censored last states (see ``censored``)."""
        c = stats.censored
        if (self.censored == "survival" and self.holding_ is not None and c is not None
                and len(c.key)):
            return censored_allocation(self.counts_, c, self.holding_)
        z = np.zeros(0)
        return TransitionCounts(self.counts_.order, self.counts_.collapse,
                                self.counts_.touchpoints, z.astype(np.int64),
                                z.astype(np.int64), z, z, z.astype(np.int64), z, z)

    @property
    def expected_counts_(self) -> TransitionCounts:
        """Observed transitions plus the censored journeys' expected ones: what the posterior
        (``chain_``), attribution and pain points are built from."""
        extra = getattr(self, "censored_counts_", None)
        if extra is None or len(extra.count) == 0:
            return self.counts_
        return self.counts_ + extra

    def _remember_stats(self, stats: MarkovStats) -> None:
        """What a model fitted from statistics knows of its journeys (see :meth:`fit_stats`)."""
        from journeymodel.data.journeys import OUTCOMES
        from journeymodel.data.ledger import Ledger

        def number(x: float) -> float | int:
            return int(x) if float(x).is_integer() else float(x)

        exp = stats.experience  # None from fit_attribution (then fit's _remember follows)

        self.ledger_ = Ledger(source="<statistics>", rows_read=stats.n_journeys,
                              rows_used=stats.n_journeys)
        self.journeys_ = JourneyMeta(
            touchpoints=stats.touchpoints, personas=(), devices=exp.devices if exp else (),
            time_kind=stats.time_kind,
            gap=None if stats.holding is None else stats.holding.gap,
            observed_until=stats.observed_until,
            n_journeys=stats.n_journeys, n_events=exp.n_events if exp else 0,
            outcome_counts={name: number(c) for name, c in zip(OUTCOMES, stats.outcomes,
                                                               strict=True)})

    def _analyse(self) -> None:
        """P(conversion), expected steps, dwell and conversion value of every state."""
        chain, counts = self.chain_, self.counts_
        n = chain.n
        P = Csr(chain.p_data, chain.csr.indices, chain.csr.indptr, chain.csr.shape)
        absorb = P.columns(n, P.shape[1])
        sol = fundamental_solve(P, n, np.column_stack([absorb, np.ones(n)]))
        self.absorption_ = sol[:, :-1]
        self.p_conversion_ = sol[:, chain.absorbing.index("conversion")]
        self.expected_steps_ = sol[:, -1]
        idx = np.searchsorted(chain.keys, counts.dwell_key)
        dwell = np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            dwell[idx] = counts.dwell_sum / counts.dwell_n
        self.mean_dwell_ = dwell
        self.conversion_value_ = self._conversion_values()

    def _conversion_values(self) -> np.ndarray:
        """Mean conversion value of the conversions from each transient state (0: none)."""
        chain, counts = self.chain_, self.counts_
        into = counts.to_key == -1
        ci = np.searchsorted(chain.keys, counts.from_key[into])
        n_conv = np.bincount(ci, weights=counts.count[into], minlength=chain.n)
        v_conv = np.bincount(ci, weights=counts.value[into], minlength=chain.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_conv > 0, v_conv / n_conv, 0.0)

    def _check_whole(self) -> None:
        """Fitted, and not by :meth:`fit_attribution` alone (summary, model file, experience)."""
        self._check_fitted()
        if self._attribution_only:
            raise NotFittedError(
                f"this {type(self).__name__} was fitted for attribution only "
                "(fit_attribution); call fit(journeys) for its summary, experience or file")

    _experience = None
    _experience_stats = None
    _attribution_only = False

    @property
    def experience_(self) -> xr.Dataset | None:
        """Emotion curves and switch outcomes (None for a file saved before they existed)."""
        if self._attribution_only:
            self._check_whole()
        exp = self._experience_data()
        if exp is not None:  # numpy groups become xarray when first used here
            self._experience = as_dataset(exp)
        return self._experience

    def _experience_data(self) -> xr.Dataset | H5Group | None:
        """The experience group as it is: numpy groups (a loaded file's, or built from the
        statistic without xarray) or an xarray Dataset."""
        if self._experience is None and self._experience_stats is not None:
            from journeymodel.analysis.experience import experience_arrays

            self._experience = H5Group.from_arrays(*experience_arrays(self._experience_stats))
            self._experience_stats = None
        return self._experience

    @experience_.setter
    def experience_(self, value: xr.Dataset | None) -> None:
        self._experience, self._experience_stats = value, None

    # -- labels ----------------------------------------------------------------------------
    @property
    def base_(self) -> int:
        return state_base(len(self.journeys_.touchpoints), self.order_)

    @property
    def state_codes_(self) -> np.ndarray:
        """Touchpoint codes of each transient state, shape (n_states, order), -1 padded."""
        return decode_keys(self.chain_.keys, self.base_, self.order_)

    def state_labels(self) -> list[str]:
        """``a > b > c`` per transient state (its window's touchpoints), ``(start)`` first."""
        names = np.asarray(self.journeys_.touchpoints, dtype=object)
        codes = self.state_codes_
        labels = np.full(len(codes), "", dtype=object)
        started = np.zeros(len(codes), bool)
        for column in codes.T:  # a loop over the window's positions (at most 4)
            has = column >= 0
            piece = np.where(started & has, " > ", "") + names[np.maximum(column, 0)]
            labels = np.where(has, labels + piece, labels)
            started |= has
        labels[~started] = "(start)"
        return labels.tolist()

    def to_state_labels(self) -> list[str]:
        return self.state_labels() + [f"({a})" for a in self.chain_.absorbing]

    def transition_matrix(self) -> xr.DataArray:
        """Posterior-mean transition probabilities as a dense labelled (from_state, to_state)
        array (for inspection; the model keeps the matrix sparse)."""
        import xarray as xr

        self._check_fitted()
        return xr.DataArray(self.chain_.P.toarray(), dims=("from_state", "to_state"),
                            coords={"from_state": self.state_labels(),
                                    "to_state": self.to_state_labels()},
                            name="transition_probability")

    # -- attribution -----------------------------------------------------------------------
    def attribution(self, method: str = "removal", *, n_draws: int = attr.DEFAULT_DRAWS,
                    ci: float = 0.94, seed: int | np.random.Generator = 0,
                    n_permutations: int = 2000, intervals: str = "auto") -> attr.Attribution:
        """Per-channel attribution (see :mod:`journeymodel.models.markov.attribution`).

        Parameters
        ----------
        method : {"removal", "first", "last", "linear", "shapley"}
        n_draws : int
            Posterior draws for the removal-effect credible intervals (0: no intervals, with
            either ``intervals`` method).
        ci : float
            Credible interval mass, in (0, 1).
        intervals : {"auto", "draws", "linear"}
            How the removal-effect intervals are made: posterior draws, or linearisation
            (no Monte-Carlo error); ``auto`` chooses by the chain's size
            (:func:`~journeymodel.models.markov.attribution.interval_method`).

        Raises
        ------
        OptionError
            Unknown method or ``intervals``, ``ci`` outside (0, 1), negative ``n_draws``.
        """
        self._check_fitted()
        if method not in METHODS:
            raise OptionError(f"attribution method must be one of {METHODS} (got {method!r})")
        if not 0 < ci < 1:
            raise OptionError(f"ci must be between 0 and 1 (got {ci})")
        if n_draws < 0:
            raise OptionError(f"draws must be >= 0 (got {n_draws})")
        if intervals not in attr.INTERVAL_METHODS:
            raise OptionError(f"intervals must be one of {', '.join(attr.INTERVAL_METHODS)} "
                              f"(got {intervals!r})")
        channels = self.journeys_.touchpoints
        common = dict(total_conversions=self.total_conversions_, total_value=self.total_value_)
        if method == "removal":
            return attr.removal_attribution(self.chain_, self.state_codes_,
                                            self.conversion_value_, channels, n_draws=n_draws,
                                            ci=ci, seed=seed, intervals=intervals, **common)
        if method == "shapley":
            return attr.shapley_attribution(self.chain_, self.state_codes_, channels,
                                            n_permutations=n_permutations, seed=seed, **common)
        return attr.heuristic_attribution(method, self.heuristics_, channels, **common)

    def attribute(self, method: str = "removal", *, n_draws: int = attr.DEFAULT_DRAWS,
                  ci: float = 0.94, seed: int | np.random.Generator = 0,
                  intervals: str = "auto") -> Result:
        """:meth:`attribution` as a :class:`Result` (JSON, a table and notes). The table is an
        :class:`~journeymodel.io.table.Table` (a DataFrame when asked for more than printing):
        the printed attribution needs no pandas (0.3-0.45 s to import; issue 20)."""
        from journeymodel.io.table import Table

        a = self.attribution(method, n_draws=n_draws, ci=ci, seed=seed, intervals=intervals)
        pct = int(round(ci * 100))
        columns = {"channel": list(a.channels), "removal_effect": a.removal_effect,
                   "conversions": a.conversions,
                   f"low_{pct}": a.conversions_low,
                   f"high_{pct}": a.conversions_high,
                   "share": a.conversions / max(a.total_conversions, 1e-300),
                   "value": a.value}
        if method != "removal":
            del columns["removal_effect"]
        if not np.isfinite(a.conversions_low).any():
            del columns[f"low_{pct}"], columns[f"high_{pct}"]
        # most conversions first, ties in channel order, NaN last (pandas' stable descending
        # sort_values)
        conv = np.asarray(a.conversions, dtype=float)
        frame = Table(columns).take(np.argsort(-conv, kind="stable"))
        title = (f"Attribution ({method}, order {self.order_}): "
                 f"{a.total_conversions:,.0f} conversions")
        notes = [a.note] if a.note else []
        if a.intervals == "draws":
            notes.append(f"{pct}% credible intervals from {n_draws:,} posterior draws of the "
                         "transition rows")
        elif a.intervals == "linear":
            notes.append(f"{pct}% credible intervals by a normal approximation: the removal "
                         "effects linearised under the posterior of the transition rows "
                         "(exact gradients, no Monte-Carlo error)")
        kinds = {"removal_effect": "probability", "conversions": "count",
                 f"low_{pct}": "count", f"high_{pct}": "count", "share": "probability",
                 "value": "money"}
        return Result(json=a.to_json(), tables=[(title, frame)], frame=frame, notes=notes,
                      kinds=kinds)

    # -- summary ---------------------------------------------------------------------------
    def state_count_text(self) -> str:
        """``9 touchpoint states + (start)``: what the chain's transient states are (the report
        and ``inspect`` say the same)."""
        n = self.chain_.n - 1
        what = ("touchpoint states" if self.order_ == 1
                else f"window states (up to {self.order_} touchpoints)")
        return f"{n:,} {what} + (start)"

    def outcome_mix(self) -> tuple[str, dict[str, float]] | None:
        """``("ended journeys", {outcome: weighted journeys})``: the journeys the chain absorbed
        (None for a model file saved before outcome counts were stored)."""
        ended = self.journeys_.outcome_counts
        if not ended:
            return None
        return "ended journeys", {n: float(ended.get(n, 0))
                                  for n in ("conversion", "dropoff", "churn")}

    def counts_text(self) -> str:
        """One line: what the model counts, and why it can differ from ``describe``."""
        oc = self.journeys_.outcome_counts or {}
        journeys = sum(oc.values()) if oc else self.journeys_.n_journeys
        line = (f"counts: {self.state_count_text()}; {self.total_conversions_:,.0f} "
                f"conversions of {journeys:,.0f} journeys (as `describe` counts them)")
        if oc.get("censored"):
            extra = getattr(self, "censored_counts_", None)
            if extra is not None and len(extra.count):
                line += (f"; the {oc['censored']:,.0f} in-flight journeys add their steps, and "
                         "their last state its chance of moving on or dropping off given the "
                         "time already spent there")
            else:
                line += (f"; the {oc['censored']:,.0f} in-flight journeys add their steps but "
                         "no outcome (not a drop-off)")
        return line

    def summary(self) -> Result:
        """Chain size, outcome totals, and the most visited states (tables without pandas:
        :class:`~journeymodel.io.table.Table`)."""
        from journeymodel.io.formatting import money, number, probability
        from journeymodel.io.table import Table

        self._check_whole()
        labels = self.state_labels()
        visits = np.bincount(np.searchsorted(self.chain_.keys, self.counts_.from_key),
                             weights=self.counts_.count, minlength=self.chain_.n)
        states = Table({"state": labels, "visits": visits,
                        "p_conversion": self.p_conversion_,
                        "expected_steps": self.expected_steps_,
                        "mean_dwell": self.mean_dwell_})
        top = states.take(np.argsort(-visits, kind="stable")[:20])  # most visited, ties in order
        info = {"order": self.order_, "n_states": self.chain_.n,
                "n_touchpoint_states": self.chain_.n - 1,
                "n_transitions": int(self.chain_.csr.nnz),
                "absorbing": list(self.chain_.absorbing),
                "total_conversions": self.total_conversions_,
                "total_value": self.total_value_,
                "p_conversion_from_start": float(self.p_conversion_[0]),
                "expected_steps_from_start": float(self.expected_steps_[0])}
        shown = {"order": str(self.order_), "states": self.state_count_text(),
                 "outcomes": ", ".join(self.chain_.absorbing),
                 "transitions": f"{info['n_transitions']:,} possible",
                 "conversions": f"{self.total_conversions_:,.0f}",
                 "conversion value": money(self.total_value_),
                 "P(conversion) from the start": probability(info["p_conversion_from_start"]),
                 "expected steps from the start": number(info["expected_steps_from_start"])}
        overview = Table({"quantity": list(shown), "value": list(shown.values())})
        tables = [("Markov journey model", overview), ("Most visited states", top)]
        js: dict[str, Any] = {**info, "states": states.to_records()}
        if self.order_table_ is not None:
            tables.append(("Order selection", self.order_table_))
            js["order_selection"] = self.order_table_.to_dict(orient="records")
        from journeymodel.analysis.experience import emotion_summary

        js["emotion"], emotion_tables = emotion_summary(self._experience_data())
        tables += emotion_tables
        time_kind = self.journeys_.time_kind
        kinds = {"visits": "count", "p_conversion": "probability",
                 "mean_dwell": "periods" if time_kind == "period" else "duration",
                 "scored": "count"}
        return Result(json=js, tables=tables, notes=[self.counts_text(), *self.notes_],
                      kinds=kinds)

    # -- prediction and simulation (models.markov.predict) ---------------------------------
    def predict(self, journeys: JourneySet) -> Result:
        """P(conversion), expected remaining steps and next touchpoint for in-flight journeys;
        see :func:`journeymodel.models.markov.predict.predict_in_flight`."""
        self._check_fitted()
        return predict_in_flight(self, journeys)

    def simulate(self, n: int, *, seed: int | np.random.Generator = 0) -> pd.DataFrame:
        """``n`` journeys drawn from the chain as a canonical event log; see
        :func:`journeymodel.models.markov.predict.simulate_journeys`."""
        self._check_fitted()
        return simulate_journeys(self, n, seed=seed)

    # -- persistence -----------------------------------------------------------------------
    def _to_tree(self) -> xr.DataTree:
        import xarray as xr

        data, coords, attrs = self._root_arrays()
        children = {"experience": xr.DataTree(self.experience_)}
        if self.holding_ is not None:
            children["holding"] = xr.DataTree(self.holding_.to_dataset())
        if self.order_table_ is not None:
            children["order_selection"] = xr.DataTree(xr.Dataset.from_dataframe(
                self.order_table_.set_index("order")))
        return xr.DataTree(xr.Dataset(data, coords=coords, attrs=attrs), children=children)

    def _to_groups(self) -> H5Group | None:
        """:meth:`_to_tree` as numpy groups, without xarray (None with an experience dataset
        already in xarray: then :meth:`_to_tree`)."""
        experience = self._experience_data()
        if not isinstance(experience, H5Group | None):
            return None
        children = {"experience": experience or H5Group.from_arrays({})}
        if self.holding_ is not None:
            children["holding"] = _holding_group(self.holding_)
        if self.order_table_ is not None:
            children["order_selection"] = _order_group(self.order_table_)
        data, coords, attrs = self._root_arrays()
        return H5Group.from_arrays(data, coords, attrs, children)

    def _root_arrays(self) -> tuple[dict, dict, dict]:
        """The root group as ``(data, coords, attrs)``, what ``xarray.Dataset`` takes."""
        self._check_whole()
        from journeymodel.io.persist import to_attr

        chain, c = self.chain_, self.counts_
        conc = chain.csr
        rows = conc.rows()
        fi = np.searchsorted(chain.keys, c.from_key)
        ti = _to_index(c.to_key, chain.keys)
        count = Csr.from_entries(fi, ti, c.count, conc.shape)
        count_rows = count.rows()
        labels = self.state_labels()
        # numpy text of every state's label, gathered (not 28,000 Python strings converted),
        # at the width of the longest label gathered, as astype(str) of the strings gives it
        to_labels = np.asarray(labels + [f"({a})" for a in chain.absorbing], dtype=str)
        methods = list(HEURISTICS)
        extra = self.censored_counts_
        data = {"state_key": ("state", chain.keys),
                "p_conversion": ("state", self.p_conversion_),
                "expected_steps": ("state", self.expected_steps_),
                "mean_dwell": ("state", self.mean_dwell_),
                "conversion_value": ("state", self.conversion_value_),
                "absorption": (("state", "outcome"), self.absorption_),
                "from_index": ("transition", rows),
                "to_index": ("transition", conc.indices.astype(np.int64)),
                "from_state": ("transition", _narrowest(to_labels[rows])),
                "to_state": ("transition", _narrowest(to_labels[conc.indices])),
                "concentration": ("transition", conc.data),
                "probability": ("transition", chain.p_data),
                "count_from": ("observed", count_rows),
                "count_to": ("observed", count.indices.astype(np.int64)),
                "count": ("observed", count.data),
                "count_value": ("observed", _pair_values(c, chain.keys, count_rows,
                                                         count.indices, count.shape[1])),
                "dwell_key": ("dwelling", c.dwell_key),
                "dwell_sum": ("dwelling", c.dwell_sum),
                "dwell_n": ("dwelling", c.dwell_n),
                "heuristic_conversions": (("heuristic", "touchpoint"),
                                          np.stack([self.heuristics_[m][0] for m in methods])),
                "heuristic_value": (("heuristic", "touchpoint"),
                                    np.stack([self.heuristics_[m][1] for m in methods])),
                "censored_from": ("censored_pair", np.searchsorted(chain.keys, extra.from_key)),
                "censored_to": ("censored_pair", _to_index(extra.to_key, chain.keys)),
                "censored_count": ("censored_pair", extra.count)}
        coords = {"state": np.asarray(labels, dtype=object).astype(str),
                  "outcome": list(chain.absorbing), "heuristic": methods,
                  "touchpoint": list(self.journeys_.touchpoints)}
        attrs = {"order_": self.order_, "total_conversions": self.total_conversions_,
                 "total_value": self.total_value_, "start_range": list(self.start_range_),
                 "notes": to_attr(self.notes_)}
        return data, coords, attrs

    def _from_tree(self, tree: xr.DataTree | H5Group) -> None:
        ds = tree.to_dataset()
        try:
            keys = ds["state_key"].values.astype(np.int64)
            absorbing = tuple(str(x) for x in ds["outcome"].values)
            n = len(keys)
            shape = (n, n + len(absorbing))
            conc = Csr.from_entries(ds["from_index"].values, ds["to_index"].values,
                                    ds["concentration"].values, shape)
            self.order_ = int(ds.attrs["order_"])
            self.chain_ = Chain(keys, absorbing, conc)
            cf, ct = ds["count_from"].values, ds["count_to"].values
            to_key = np.where(ct < n, keys[np.minimum(ct, n - 1)], n - 1 - ct)
            srt = np.lexsort((to_key, keys[cf]))
            self.counts_ = TransitionCounts(
                self.order_, bool(self.collapse_repeats), tuple(self.journeys_.touchpoints),
                keys[cf][srt], to_key[srt], ds["count"].values[srt],
                ds["count_value"].values[srt], ds["dwell_key"].values.astype(np.int64),
                ds["dwell_sum"].values, ds["dwell_n"].values)
            for name in ("p_conversion", "expected_steps", "mean_dwell", "conversion_value"):
                setattr(self, f"{name}_", ds[name].values)
            self.absorption_ = ds["absorption"].values
            hc, hv = ds["heuristic_conversions"].values, ds["heuristic_value"].values
            self.heuristics_ = {m: (hc[i], hv[i]) for i, m in enumerate(
                str(x) for x in ds["heuristic"].values)}
            self.total_conversions_ = float(ds.attrs["total_conversions"])
            self.total_value_ = float(ds.attrs["total_value"])
            self.start_range_ = tuple(float(x) for x in np.atleast_1d(ds.attrs["start_range"]))
            self.notes_ = list(json.loads(ds.attrs["notes"]))
        except KeyError as exc:
            raise ModelFileError(f"damaged markov model file: missing {exc}") from exc
        self.censored_counts_ = _censored_from(ds, self.counts_, keys)
        self.holding_ = (HoldingTimes.from_dataset(tree["holding"].to_dataset(inherit=False))
                         if "holding" in tree.children else None)
        self.experience_ = (tree["experience"].to_dataset(inherit=False)
                            if "experience" in tree.children else None)
        self.order_table_ = None
        if "order_selection" in tree.children:
            self.order_table_ = (as_dataset(tree["order_selection"].to_dataset(inherit=False))
                                 .to_dataframe().reset_index())


def _stats_and_holding(journeys: JourneySet, order: int, collapse: bool, *, lean: bool = True
                       ) -> tuple[MarkovStats, HoldingTimes | None]:
    """The statistics a model is fitted from (``lean``: what
    :meth:`MarkovJourneyModel.fit_attribution` reads, without experience and dwell times; else
    :func:`transition_stats` whole) and the holding times fitted from theirs. The holding
    times (their statistic and EM: 40% of fit_attribution's work at order 1) are made on a
    worker thread while this one counts the transitions (large numpy operations, which release
    the GIL): on two cores at 100k customers 0.03 s less wall time. Each part is the same
    computation whatever the thread, so the same bits; one core: one after the other."""
    import threading
    from concurrent.futures import wait
    from dataclasses import replace

    from journeymodel.models.markov.chain import POOL_THREAD_PREFIX, pool_threads, thread_pool
    from journeymodel.stats.holding import holding_stats

    def holding_part():
        part = holding_stats(journeys)
        return part, fit_holding(part)

    def counts_part():
        return transition_stats(journeys, order, collapse, experience=not lean,
                                dwell=not lean, holding=False)

    if journeys.time_kind == "none":
        return counts_part(), None
    if pool_threads() < 2 or threading.current_thread().name.startswith(POOL_THREAD_PREFIX):
        # one core, or already on a pool thread (waiting there for the pool could deadlock)
        stats = counts_part()
        part, holding = holding_part()
    else:
        # the counts call no BLAS: fit_holding's one_blas_thread (threadpoolctl's limits are
        # the process's) is the only one in force meanwhile, so its products keep their bits
        future = thread_pool().submit(holding_part)
        try:
            stats = counts_part()
        except BaseException:
            wait([future])  # no work left running behind the error
            raise
        part, holding = future.result()
    return replace(stats, holding=part), holding


def _order_group(table: pd.DataFrame) -> H5Group:
    """The order-selection table as a numpy group, as ``xarray.Dataset.from_dataframe(
    table.set_index("order"))`` makes it (no xarray import: 0.3-0.5 s of ``fit markov
    --order auto``)."""
    data = {str(col): ("order", table[col].to_numpy()) for col in table.columns
            if col != "order"}
    return H5Group.from_arrays(data, {"order": table["order"].to_numpy()})


def _holding_group(h: HoldingTimes) -> H5Group:
    """:meth:`HoldingTimes.to_arrays` as a numpy group, without xarray."""
    data, coords, attrs = h.to_arrays()
    return H5Group.from_arrays(data, coords=coords, attrs=attrs)


def _check_events(n_events: int) -> None:
    if n_events == 0:
        raise InputError("no journey has a touchpoint; a Markov model needs touchpoints")


def _to_index(to_key: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Column of each target key: transient states in ``keys`` order, then the absorbing ones
    (conversion, dropoff, churn)."""
    n = len(keys)
    return np.where(to_key >= 0, np.searchsorted(keys, np.maximum(to_key, 0)),
                    n - 1 - to_key).astype(np.int64)


def _censored_from(ds, counts: TransitionCounts, keys: np.ndarray) -> TransitionCounts:
    """The censored journeys' expected transitions of a model file (empty in files saved
    before issue 17)."""
    z = np.zeros(0)
    if "censored_count" not in ds:
        return TransitionCounts(counts.order, counts.collapse, counts.touchpoints,
                                z.astype(np.int64), z.astype(np.int64), z, z,
                                z.astype(np.int64), z, z)
    n = len(keys)
    cf = ds["censored_from"].values.astype(np.int64)
    ct = ds["censored_to"].values.astype(np.int64)
    to_key = np.where(ct < n, keys[np.minimum(ct, n - 1)], n - 1 - ct)
    count = ds["censored_count"].values.astype(np.float64)
    return TransitionCounts(counts.order, counts.collapse, counts.touchpoints, keys[cf],
                            to_key, count, np.zeros(len(count)), z.astype(np.int64), z, z)


def _narrowest(text: np.ndarray) -> np.ndarray:
    """Numpy text at the width of its longest element (at least 1), what ``astype(str)`` of
    the same strings as Python objects gives."""
    width = int(np.strings.str_len(text).max(initial=1))
    return text.astype(f"U{max(width, 1)}")


def _pair_values(c, keys: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 width: int) -> np.ndarray:
    """Conversion value of each observed pair, aligned with the entries ``(rows, cols)`` of
    the count matrix (``width`` columns)."""
    fi = np.searchsorted(keys, c.from_key)
    ti = _to_index(c.to_key, keys)
    order = np.argsort(fi * width + ti)
    pos = np.searchsorted((fi * width + ti)[order], rows * width + cols)
    return c.value[order][pos]
