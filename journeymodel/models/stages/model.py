"""Hidden journey stages: an HMM whose latent stages emit touchpoints and end journeys.

Generative story of one journey (as ``journeymodel.data.datasets``): the first stage is drawn
from ``startprob``; at each step the current stage ``s`` emits a touchpoint from
``emissionprob[s]``, and then the journey either continues or ends, by ``exitprob[s]`` over
(``continue``, ``conversion``, ``churn``, ``dropoff``); if it continues, the next stage is drawn
from ``transmat[s]``. So a journey's outcome is emitted as a final symbol by the stage of its last
touchpoint, and every stage carries its own conversion and churn propensity. A censored journey
(still in progress) ends without one: its last step contributes that it has not been left yet
after the time already spent silent, by the holding times (``censored="survival"``, issue 17:
:mod:`journeymodel.models.stages.censoring`), or exit factor 1 (``censored="ignore"``). A
journey with an outcome but no touchpoint (a direct conversion) is one step emitting the
pseudo-touchpoint ``(direct)``.

Internally a step is one symbol of a categorical HMM over (touchpoint, exit) pairs
(:mod:`journeymodel.stats.sequences` encodes journeys and keeps the distinct sequences with their
weights, the model's additive statistics); :mod:`journeymodel.models.stages.fit` fits one number
of stages with :mod:`journeymodel.fit.hmm`'s batched forward-backward and EM. Identical journeys
are fitted once, with their count as weight.

Stages are ordered canonically by their mean position in the journey (posterior-weighted step
index), so the same data and seed give the same labels and the main flow reads forward, S1 to SK.
``topology="funnel"`` (starts only in the first half of the stages, transitions only forward or
one stage back) is fitted in its structural order and then numbered the same way: EM may settle
with the funnel's first stage as a side stage that journeys rarely start in (on the demo data
with 3 stages, "engage" took 19% of starts and "entry" 81%), and numbering by the structure
would then show the main flow going backwards. ``funnel_rank_`` keeps each stage's place in the
fitted funnel, so the constraint can still be checked
(:func:`journeymodel.models.stages.summary.funnel_structure`).

The other modules of the package: ``summary`` (stage names, tables, ``inspect``), ``simulate``
(new journeys as an event log), ``tree`` (the model file's groups).

References
----------
L. R. Rabiner, "A tutorial on hidden Markov models and selected applications in speech
recognition", Proc. IEEE 77(2), 1989. S. Helske and J. Helske, "Mixture hidden Markov models for
sequence data: the seqHMM package in R", J. Stat. Softw. 88(3), 2019.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Self

import numpy as np
import pandas as pd

from journeymodel.choices import STAGE_TOPOLOGIES, STAGES_CENSORED
from journeymodel.data.journeys import CENSORED
from journeymodel.errors import ConvergenceWarning, InputError, OptionError
from journeymodel.fit import hmm
from journeymodel.models.base import JourneyMeta, JourneyModel, Result, k_candidates
from journeymodel.models.stages.censoring import censored_cells
from journeymodel.models.stages.fit import (
    StageFit,
    absorption,
    canonical_order,
    criteria,
    fit_stages,
)
from journeymodel.models.stages.summary import short_names, stage_names
from journeymodel.models.stages.summary import summary as summarize
from journeymodel.models.stages.tree import from_tree, to_tree
from journeymodel.stats.holding import HoldingTimes, fit_holding
from journeymodel.stats.sequences import (
    N_STATUS,
    SequenceStats,
    StageStats,
    elapsed_bins,
    encode,
    stage_stats,
)

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.data.journeys import JourneySet

TOPOLOGIES = STAGE_TOPOLOGIES


class StageModel(JourneyModel):
    """Hidden journey stages: a hidden Markov model of touchpoint sequences and outcomes.

    Parameters
    ----------
    n_stages : int or "auto"
        Number of stages K, or ``"auto"`` to fit each K in ``auto_range`` and keep the lowest BIC.
    topology : {"free", "funnel"}
        ``funnel``: journeys start in the first ceil(K/2) stages and move forward or one stage
        back; ``free``: any transition.
    restarts : int
        Random EM starts per K; the best log-likelihood is kept.
    seed : int
    max_iter : int
        EM iterations per start.
    tol : float
        EM stops when the log-likelihood per journey step improves by less than this.
    engine : {"numba", "hmmlearn"}
        Forward-backward implementation (hmmlearn: the reference, much slower).
    auto_range : list of two ints
        Smallest and largest K tried by ``n_stages="auto"``.
    warmup : int or None
        Each random start runs this many EM iterations; the best continues to convergence.
        ``None`` runs every start to convergence.
    censored : {"survival", "ignore"}
        What an in-flight (censored) journey's last step contributes. ``"survival"`` (the
        default): that it has not been left yet after the time already spent silent, by the
        holding times (``holding_``, fitted first from the same journeys) competing between
        the next touchpoint, conversion, churn and drop-off
        (:mod:`journeymodel.models.stages.censoring`). ``"ignore"``: exit factor 1, the fit
        before issue 17, whose exit probabilities (drop-off above all) are biased when
        journeys are in flight. Without timestamps both are the same.

    Attributes
    ----------
    startprob_ : ndarray, shape (K,)
    transmat_ : ndarray, shape (K, K)
        Next stage given the journey continues.
    emissionprob_ : ndarray, shape (K, n_touchpoints + 1)
        Touchpoint per stage (last column: ``(direct)``, a journey without touchpoints).
    exitprob_ : ndarray, shape (K, 4)
        After a touchpoint in stage k: continue, conversion, churn, dropoff.
    stage_names_ : list of str
    funnel_rank_ : ndarray of int, shape (K,), or None
        ``topology="funnel"``: each stage's place in the funnel as fitted (stages are numbered
        by mean position); ``transmat_`` reordered by ``argsort(funnel_rank_)`` starts only in
        the first ceil(K/2) stages and moves only forward or one stage back.
    log_likelihood_, aic_, bic_ : float
    n_parameters_ : int
    selection_ : DataFrame or None
        With ``n_stages="auto"``: K, log_likelihood, aic, bic, n_parameters per K tried.
    experience_ : xarray.Dataset or None
        Emotion curves with the stages' curve; None when fitted from statistics only.
    holding_ : HoldingTimes or None
        Holding times between events per touchpoint and next event (order 1, the same class as
        the Markov model's: :class:`~journeymodel.stats.holding.HoldingTimes`); None without
        timestamps. Censored last events are allocated by EM in the holding times themselves,
        and (``censored="survival"``) the HMM's censored last steps use their survival.
    censored_survival_ : bool
        Whether the fit gave in-flight journeys' last steps the survival term (False with
        ``censored="ignore"``, without timestamps or without in-flight journeys, and in files
        saved before issue 17).

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> js = journeys_from_codes([["ad", "web"], ["ad"], ["web", "web"]] * 20,
    ...                          ["conversion", "dropoff", "conversion"] * 20)
    >>> m = StageModel(n_stages=2, seed=0).fit(js)
    >>> m.transmat_.shape, len(m.stage_names_)
    ((2, 2), 2)

    The same fit from the statistics of two parts of the journeys, added:

    >>> parts = [js.take(np.arange(30)), js.take(np.arange(30, 60))]
    >>> s = StageModel(n_stages=2, seed=0).fit_stats(sum(m.stats_of(p) for p in parts))
    >>> bool(np.allclose(s.emissionprob_, m.emissionprob_))
    True

    References
    ----------
    Rabiner (1989); Helske and Helske (2019), seqHMM. See the module docstring.
    """

    model_type = "stages"
    schema_version = 1

    def __init__(self, n_stages: int | str = 4, topology: str = "free", restarts: int = 3,
                 seed: int = 0, max_iter: int = 500, tol: float = 1e-6, engine: str = "numba",
                 auto_range: list[int] | tuple[int, int] = (2, 8),
                 warmup: int | None = 30, censored: str = "survival") -> None:
        self.n_stages = n_stages
        self.topology = topology
        self.restarts = restarts
        self.seed = seed
        self.max_iter = max_iter
        self.tol = tol
        self.engine = engine
        self.auto_range = list(auto_range)
        self.warmup = warmup
        self.censored = censored

    # -- fitting -------------------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        if self.topology not in TOPOLOGIES:
            raise OptionError(f"topology must be one of {TOPOLOGIES} (got {self.topology!r})")
        if self.engine not in hmm.ENGINES:
            raise OptionError(f"engine must be one of {hmm.ENGINES} (got {self.engine!r})")
        if self.censored not in STAGES_CENSORED:
            raise OptionError(f"censored must be one of {STAGES_CENSORED} "
                              f"(got {self.censored!r})")
        if int(self.restarts) < 1 or int(self.max_iter) < 1:
            raise OptionError(f"restarts and max_iter must be >= 1 "
                              f"(got {self.restarts}, {self.max_iter})")
        return k_candidates("n_stages", self.n_stages, self.auto_range)

    def stats_of(self, journeys: JourneySet) -> StageStats:
        """What the fit reads from ``journeys``: their distinct encoded sequences with weights,
        and their totals (counts, outcomes, timing); statistics of parts of a log add up to
        those of the whole (:mod:`journeymodel.stats.sequences`)."""
        return stage_stats(journeys)

    def fit(self, journeys: JourneySet, *, progress=None) -> Self:
        """Fit by EM (every K of ``auto_range`` when ``n_stages="auto"``).

        ``self.fit_stats(self.stats_of(journeys))``, then what needs the journeys themselves:
        their ledger and vocabularies are remembered (``ledger_``, ``journeys_``), and the
        emotion curves (``experience_``) are computed, whose stages' curve needs each event's
        stage posterior under the fitted parameters, so it comes after the fit
        (:meth:`stage_posteriors`).

        Parameters
        ----------
        journeys : JourneySet
        progress : callable(str), optional
            Receives a line after each K and restart (the CLI shows it).

        Raises
        ------
        OptionError
            Bad parameters.
        InputError
            No journey has a touchpoint or an outcome to learn from.
        """
        from journeymodel.io.lazydask import import_xarray

        self.fit_stats(self.stats_of(journeys), progress=progress)
        self._remember(journeys)
        import_xarray()  # the emotion curves are xarray: without importing dask
        self.experience_ = self._experience(journeys)
        return self

    def fit_stats(self, stats: StageStats, *, progress=None, remote=None) -> Self:
        """Fit by EM from statistics only (e.g. summed over the parts of a log).

        The same fit as :meth:`fit` on the journeys the statistics were taken from, except for
        what needs the events: ``experience_`` is None, ``journeys_`` holds the counts and time
        range of the statistics (no personas or devices), and ``ledger_`` says the model was
        fitted from statistics.

        Parameters
        ----------
        stats : StageStats
            From :meth:`stats_of`, or a sum of them.
        progress : callable(str), optional
            Receives a line after each K and restart.
        remote : journeymodel.scale.em.RemoteSequences, optional
            The distinct sequences held by Dask workers, which run the E-steps
            (``stats.sequences`` then holds the vocabulary only): the same fit, from the same
            start (issue 15, :func:`journeymodel.scale.fit_scaled`).

        Raises
        ------
        OptionError
            Bad parameters.
        InputError
            No journey has a touchpoint or an outcome to learn from.
        """
        ks = self._check_params()
        seqs = stats.sequences
        n_obs = seqs.n_obs if remote is None else remote.n_obs
        if n_obs <= 0:
            raise InputError("no journey has a touchpoint or an outcome to fit stages to "
                             f"({stats.totals.n_journeys} journeys, all empty and censored)")
        self.holding_ = None if stats.holding is None else fit_holding(stats.holding)
        cells = (None if self.censored != "survival" else censored_cells(seqs, self.holding_)
                 if remote is None else remote.censored_cells(self.holding_))
        if cells is not None and self.engine == "hmmlearn":
            raise OptionError(
                f"engine 'hmmlearn' cannot fit the survival term of the "
                f"{stats.totals.outcome_counts()['censored']:,} in-flight journeys (issue 17); "
                "use engine 'numba', or censored='ignore' (--censored ignore)")
        rng = np.random.default_rng(self.seed)

        def fit_k(K: int, child: np.random.Generator):
            report = None if progress is None else (
                lambda r, f: progress(f"K={K} restart {r + 1}/{self.restarts}: "
                                      f"log-likelihood {f.log_likelihood:.2f} "
                                      f"({f.n_iter} iterations)"))
            return fit_stages(seqs, K, topology=self.topology, restarts=int(self.restarts),
                              seed=child, max_iter=int(self.max_iter), tol=float(self.tol),
                              engine=self.engine, warmup=self.warmup, progress=report,
                              cells=cells, warn=len(ks) == 1, remote=remote)

        rows, best = [], None
        for K, fit in zip(ks, _map_threads(fit_k, ks, rng.spawn(len(ks))), strict=True):
            crit = criteria(fit, n_obs)
            rows.append({"n_stages": K, "log_likelihood": fit.log_likelihood,
                         "aic": crit[0], "bic": crit[1], "n_parameters": fit.n_parameters})
            if best is None or crit[1] < best[1][1]:
                best = (fit, crit)
        if len(ks) > 1 and not best[0].converged:  # only the K kept matters to the user
            warnings.warn(
                f"HMM EM with {len(best[0].startprob)} stages (chosen by BIC) did not converge in "
                f"{self.max_iter} iterations; raise max_iter or loosen tol",
                ConvergenceWarning, stacklevel=2)
        # both topologies number the stages in journey order (the funnel's main flow forward);
        # funnel_rank_ keeps each stage's place in the funnel structure as fitted
        fit, mean_pos, order = canonical_order(best[0], seqs, remote)
        self.funnel_rank_ = np.asarray(order, np.int64) if self.topology == "funnel" else None
        self._set_fit(fit, mean_pos, stats, n_obs)
        self.censored_survival_ = cells is not None
        self.selection_ = pd.DataFrame(rows) if self.n_stages == "auto" else None
        self._remember_stats(stats)
        self.experience_ = None
        return self

    def _remember_stats(self, stats: StageStats) -> None:
        """``journeys_`` and ``ledger_`` as far as the statistics know them."""
        from journeymodel.data.ledger import Ledger

        t = stats.totals
        self.ledger_ = Ledger(source="<statistics>", rows_read=t.n_events,
                              rows_used=t.n_events,
                              notes=["fitted from statistics: the touchpoint events counted"])
        self.journeys_ = JourneyMeta(
            touchpoints=stats.sequences.touchpoints, personas=(), devices=(),
            time_kind=t.time_kind, gap=t.gap, observed_until=t.observed_until,
            n_journeys=t.n_journeys, n_events=t.n_events, outcome_counts=t.outcome_counts())

    def stage_posteriors(self, journeys: JourneySet) -> np.ndarray:
        """P(stage | journey) at each touchpoint event of ``journeys``, shape (n_events, K),
        rows in the order of ``journeys.codes`` (what the stages' emotion curve weighs events
        by; each part of a log gives its own, so the experience adds up over parts)."""
        self._check_fitted()
        enc = encode(journeys, self.symbols_, dedupe=False)
        post = hmm.forward_backward(enc.codes, enc.offsets, self.params_,
                                    posteriors=True).posteriors
        real = enc.codes // N_STATUS < len(journeys.touchpoints)  # not an added (direct) step
        if int(real.sum()) != journeys.n_events:  # pragma: no cover - encode keeps every event
            raise AssertionError("stage posteriors do not line up with the events")
        return post[real]

    def _experience(self, journeys: JourneySet) -> xr.Dataset:
        """Emotion curves with the stages' curve (posterior stage probability per event)."""
        from journeymodel.analysis.experience import journey_experience

        return journey_experience(journeys, stage_posterior=self.stage_posteriors(journeys),
                                  stage_names=list(self.stage_names_))

    def _set_fit(self, fit: StageFit, mean_pos: np.ndarray, stats: StageStats,
                 n_obs: float) -> None:
        self.startprob_, self.transmat_ = fit.startprob, fit.transmat
        self.emissionprob_, self.exitprob_ = fit.emission, fit.exit
        self.log_likelihood_, self.n_parameters_ = float(fit.log_likelihood), fit.n_parameters
        self.n_observations_ = float(n_obs)
        self.aic_, self.bic_ = criteria(fit, n_obs)
        self.history_ = np.asarray(fit.history, np.float64)
        self.n_iter_, self.converged_ = int(fit.n_iter), bool(fit.converged)
        self.mean_position_ = np.asarray(mean_pos, np.float64)
        self.symbols_ = stats.sequences.symbols
        self.timing_ = stats.totals.timing()
        self.stage_names_ = stage_names(self)

    @property
    def n_stages_(self) -> int:
        self._check_fitted()
        return len(self.startprob_)

    def stage_fit(self) -> StageFit:
        """The fitted parameters and fit figures as a :class:`~.fit.StageFit` (for
        :func:`~.fit.absorption` and the other functions of :mod:`journeymodel.models.stages.fit`).
        """
        self._check_fitted()
        return StageFit(self.startprob_, self.transmat_, self.emissionprob_, self.exitprob_,
                        self.log_likelihood_, self.n_parameters_, list(self.history_),
                        self.n_iter_, self.converged_)

    @property
    def params_(self) -> hmm.HMMParams:
        """The combined-symbol HMM parameters used by :mod:`journeymodel.fit.hmm`."""
        self._check_fitted()
        return self.stage_fit().params

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, journeys: JourneySet) -> pd.DataFrame:
        """Viterbi stage path and posterior stage probabilities of every touchpoint.

        Returns
        -------
        DataFrame, one row per touchpoint step (and one ``(direct)`` step per journey with an
        outcome but no touchpoint): ``journey`` (index into ``journeys``), ``step``,
        ``touchpoint``, ``viterbi_stage`` and one ``p_<stage>`` column per stage.
        """
        self._check_fitted()
        enc = encode(journeys, self.symbols_, dedupe=False)
        path, _ = hmm.viterbi(enc.codes, enc.offsets, self.params_)
        post = hmm.forward_backward(enc.codes, enc.offsets, self.params_,
                                    posteriors=True).posteriors
        lengths = np.diff(enc.offsets)
        short = short_names(self.n_stages_)
        frame = pd.DataFrame({
            "journey": np.repeat(enc.journey, lengths),
            "step": np.arange(len(enc.codes)) - np.repeat(enc.offsets[:-1], lengths),
            "touchpoint": np.asarray(self.symbols_, dtype=object)[enc.codes // N_STATUS],
            "viterbi_stage": np.asarray(short, dtype=object)[path]})
        for k, name in enumerate(short):
            frame[f"p_{name}"] = post[:, k]
        return frame

    def score(self, journeys: JourneySet) -> float:
        """Weighted log-likelihood of ``journeys`` under the fitted model: the likelihood the
        fit maximised, so with the survival term of in-flight journeys' last steps when the fit
        used it (``censored_survival_``) and ``journeys`` have timestamps."""
        self._check_fitted()
        enc = encode(journeys, self.symbols_, dedupe=False)
        codes, params = enc.codes, self.params_
        if getattr(self, "censored_survival_", False) and self.holding_ is not None:
            seqs = SequenceStats(tuple(self.symbols_[:-1]), enc.codes, enc.offsets,
                                 enc.weight, elapsed_bins(journeys, enc))
            cells = censored_cells(seqs, self.holding_)
            if cells is not None:
                codes, params = cells.codes, cells.finish(params)
        return hmm.forward_backward(codes, enc.offsets, params, enc.weight).total(enc.weight)

    # -- prediction and simulation --------------------------------------------------------------
    def predict(self, journeys: JourneySet) -> Result:
        """For each in-flight (censored) journey: current-stage distribution, P(conversion),
        P(churn) and the next-touchpoint distribution (given the journey goes on).

        The current stage of a journey without touchpoints yet is its first stage (``startprob``).
        Touchpoints the model has not seen are left out (counted in the notes).
        """
        self._check_fitted()
        flight = np.flatnonzero(journeys.outcome == CENSORED)
        js = journeys.take(flight)
        known = np.isin(np.asarray(js.touchpoints, dtype=object)[js.codes],
                        np.asarray(self.symbols_[:-1], dtype=object))
        enc = encode(js, self.symbols_, dedupe=False)  # censored: all kept but empty ones
        current = np.tile(self.startprob_, (len(flight), 1))
        current[enc.journey] = hmm.filter_last(enc.codes, enc.offsets, self.params_)[0]
        started = np.zeros(len(flight), bool)
        started[enc.journey] = True
        p_go = np.where(started, current @ self.exitprob_[:, 0], 1.0)
        nxt = np.where(started[:, None], (current * self.exitprob_[:, 0]) @ self.transmat_,
                       self.startprob_)
        nxt /= np.maximum(nxt.sum(1, keepdims=True), 1e-300)
        ends = np.where(started[:, None], current @ self.exitprob_[:, 1:], 0.0)
        p_out = ends + p_go[:, None] * (nxt @ absorption(self.stage_fit()))
        tp = nxt @ self.emissionprob_[:, :-1]
        tp /= np.maximum(tp.sum(1, keepdims=True), 1e-300)
        return self._prediction_result(js, current, p_out, tp, int((~known).sum()))

    def _prediction_result(self, js, current, p_out, tp, n_unknown) -> Result:
        short = short_names(self.n_stages_)
        touch = np.asarray(self.symbols_[:-1], dtype=object)
        ids = np.where(js.customer >= 0, js.customers[np.maximum(js.customer, 0)]
                       if len(js.customers) else None, None)
        frame = pd.DataFrame({
            "customer_id": ids, "n_touchpoints": js.lengths,
            "stage": np.asarray(short, dtype=object)[current.argmax(1)] if len(js.lengths)
            else np.zeros(0, object),
            "p_conversion": p_out[:, 0], "p_churn": p_out[:, 1], "p_dropoff": p_out[:, 2],
            "next_touchpoint": touch[tp.argmax(1)] if len(tp) else np.zeros(0, object)})
        for k, name in enumerate(short):
            frame[f"p_{name}"] = current[:, k]
        for i, name in enumerate(touch):
            frame[f"next_{name}"] = tp[:, i]
        notes = [f"{len(frame):,} in-flight (censored) journeys; stages: " +
                 "; ".join(self.stage_names_)]
        if n_unknown:
            notes.append(f"{n_unknown} touchpoints unknown to the model were left out")
        head = frame.head(20)[["customer_id", "n_touchpoints", "stage", "p_conversion",
                               "p_churn", "next_touchpoint"]]
        return Result(json={"n_in_flight": len(frame), "stages": list(self.stage_names_),
                            "predictions": frame.to_dict(orient="records")},
                      tables=[("In-flight journeys (first 20)", head)], frame=frame,
                      notes=notes, kinds={"p_conversion": "probability",
                                          "p_churn": "probability", "n_touchpoints": "count"})

    def simulate(self, n: int, *, seed: int | np.random.Generator = 0,
                 max_length: int = 200) -> pd.DataFrame:
        """Simulate ``n`` new journeys as a canonical event log.

        Drawn in chunks of :data:`~.simulate.CHUNK_JOURNEYS` from one generator made
        from ``seed`` (see :func:`~.simulate.simulate_chunk`); at most
        :data:`~.simulate.MAX_IN_MEMORY` journeys (more: stream them to a file with
        :func:`journeymodel.models.simulate.simulate_to_file`).

        Returns
        -------
        DataFrame with ``customer_id`` (one per journey: ``sim1`` .. ``simN`` zero-padded to the
        width of ``n``), ``timestamp`` (UTC datetimes when the model was fitted on datetimes,
        period numbers otherwise) and ``touchpoint`` (including ``conversion`` and ``churn``
        rows; a drop-off leaves no row).

        Raises
        ------
        OptionError
            ``n`` < 1 or above :data:`~.simulate.MAX_IN_MEMORY`.
        """
        from journeymodel.models.simulate import simulate_frame

        self._check_fitted()
        return simulate_frame(self, n, seed=seed, max_length=max_length)

    # -- summary -------------------------------------------------------------------------------
    def summary(self) -> Result:
        """Stages (names, touchpoints, exits, dwell), transitions, emission profile, selection."""
        self._check_fitted()
        return summarize(self)

    # -- persistence ---------------------------------------------------------------------------
    def _to_tree(self) -> xr.DataTree:
        tree = to_tree(self)
        if getattr(self, "holding_", None) is not None:
            import xarray as xr

            tree["holding"] = xr.DataTree(self.holding_.to_dataset())
        return tree

    def _from_tree(self, tree: xr.DataTree) -> None:
        from_tree(self, tree)
        self.holding_ = (HoldingTimes.from_dataset(tree["holding"].to_dataset(inherit=False))
                         if "holding" in tree.children else None)


def _map_threads(func, *iterables) -> list:
    """``list(map(func, *iterables))`` on a thread per core: each K's EM is independent (its
    own seed) and spends most of its time in the E-step kernel, which releases the GIL
    (``nogil=True``), so the K of ``n_stages="auto"`` fit side by side. The results come back in
    input order: the same fit whatever the scheduling."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    args = list(zip(*iterables, strict=True))
    workers = min(len(args), os.cpu_count() or 1)
    if workers <= 1:
        return [func(*a) for a in args]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda a: func(*a), args))
