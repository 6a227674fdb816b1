"""Behavioural segments: personas discovered from how customers move, as a mixture over customers.

A customer belongs to one of K segments; all of their journeys are drawn from that segment's
process, so a customer with five journeys is classified with more certainty than one with one.
``kind="markov"``: each segment is a first-order absorbing Markov chain over touchpoints (where
journeys start, what follows what, and conversion, churn or drop-off after each touchpoint).
``kind="hmm"``: each segment is a stages HMM (:mod:`journeymodel.models.stages`) with
``n_stages`` hidden stages. Fitted by EM over customers (:mod:`journeymodel.models.segments.em`)
from several random starts; ``n_segments="auto"`` fits every K of ``auto_range`` and keeps the
lowest BIC, whose sample size is the number of customers (the independent units of a mixture
over customers).

An in-flight (censored) journey's last step contributes what is known of it, as in the Markov
and stages models (issue 17, ``censored="survival"``): it has not moved on yet after the time
already spent silent, by the survival of the holding times (``holding_``: one
:class:`~journeymodel.stats.holding.HoldingTimes` fitted on all journeys and shared by the
segments; how long a customer waits between touchpoints is taken as a property of the
touchpoints, not of the persona, which keeps the segments told apart by where customers go and
how journeys end). ``censored="ignore"``: nothing (Markov) or exit factor 1 (HMM), the fit
before issue 17, which loses exactly the journeys about to drop off.

Segments are numbered by size (expected customers, largest first; ties by conversion rate, then
touchpoint mix) and named from what distinguishes them: the touchpoints most over-represented in
the segment and its conversion rate against the overall one
(:func:`journeymodel.models.segments.profile.segment_names`).

References
----------
Cadez et al. (2003), mixtures of Markov chains for web navigation; Helske and Helske (2019),
mixture hidden Markov models (seqHMM). See :mod:`journeymodel.models.segments.em`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import numpy as np
import pandas as pd

from journeymodel.choices import SEGMENT_KINDS, STAGES_CENSORED
from journeymodel.errors import InputError, OptionError
from journeymodel.fit import hmm
from journeymodel.models.base import JourneyMeta, JourneyModel, Result, k_candidates
from journeymodel.models.segments import em
from journeymodel.models.segments.profile import (
    Profile,
    canonical_order,
    profile,
    segment_names,
)
from journeymodel.models.stages.censoring import censored_cells
from journeymodel.models.stages.fit import combine, split
from journeymodel.stats.holding import fit_holding
from journeymodel.stats.segments import SegmentStats, segment_stats

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.data.journeys import JourneySet

#: Processes a segment can follow.
KINDS = SEGMENT_KINDS
#: How in-flight journeys' last steps enter the fit (the stages and Markov models' choices).
CENSORED = STAGES_CENSORED


class SegmentModel(JourneyModel):
    """Behavioural segments of customers: a mixture of Markov chains or of stages HMMs.

    Parameters
    ----------
    n_segments : int or "auto"
        Number of segments K, or ``"auto"``: each K of ``auto_range``, lowest BIC kept.
    kind : {"markov", "hmm"}
        Each segment's process (see the module docstring).
    n_stages : int
        Hidden stages per segment (``kind="hmm"``).
    restarts : int
        Random EM starts per K; the best log-likelihood is kept.
    seed : int
    max_iter : int
    tol : float
        EM stops when the log-likelihood per journey step gains less than this.
    auto_range : list of two ints
        Smallest and largest K tried by ``n_segments="auto"``.
    warmup : int or None
        Each start runs this many EM iterations, the best continues to convergence (None: every
        start to convergence).
    censored : {"survival", "ignore"}
        What an in-flight (censored) journey's last step contributes: ``"survival"`` its
        chance of not having moved on after the time silent (see the module docstring);
        ``"ignore"`` nothing (before issue 17).

    Attributes
    ----------
    weights_ : ndarray, shape (K,)
        Segment shares.
    segment_names_ : list of str
    theta_ : ndarray, shape (K, n_symbols + 1, n_symbols + 3)
        ``kind="markov"``: each segment's chain (rows: touchpoints, ``(start)`` last; columns:
        touchpoints, then conversion, churn, drop-off).
    startprob_, transmat_, emissionprob_, exitprob_ : ndarray
        ``kind="hmm"``: each segment's stages HMM, shapes (K, S), (K, S, S), (K, S,
        n_symbols), (K, S, 4).
    profile_ : Profile
        Sizes, outcomes, touchpoint mix, paths and transitions per segment.
    log_likelihood_, aic_, bic_ : float
    n_parameters_, n_customers_ : int
    history_ : ndarray
        EM log-likelihood per iteration of the kept fit (never decreasing).
    selection_ : DataFrame
        ``n_segments``, ``log_likelihood``, ``aic``, ``bic``, ``n_parameters`` per K tried.
    holding_ : HoldingTimes or None
        Holding times between events, fitted on all journeys (None without timestamps).
    censored_survival_ : bool
        Whether the fit (and :meth:`score`, :meth:`membership`) gave in-flight journeys' last
        steps their survival term (False with ``censored="ignore"``, without timestamps or
        in-flight journeys, and in files from before issue 17).

    Examples
    --------
    >>> from journeymodel.data.mixtures import make_mixture_data
    >>> from journeymodel.data.journeys import load_journeys
    >>> data = make_mixture_data(400, 2, seed=0)
    >>> m = SegmentModel(n_segments=2, seed=0).fit(load_journeys(data.events))
    >>> len(m.segment_names_), bool(m.weights_[0] >= m.weights_[1])
    (2, True)
    """

    model_type = "segments"
    schema_version = 1

    def __init__(self, n_segments: int | str = 3, kind: str = "markov", n_stages: int = 3,
                 restarts: int = 3, seed: int = 0, max_iter: int = 500, tol: float = 1e-6,
                 auto_range: list[int] | tuple[int, int] = (2, 8),
                 warmup: int | None = 20, censored: str = "survival") -> None:
        self.n_segments = n_segments
        self.kind = kind
        self.n_stages = n_stages
        self.restarts = restarts
        self.seed = seed
        self.max_iter = max_iter
        self.tol = tol
        self.auto_range = list(auto_range)
        self.warmup = warmup
        self.censored = censored

    # -- fitting -------------------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        if self.kind not in KINDS:
            raise OptionError(f"kind must be one of {KINDS} (got {self.kind!r})")
        if self.censored not in CENSORED:
            raise OptionError(f"censored must be one of {CENSORED} (got {self.censored!r})")
        for name in ("restarts", "max_iter", "n_stages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise OptionError(f"{name} must be a whole number >= 1 (got {value!r})")
        return k_candidates("n_segments", self.n_segments, self.auto_range)

    def stats_of(self, journeys: JourneySet) -> SegmentStats:
        """Each customer's distinct journeys with counts (:mod:`journeymodel.stats.segments`);
        statistics of parts of a log add up to those of the whole."""
        return segment_stats(journeys)

    def fit(self, journeys: JourneySet, *, progress=None) -> Self:
        """``fit_stats(stats_of(journeys))``, remembering the journeys' ledger and vocabularies.

        Raises
        ------
        OptionError
            Bad parameters.
        InputError
            Journeys without customers, or no journey with a touchpoint or an outcome.
        """
        self.fit_stats(self.stats_of(journeys), progress=progress)
        self._remember(journeys)
        return self

    def fit_stats(self, stats: SegmentStats, *, progress=None) -> Self:
        """Fit by EM from statistics only (each K of ``auto_range`` with ``"auto"``).

        Parameters
        ----------
        stats : SegmentStats
        progress : callable(str), optional
            Receives a line after each K and restart.

        Raises
        ------
        OptionError, InputError
            As :meth:`fit`; also fewer customers with journeys than segments.
        """
        ks = self._check_params()
        seqs = stats.sequences
        if seqs.n_obs <= 0:
            raise InputError("no journey has a touchpoint or an outcome to find segments in "
                             f"({stats.totals.n_journeys} journeys, all empty and censored)")
        n_used = int(np.count_nonzero(np.bincount(stats.pair_customer,
                                                  minlength=stats.n_customers)))
        if n_used < max(ks):
            raise InputError(f"{n_used} customers have journeys to learn from, fewer than the "
                             f"{max(ks)} segments asked for; ask for fewer segments")
        self.holding_ = None if stats.holding is None else fit_holding(stats.holding)
        cells = censored_cells(seqs, self.holding_) if self.censored == "survival" else None
        component = self._component(seqs, cells)
        bags = em.customer_bags(stats)
        rng = np.random.default_rng(self.seed)
        rows, best = [], None
        for K, child in zip(ks, rng.spawn(len(ks)), strict=True):
            report = None if progress is None else (
                lambda r, f, K=K: progress(f"K={K} restart {r + 1}/{self.restarts}: "
                                           f"log-likelihood {f.log_likelihood:.2f} "
                                           f"({f.n_iter} iterations)"))
            fit = em.fit_mixture(component, bags, K, restarts=int(self.restarts), seed=child,
                                 max_iter=int(self.max_iter), tol=float(self.tol),
                                 n_obs=seqs.n_obs, warmup=self.warmup, progress=report)
            n_par = component.n_parameters(K) + K - 1
            aic, bic = em.criteria(fit.log_likelihood, n_par, stats.n_customers)
            rows.append({"n_segments": K, "log_likelihood": fit.log_likelihood, "aic": aic,
                         "bic": bic, "n_parameters": n_par})
            if best is None or bic < best[1]:
                best = (fit, bic, n_par)
        self._set_fit(best[0], best[2], stats, component, bags)
        self.censored_survival_ = cells is not None
        self.selection_ = pd.DataFrame(rows)
        self._remember_stats(stats)
        return self

    def _component(self, seqs, cells=None):
        n_x = len(seqs.symbols)
        if self.kind == "markov":
            return em.MarkovComponent(seqs.codes, seqs.offsets, n_x, cells)
        return em.HMMComponent(seqs.codes, seqs.offsets, n_x, int(self.n_stages), cells)

    def _of(self, journeys: JourneySet) -> tuple[SegmentStats, object]:
        """Statistics of new ``journeys`` over the model's alphabet and the component reading
        them (with the survival term of their in-flight journeys when the fit used it)."""
        stats = segment_stats(journeys, self.symbols_, holding=False)
        holding = getattr(self, "holding_", None)
        cells = (censored_cells(stats.sequences, holding)
                 if getattr(self, "censored_survival_", False) else None)
        return stats, self._component(stats.sequences, cells)

    def _set_fit(self, fit: em.MixtureFit, n_par: int, stats: SegmentStats, component,
                 bags) -> None:
        weights = np.asarray(bags.T @ fit.responsibilities)
        prof = profile(stats.sequences, fit.responsibilities, weights)
        order = canonical_order(prof)
        self.symbols_ = stats.sequences.symbols
        self.weights_ = np.asarray(fit.weights, np.float64)[order]
        self._set_params(fit.params, order)
        self.profile_ = prof.permuted(order)
        self.segment_names_ = segment_names(self.profile_, self.symbols_)
        self.log_likelihood_, self.n_parameters_ = float(fit.log_likelihood), int(n_par)
        self.n_customers_ = int(stats.n_customers)
        self.aic_, self.bic_ = em.criteria(fit.log_likelihood, n_par, stats.n_customers)
        self.history_ = np.asarray(fit.history, np.float64)
        self.n_iter_, self.converged_ = int(fit.n_iter), bool(fit.converged)

    def _set_params(self, params, order: np.ndarray) -> None:
        if self.kind == "markov":
            self.theta_ = np.asarray(params)[order]
            return
        n_x = len(self.symbols_)
        parts = [split(params[k].emissionprob, n_x) for k in order]
        self.startprob_ = np.stack([params[k].startprob for k in order])
        self.transmat_ = np.stack([params[k].transmat for k in order])
        self.emissionprob_ = np.stack([p[0] for p in parts])
        self.exitprob_ = np.stack([p[1] for p in parts])

    def _remember_stats(self, stats: SegmentStats) -> None:
        """``journeys_`` and ``ledger_`` as far as the statistics know them."""
        from journeymodel.data.ledger import Ledger

        t = stats.totals
        self.ledger_ = Ledger(source="<statistics>", rows_read=t.n_events, rows_used=t.n_events,
                              notes=["fitted from statistics: the touchpoint events counted"])
        self.journeys_ = JourneyMeta(
            touchpoints=stats.sequences.touchpoints, personas=(), devices=(),
            time_kind=t.time_kind, gap=t.gap, observed_until=t.observed_until,
            n_journeys=t.n_journeys, n_events=t.n_events, outcome_counts=t.outcome_counts())

    # -- fitted processes ----------------------------------------------------------------------
    @property
    def n_segments_(self) -> int:
        self._check_fitted()
        return len(self.weights_)

    def params_(self):
        """The processes in the form :mod:`journeymodel.models.segments.em` reads."""
        self._check_fitted()
        if self.kind == "markov":
            return self.theta_
        return [hmm.HMMParams(self.startprob_[k], self.transmat_[k],
                              combine(self.emissionprob_[k], self.exitprob_[k]))
                for k in range(self.n_segments_)]

    def membership(self, journeys: JourneySet) -> tuple[np.ndarray, np.ndarray]:
        """Customer ids and P(segment | the customer's journeys), shape (n_customers, K), the
        customers in the order of ``journeys.customers`` (an event log's order of first
        appearance). Touchpoints the model has not seen are left out; a customer without usable
        journeys gets the segment shares."""
        self._check_fitted()
        stats, component = self._of(journeys)
        resp, _ = em.membership(component, self.params_(), self.weights_,
                                em.customer_bags(stats))
        names = np.asarray(journeys.customers, dtype=str)
        by_name = np.argsort(names, kind="stable")
        where = by_name[np.searchsorted(names[by_name], stats.customers)]
        order = np.argsort(where, kind="stable")
        return stats.customers[order], resp[order]

    def predict(self, journeys: JourneySet) -> Result:
        """The members file: one row per customer, ``customer_id``, ``segment`` (the most
        probable), ``probability`` (of that segment) and ``p_<segment name>`` for every segment.
        """
        ids, resp = self.membership(journeys)
        best = resp.argmax(axis=1) if len(resp) else np.zeros(0, np.int64)
        names = np.asarray(self.segment_names_, dtype=object)
        frame = pd.DataFrame({"customer_id": ids.astype(object), "segment": names[best],
                              "probability": resp[np.arange(len(resp)), best]})
        for k, name in enumerate(self.segment_names_):
            frame[f"p_{name}"] = resp[:, k]
        counts = np.bincount(best, minlength=self.n_segments_)
        table = pd.DataFrame({"segment": self.segment_names_, "customers": counts,
                              "share": counts / max(len(frame), 1),
                              "mean_probability": [float(resp[best == k, k].mean())
                                                   if counts[k] else float("nan")
                                                   for k in range(self.n_segments_)]})
        sure = float(np.mean(frame["probability"] >= 0.9)) if len(frame) else float("nan")
        return Result(
            json={"n_customers": len(frame), "segments": list(self.segment_names_),
                  "members": frame.to_dict(orient="records")},
            tables=[("Customers by segment", table)], frame=frame,
            notes=[f"{len(frame):,} customers; {sure:.0%} assigned with probability >= 0.9"],
            kinds={"customers": "count", "share": "probability",
                   "mean_probability": "probability"})

    def score(self, journeys: JourneySet) -> float:
        """Log-likelihood of ``journeys`` under the mixture (customers independent): the
        likelihood the fit maximised (with the survival term of in-flight journeys' last steps
        when the fit used it)."""
        self._check_fitted()
        stats, component = self._of(journeys)
        _, ll = em.membership(component, self.params_(), self.weights_,
                              em.customer_bags(stats))
        return float(ll.sum())

    # -- summary and persistence ---------------------------------------------------------------
    def summary(self) -> Result:
        """Segments (size, outcomes, touchpoints, paths, transitions) and the K tried."""
        from journeymodel.models.segments.summary import summary

        self._check_fitted()
        return summary(self)

    def outcome_mix(self) -> tuple[str, dict[str, float]]:
        """Journeys by outcome (what the segments were fitted on)."""
        from journeymodel.data.journeys import OUTCOMES

        counts = self.profile_.outcomes.sum(axis=0)
        return "journeys", {o: float(c) for o, c in zip(OUTCOMES, counts, strict=True)}

    def _to_tree(self) -> xr.DataTree:
        from journeymodel.models.segments.tree import to_tree

        return to_tree(self)

    def _from_tree(self, tree: xr.DataTree) -> None:
        from journeymodel.models.segments.tree import from_tree

        from_tree(self, tree)


__all__ = ["KINDS", "Profile", "SegmentModel"]
