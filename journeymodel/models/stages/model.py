"""Hidden journey stages: an HMM whose latent stages emit touchpoints and end journeys.

Generative story of one journey (as ``journeymodel.data.datasets``): the first stage is drawn
from ``startprob``; at each step the current stage ``s`` emits a touchpoint from
``emissionprob[s]``, and then the journey either continues or ends, by ``exitprob[s]`` over
(``continue``, ``conversion``, ``churn``, ``dropoff``); if it continues, the next stage is drawn
from ``transmat[s]``. So a journey's outcome is emitted as a final symbol by the stage of its last
touchpoint, and every stage carries its own conversion and churn propensity. A censored journey
(still in progress) ends without one: its last step's exit factor is 1. A journey with an outcome
but no touchpoint (a direct conversion) is one step emitting the pseudo-touchpoint ``(direct)``.

Internally a step is one symbol of a categorical HMM over (touchpoint, exit) pairs, with the
factorised emission ``emissionprob[s, x] * exitprob[s, e]``; :mod:`journeymodel.fit.hmm` runs the
batched forward-backward and EM, and the M-step re-factorises the expected counts (exact, so the
log-likelihood never decreases). Identical journeys are fitted once, with their count as weight.

Stages are ordered canonically by their mean position in the journey (posterior-weighted step
index), so the same data and seed give the same labels and the main flow reads forward, S1 to SK.
``topology="funnel"`` (starts only in the first half of the stages, transitions only forward or
one stage back) is fitted in its structural order and then numbered the same way: EM may settle
with the funnel's first stage as a side stage that journeys rarely start in (on the demo data
with 3 stages, "engage" took 19% of starts and "entry" 81%), and numbering by the structure
would then show the main flow going backwards. ``funnel_rank_`` keeps each stage's place in the
fitted funnel, so the constraint can still be checked (:func:`funnel_structure`).

References
----------
L. R. Rabiner, "A tutorial on hidden Markov models and selected applications in speech
recognition", Proc. IEEE 77(2), 1989. S. Helske and J. Helske, "Mixture hidden Markov models for
sequence data: the seqHMM package in R", J. Stat. Softw. 88(3), 2019.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from journeymodel.choices import STAGE_TOPOLOGIES
from journeymodel.data.journeys import CENSORED, CHURN, CONVERSION, DROPOFF, OUTCOMES
from journeymodel.errors import InputError, OptionError
from journeymodel.fit import hmm
from journeymodel.models.base import JourneyModel, Result

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.data.journeys import JourneySet

DIRECT = "(direct)"
EXITS = ("continue", "conversion", "churn", "dropoff")
_UNKNOWN = 4  # exit status of the last step of a censored journey (factor 1)
_NS = 5  # statuses per touchpoint in the combined symbol alphabet
_STATUS_OF_OUTCOME = np.array([1, 2, 3, _UNKNOWN])  # by OUTCOMES index
TOPOLOGIES = STAGE_TOPOLOGIES
assert (CONVERSION, CHURN, DROPOFF, CENSORED) == (0, 1, 2, 3)


# ---------------------------------------------------------------------------------------------
# Journeys -> combined symbol sequences


@dataclass
class Encoded:
    """Journeys as sequences of combined symbols ``touchpoint * 5 + exit status``.

    ``codes``/``offsets``/``weight`` feed :mod:`journeymodel.fit.hmm`; ``journey`` maps each
    sequence back to a journey (the first of its identical copies when deduplicated).
    """

    codes: np.ndarray
    offsets: np.ndarray
    weight: np.ndarray
    journey: np.ndarray
    n_symbols: int

    @property
    def n_obs(self) -> float:
        return float(np.dot(self.weight, np.diff(self.offsets)))


def encode(journeys: JourneySet, symbols: tuple[str, ...], *, dedupe: bool = True) -> Encoded:
    """Combined-symbol sequences of ``journeys`` over the touchpoint alphabet ``symbols``.

    Touchpoints not in ``symbols`` are left out; empty censored journeys are dropped (they carry
    no information). Vectorised: no loop over journeys or events.
    """
    index = {name: i for i, name in enumerate(symbols)}
    recode = np.array([index.get(t, -1) for t in journeys.touchpoints] or [-1], np.int64)
    x = recode[journeys.codes] if journeys.n_events else np.zeros(0, np.int64)
    known = x >= 0
    lengths = np.bincount(journeys.journey_of_event[known], minlength=journeys.n_journeys)
    outcome = journeys.outcome.astype(np.int64)
    direct = (lengths == 0) & (outcome != CENSORED)
    keep = (lengths > 0) | direct
    new_len = (lengths + direct)[keep]
    offsets = np.zeros(len(new_len) + 1, np.int64)
    np.cumsum(new_len, out=offsets[1:])
    codes = np.full(offsets[-1], index[DIRECT], np.int64)
    first = np.repeat(offsets[:-1] - np.concatenate([[0], np.cumsum(lengths[keep])[:-1]]),
                      lengths[keep])
    codes[first + np.arange(len(first))] = x[known][np.repeat(keep, lengths)]
    status = np.zeros(len(codes), np.int64)
    status[offsets[1:] - 1] = _STATUS_OF_OUTCOME[outcome[keep]]
    journey = np.flatnonzero(keep)
    enc = Encoded(codes * _NS + status, offsets, journeys.weight[keep].astype(np.float64),
                  journey, len(symbols) * _NS)
    return _dedupe(enc) if dedupe else enc


def _dedupe(enc: Encoded) -> Encoded:
    """Identical sequences merged into one with the summed weight (exact for EM)."""
    from journeymodel.data.journeys import csr_event_index, sequence_keys

    lengths = np.diff(enc.offsets)
    n = len(lengths)
    if n == 0:
        return enc
    key = sequence_keys(enc.codes, enc.offsets)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    weight = np.bincount(inverse, weights=enc.weight, minlength=len(first))
    order = np.argsort(first)  # groups in order of first appearance
    first, weight = first[order], weight[order]
    ev = csr_event_index(enc.offsets, first)
    offsets = np.zeros(len(first) + 1, np.int64)
    np.cumsum(lengths[first], out=offsets[1:])
    return Encoded(enc.codes[ev], offsets, weight, enc.journey[first], enc.n_symbols)


def combine(emission: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Combined emission matrix (K, n_x * 5): ``emission[k, x] * exit_[k, e]``, and
    ``emission[k, x]`` in the ``unknown`` column (a censored journey's last step)."""
    K, n_x = emission.shape
    out = np.empty((K, n_x, _NS))
    out[:, :, :4] = emission[:, :, None] * exit_[:, None, :]
    out[:, :, _UNKNOWN] = emission
    return out.reshape(K, n_x * _NS)


def split(counts: np.ndarray, n_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Factorised M-step: expected combined-symbol counts (K, n_x * 5) to
    (emission (K, n_x), exit (K, 4)); any positive scaling of a row gives the same result."""
    c = counts.reshape(len(counts), n_x, _NS)
    emission, exit_ = c.sum(axis=2), c[:, :, :4].sum(axis=1)
    return hmm._norm(emission, 1.0 / n_x), hmm._norm(exit_, 0.25)


# ---------------------------------------------------------------------------------------------
# Fitting one K


@dataclass
class StageFit:
    """Parameters of one fitted stage HMM (K stages), in canonical order."""

    startprob: np.ndarray
    transmat: np.ndarray
    emission: np.ndarray
    exit: np.ndarray
    log_likelihood: float
    n_parameters: int
    history: list[float]
    n_iter: int
    converged: bool

    @property
    def params(self) -> hmm.HMMParams:
        return hmm.HMMParams(self.startprob, self.transmat, combine(self.emission, self.exit))


def topology_masks(K: int, topology: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Start and transition masks: ``funnel`` starts in the first ceil(K/2) stages and moves
    forward or one stage back; ``free`` has none."""
    if topology == "free":
        return None, None
    start = np.arange(K) < max(1, -(-K // 2))
    trans = np.arange(K)[None, :] >= np.arange(K)[:, None] - 1
    return start, trans


def funnel_structure(model: StageModel) -> np.ndarray:
    """Stage indices in the order of the fitted funnel (``arange(K)`` for ``free``)."""
    rank = getattr(model, "funnel_rank_", None)
    return np.arange(len(model.startprob_)) if rank is None else np.argsort(rank)


def fit_stages(enc: Encoded, K: int, *, topology: str, restarts: int, seed, max_iter: int,
               tol: float, engine: str, warmup: int | None = None, progress=None) -> StageFit:
    """EM for K stages on encoded journeys, best of ``restarts`` random starts."""
    n_x = enc.n_symbols // _NS
    counts = np.bincount(enc.codes, weights=np.repeat(enc.weight, np.diff(enc.offsets)),
                         minlength=enc.n_symbols).reshape(n_x, _NS)
    x_freq = counts.sum(1) / max(counts.sum(), 1.0)
    e_freq = counts[:, :4].sum(0) / max(counts[:, :4].sum(), 1.0)
    start_mask, trans_mask = topology_masks(K, topology)

    def emission_init(rng):
        em_ = (x_freq + 1e-3) * rng.lognormal(0.0, 1.0, (K, n_x))
        ex = (e_freq + 1e-3) * rng.lognormal(0.0, 0.5, (K, 4))
        return combine(em_ / em_.sum(1, keepdims=True), ex / ex.sum(1, keepdims=True))

    def emission_update(c):
        return combine(*split(c, n_x))

    fit = hmm.fit_hmm(enc.codes, enc.offsets, K, enc.n_symbols, enc.weight, restarts=restarts,
                      seed=seed, max_iter=max_iter, tol=tol, start_mask=start_mask,
                      trans_mask=trans_mask, engine=engine, emission_init=emission_init,
                      emission_update=emission_update, warmup=warmup, progress=progress)
    emission, exit_ = split(fit.params.emissionprob, n_x)
    used_x, used_e = counts.sum(1) > 0, counts[:, :4].sum(0) > 0
    n_par = hmm.n_free_parameters(hmm.HMMParams(fit.params.startprob, fit.params.transmat,
                                                emission), start_mask=start_mask,
                                  trans_mask=trans_mask, symbols_used=used_x)
    n_par += K * (int(used_e.sum()) - 1)
    return StageFit(fit.params.startprob, fit.params.transmat, emission, exit_,
                    fit.log_likelihood, int(n_par), fit.history, fit.n_iter, fit.converged)


def mean_position(fit: StageFit, enc: Encoded) -> np.ndarray:
    """Posterior mean step index (0 = first step of a journey) of each stage, shape (K,)."""
    e = hmm.forward_backward(enc.codes, enc.offsets, fit.params, enc.weight, posteriors=True)
    lengths = np.diff(enc.offsets)
    pos = np.arange(len(enc.codes)) - np.repeat(enc.offsets[:-1], lengths)
    w = np.repeat(enc.weight, lengths)[:, None] * e.posteriors
    return (w * pos[:, None]).sum(0) / np.maximum(w.sum(0), 1e-300)


def canonical_order(fit: StageFit, enc: Encoded
                    ) -> tuple[StageFit, np.ndarray, np.ndarray]:
    """Stages sorted by posterior mean position in the journey (ties keep their order).

    Returns the permuted fit, the sorted mean positions and the order (fitted stage index of
    each new stage).
    """
    mean_pos = mean_position(fit, enc)
    order = np.argsort(mean_pos, kind="stable")
    return permute(fit, order), mean_pos[order], order


def permute(fit: StageFit, order: np.ndarray) -> StageFit:
    return StageFit(fit.startprob[order], fit.transmat[np.ix_(order, order)],
                    fit.emission[order], fit.exit[order], fit.log_likelihood, fit.n_parameters,
                    fit.history, fit.n_iter, fit.converged)


def absorption(fit: StageFit) -> np.ndarray:
    """P(the journey ends in conversion, churn, dropoff | at a step in stage k), shape (K, 3).

    Solves ``v = exit[:, o] + exit[:, continue] * (transmat @ v)`` for each outcome ``o``.
    """
    K = len(fit.startprob)
    lhs = np.eye(K) - fit.exit[:, :1] * fit.transmat
    v, *_ = np.linalg.lstsq(lhs, fit.exit[:, 1:], rcond=None)
    return np.clip(v, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# The model


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

    Examples
    --------
    >>> from journeymodel.data.journeys import journeys_from_codes
    >>> js = journeys_from_codes([["ad", "web"], ["ad"], ["web", "web"]] * 20,
    ...                          ["conversion", "dropoff", "conversion"] * 20)
    >>> m = StageModel(n_stages=2, seed=0).fit(js)
    >>> m.transmat_.shape, len(m.stage_names_)
    ((2, 2), 2)

    References
    ----------
    Rabiner (1989); Helske and Helske (2019), seqHMM. See the module docstring.
    """

    model_type = "stages"
    schema_version = 1

    def __init__(self, n_stages: int | str = 4, topology: str = "free", restarts: int = 3,
                 seed: int = 0, max_iter: int = 500, tol: float = 1e-6, engine: str = "numba",
                 auto_range: list[int] | tuple[int, int] = (2, 8),
                 warmup: int | None = 30) -> None:
        self.n_stages = n_stages
        self.topology = topology
        self.restarts = restarts
        self.seed = seed
        self.max_iter = max_iter
        self.tol = tol
        self.engine = engine
        self.auto_range = list(auto_range)
        self.warmup = warmup

    # -- fitting -------------------------------------------------------------------------------
    def _check_params(self) -> list[int]:
        if self.topology not in TOPOLOGIES:
            raise OptionError(f"topology must be one of {TOPOLOGIES} (got {self.topology!r})")
        if self.engine not in hmm.ENGINES:
            raise OptionError(f"engine must be one of {hmm.ENGINES} (got {self.engine!r})")
        if int(self.restarts) < 1 or int(self.max_iter) < 1:
            raise OptionError(f"restarts and max_iter must be >= 1 "
                              f"(got {self.restarts}, {self.max_iter})")
        if self.n_stages == "auto":
            lo, hi = (int(v) for v in self.auto_range)
            if not 1 <= lo <= hi:
                raise OptionError(f"auto_range must be two numbers 1 <= low <= high "
                                  f"(got {self.auto_range})")
            return list(range(lo, hi + 1))
        try:
            k = int(self.n_stages)
        except (TypeError, ValueError):
            k = 0
        if k < 1 or str(k) != str(self.n_stages).strip():
            raise OptionError(f"n_stages must be a whole number >= 1 or 'auto' "
                              f"(got {self.n_stages!r})")
        return [k]

    def fit(self, journeys: JourneySet, *, progress=None) -> Self:
        """Fit by EM (every K of ``auto_range`` when ``n_stages="auto"``).

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
        ks = self._check_params()
        symbols = (*journeys.touchpoints, DIRECT)
        enc = encode(journeys, symbols)
        if enc.n_obs <= 0:
            raise InputError("no journey has a touchpoint or an outcome to fit stages to "
                             f"({journeys.n_journeys} journeys, all empty and censored)")
        rng = np.random.default_rng(self.seed)
        rows, best = [], None
        for K, child in zip(ks, rng.spawn(len(ks)), strict=True):
            report = None if progress is None else (
                lambda r, f, K=K: progress(f"K={K} restart {r + 1}/{self.restarts}: "
                                           f"log-likelihood {f.log_likelihood:.2f} "
                                           f"({f.n_iter} iterations)"))
            fit = fit_stages(enc, K, topology=self.topology, restarts=int(self.restarts),
                             seed=child, max_iter=int(self.max_iter), tol=float(self.tol),
                             engine=self.engine, warmup=self.warmup, progress=report)
            crit = _criteria(fit, enc.n_obs)
            rows.append({"n_stages": K, "log_likelihood": fit.log_likelihood,
                         "aic": crit[0], "bic": crit[1], "n_parameters": fit.n_parameters})
            if best is None or crit[1] < best[1][1]:
                best = (fit, crit)
        # both topologies number the stages in journey order (the funnel's main flow forward);
        # funnel_rank_ keeps each stage's place in the funnel structure as fitted
        fit, mean_pos, order = canonical_order(best[0], enc)
        self.funnel_rank_ = np.asarray(order, np.int64) if self.topology == "funnel" else None
        self._set_fit(fit, mean_pos, enc.n_obs, journeys)
        self.selection_ = pd.DataFrame(rows) if self.n_stages == "auto" else None
        self._remember(journeys)
        self.experience_ = self._experience(journeys)
        return self

    def _experience(self, journeys: JourneySet) -> xr.Dataset:
        """Emotion curves with the stages' curve (posterior stage probability per event)."""
        from journeymodel.analysis.experience import journey_experience

        enc = encode(journeys, self.symbols_, dedupe=False)
        post = hmm.forward_backward(enc.codes, enc.offsets, self.params_,
                                    posteriors=True).posteriors
        real = enc.codes // _NS < len(journeys.touchpoints)  # not an added (direct) step
        if int(real.sum()) != journeys.n_events:  # pragma: no cover - encode keeps every event
            raise AssertionError("stage posteriors do not line up with the events")
        return journey_experience(journeys, stage_posterior=post[real],
                                  stage_names=list(self.stage_names_))

    def _set_fit(self, fit: StageFit, mean_pos: np.ndarray, n_obs: float,
                 journeys: JourneySet) -> None:
        self.startprob_, self.transmat_ = fit.startprob, fit.transmat
        self.emissionprob_, self.exitprob_ = fit.emission, fit.exit
        self.log_likelihood_, self.n_parameters_ = float(fit.log_likelihood), fit.n_parameters
        self.n_observations_ = float(n_obs)
        self.aic_, self.bic_ = _criteria(fit, n_obs)
        self.history_ = np.asarray(fit.history, np.float64)
        self.n_iter_, self.converged_ = int(fit.n_iter), bool(fit.converged)
        self.mean_position_ = np.asarray(mean_pos, np.float64)
        self.symbols_ = (*journeys.touchpoints, DIRECT)
        self.timing_ = _timing(journeys)
        self.stage_names_ = stage_names(self)

    @property
    def n_stages_(self) -> int:
        self._check_fitted()
        return len(self.startprob_)

    def _stage_fit(self) -> StageFit:
        return StageFit(self.startprob_, self.transmat_, self.emissionprob_, self.exitprob_,
                        self.log_likelihood_, self.n_parameters_, list(self.history_),
                        self.n_iter_, self.converged_)

    @property
    def params_(self) -> hmm.HMMParams:
        """The combined-symbol HMM parameters used by :mod:`journeymodel.fit.hmm`."""
        self._check_fitted()
        return self._stage_fit().params

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
        short = _short_names(self.n_stages_)
        frame = pd.DataFrame({
            "journey": np.repeat(enc.journey, lengths),
            "step": np.arange(len(enc.codes)) - np.repeat(enc.offsets[:-1], lengths),
            "touchpoint": np.asarray(self.symbols_, dtype=object)[enc.codes // _NS],
            "viterbi_stage": np.asarray(short, dtype=object)[path]})
        for k, name in enumerate(short):
            frame[f"p_{name}"] = post[:, k]
        return frame

    def score(self, journeys: JourneySet) -> float:
        """Weighted log-likelihood of ``journeys`` under the fitted model."""
        self._check_fitted()
        enc = encode(journeys, self.symbols_)
        return hmm.forward_backward(enc.codes, enc.offsets, self.params_, enc.weight).total(
            enc.weight)

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
        p_out = ends + p_go[:, None] * (nxt @ absorption(self._stage_fit()))
        tp = nxt @ self.emissionprob_[:, :-1]
        tp /= np.maximum(tp.sum(1, keepdims=True), 1e-300)
        return self._prediction_result(js, current, p_out, tp, int((~known).sum()))

    def _prediction_result(self, js, current, p_out, tp, n_unknown) -> Result:
        short = _short_names(self.n_stages_)
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
        from ``seed`` (see :func:`simulate_chunk`); at most
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
        return _summary(self)

    # -- persistence ---------------------------------------------------------------------------
    def _to_tree(self) -> xr.DataTree:
        return _to_tree(self)

    def _from_tree(self, tree: xr.DataTree) -> None:
        _from_tree(self, tree)


# ---------------------------------------------------------------------------------------------
# Helpers: criteria, names, timing, simulation output


def _criteria(fit: StageFit, n_obs: float) -> tuple[float, float]:
    """(AIC, BIC); BIC's sample size is the weighted number of journey steps."""
    return (2.0 * fit.n_parameters - 2.0 * fit.log_likelihood,
            fit.n_parameters * float(np.log(max(n_obs, 1.0))) - 2.0 * fit.log_likelihood)


def _short_names(K: int) -> list[str]:
    return [f"S{k + 1}" for k in range(K)]


def stage_names(model: StageModel, top: int = 2) -> list[str]:
    """``S2: convert (store, call)``: a role read off the parameters, and the top touchpoints.

    Roles: ``convert`` for the stage most likely to end in a conversion after a touchpoint,
    ``churn risk`` for the highest churn exit, ``entry`` for the most likely first stage,
    ``engage`` otherwise (first rule that applies, each role used once, the next stage in line
    when the best is taken; ``convert`` and ``churn risk`` only when the rate of the stage that
    gets the role is at least 1.5 times the median stage's).
    """
    K = len(model.startprob_)
    roles = ["engage"] * K
    rules = [("convert", model.exitprob_[:, 1], 1.5), ("churn risk", model.exitprob_[:, 2], 1.5),
             ("entry", model.startprob_, 0.0)]
    taken: set[int] = set()
    for role, score, lift in rules:
        if K < 2:
            break
        k = int(np.argmax(np.where(np.isin(np.arange(K), list(taken)), -1.0, score)))
        # the lift is checked on the stage that gets the role: a stage already named for
        # another role does not lend its rate to the runner-up
        if k not in taken and score[k] > 0 and score[k] >= lift * np.median(score):
            roles[k] = role
            taken.add(k)
    names = []
    for k, short in enumerate(_short_names(K)):
        order = np.argsort(-model.emissionprob_[k, :-1], kind="stable")[:top]
        tps = ", ".join(model.symbols_[i] for i in order)
        names.append(f"{short}: {roles[k]} ({tps})")
    return names


def _timing(journeys: JourneySet) -> dict[str, float]:
    """Mean gap between consecutive touchpoints of a journey, first start and time span."""
    if journeys.time_kind == "none" or journeys.n_events < 2:
        return {"step_gap": float("nan"), "origin": float("nan"), "span": float("nan")}
    same = journeys.journey_of_event[1:] == journeys.journey_of_event[:-1]
    gaps = np.diff(journeys.times)[same]
    origin = float(np.nanmin(journeys.start))
    until = journeys.observed_until if np.isfinite(journeys.observed_until) else float(
        np.nanmax(journeys.end))
    return {"step_gap": float(np.nanmean(gaps)) if len(gaps) else 1.0, "origin": origin,
            "span": float(max(until - origin, 0.0))}


def simulate_chunk(model: StageModel, n: int, rng: np.random.Generator, *, offset: int = 0,
                   n_total: int | None = None, max_length: int = 200) -> pd.DataFrame:
    """``n`` journeys drawn from the fitted HMM (all at once, vectorised across journeys) as a
    canonical event log, customers numbered from ``offset + 1`` of ``n_total``
    (:func:`journeymodel.models.simulate.simulated_ids`). A journey ends at its first outcome symbol
    or after ``max_length`` touchpoints."""
    from journeymodel.models.simulate import simulated_ids

    B = model.params_.emissionprob.reshape(model.n_stages_, -1, _NS).copy()
    B[:, :, _UNKNOWN] = 0.0
    p = hmm.HMMParams(model.startprob_, model.transmat_, B.reshape(model.n_stages_, -1))
    stops = [x * _NS + e for x in range(len(model.symbols_)) for e in (1, 2, 3)]
    codes, offsets, _ = hmm.sample(p, int(n), stop_symbols=stops, max_length=max_length,
                                   seed=rng)
    log = _event_log(codes, offsets, model.symbols_, model.timing_, model.journeys_, rng)
    ids = simulated_ids(int(n), offset=offset, n_total=n_total)
    log["customer_id"] = ids[log["customer_id"].to_numpy()]
    return log


def _event_log(codes, offsets, symbols, timing, meta, rng) -> pd.DataFrame:
    """Simulated combined-symbol sequences as a canonical event log (vectorised); customers are
    the journeys' positions 0 .. n-1 (:func:`simulate_chunk` names them)."""
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    x, status = codes // _NS, codes % _NS
    journey = np.repeat(np.arange(n), lengths)
    is_tp = symbols_arr(symbols)[x] != DIRECT
    out_rows = np.isin(status, (1, 2))  # conversion, churn rows (a dropoff leaves none)
    label = np.where(status == 1, OUTCOMES[CONVERSION], OUTCOMES[CHURN])
    step = np.arange(len(codes)) - np.repeat(offsets[:-1], lengths)
    gap, origin, span = timing["step_gap"], timing["origin"], timing["span"]
    if np.isfinite(gap):
        start = origin + rng.random(n) * span
        t = start[journey] + _within_journey_cumsum(rng.exponential(gap, len(codes)), offsets)
    else:
        t = step.astype(np.float64)
    eps = 60.0 if meta.time_kind == "datetime" else 0.0
    times = np.concatenate([t[is_tp], t[out_rows] + eps])
    who = np.concatenate([journey[is_tp], journey[out_rows]])
    what = np.concatenate([symbols_arr(symbols)[x[is_tp]], label[out_rows]])
    order = np.lexsort((np.concatenate([np.zeros(is_tp.sum()), np.ones(out_rows.sum())]),
                        times, who))
    if meta.time_kind == "datetime":
        ts = pd.to_datetime(times[order], unit="s", utc=True)
    elif meta.time_kind == "period":
        ts = np.floor(times[order]).astype(np.int64)
    else:
        ts = times[order].astype(np.int64)
    return pd.DataFrame({"customer_id": who[order], "timestamp": ts,
                         "touchpoint": what[order]})


def symbols_arr(symbols) -> np.ndarray:
    return np.asarray(symbols, dtype=object)


def _within_journey_cumsum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each journey (exclusive of the current value)."""
    total = np.cumsum(values) - values
    return total - np.repeat(total[offsets[:-1]] if len(values) else np.zeros(0),
                             np.diff(offsets))


# ---------------------------------------------------------------------------------------------
# Summary and persistence


def _stage_table(model: StageModel) -> pd.DataFrame:
    ends = absorption(model._stage_fit())
    dwell = 1.0 / np.maximum(1.0 - model.exitprob_[:, 0] * np.diag(model.transmat_), 1e-12)
    return pd.DataFrame({
        "stage": model.stage_names_, "start": model.startprob_,
        "conversion_rate": model.exitprob_[:, 1], "churn_rate": model.exitprob_[:, 2],
        "dropoff_rate": model.exitprob_[:, 3], "p_convert_eventually": ends[:, 0],
        "expected_dwell": dwell, "mean_position": model.mean_position_}).set_index("stage")


def _summary(model: StageModel) -> Result:
    short = _short_names(model.n_stages_)
    stages = _stage_table(model)
    trans = pd.DataFrame(model.transmat_, index=pd.Index(short, name="from \\ to"),
                         columns=short)
    # touchpoints as rows: a column per stage fits a terminal, a column per touchpoint not
    profile = pd.DataFrame(model.emissionprob_.T, index=pd.Index(list(model.symbols_),
                                                                  name="touchpoint"),
                           columns=short)
    if not (profile.loc[DIRECT] > 0).any():
        profile = profile.drop(index=DIRECT)
    stage_json = []
    for k, (name, row) in enumerate(stages.iterrows()):
        order = np.argsort(-model.emissionprob_[k, :-1], kind="stable")[:3]
        stage_json.append({
            "name": name, "short": short[k],
            "top_touchpoints": [{"touchpoint": model.symbols_[i],
                                 "probability": float(model.emissionprob_[k, i])}
                                for i in order],
            **{c: float(row[c]) for c in stages.columns},
            "emission": dict(zip(model.symbols_, model.emissionprob_[k].tolist(),
                                 strict=True))})
    back = float(np.tril(model.transmat_, -1).sum(1).mean()) if model.n_stages_ > 1 else 0.0
    payload: dict[str, Any] = {
        "n_stages": model.n_stages_, "log_likelihood": model.log_likelihood_,
        "aic": model.aic_, "bic": model.bic_, "n_parameters": model.n_parameters_,
        "n_observations": model.n_observations_, "n_iter": model.n_iter_,
        "converged": model.converged_, "topology": model.topology, "stages": stage_json,
        "transitions": {a: dict(zip(short, row.tolist(), strict=True))
                        for a, row in zip(short, model.transmat_, strict=True)},
        "selection": None if model.selection_ is None else model.selection_.to_dict(
            orient="records")}
    shown = stages.rename(columns={
        "conversion_rate": "convert", "churn_rate": "churn", "dropoff_rate": "dropoff",
        "p_convert_eventually": "p_convert", "expected_dwell": "dwell",
        "mean_position": "position"})
    tables = [("Stages: exit rates after each touchpoint (convert, churn, dropoff), "
               "P(convert) from the stage, dwell and mean position in steps", shown),
              ("Stage transitions, given the journey continues (row: from)", trans),
              ("Emission profile: touchpoint probabilities per stage (column: stage)", profile)]
    if model.selection_ is not None:
        tables.append(("Choosing the number of stages (lowest BIC kept)",
                       model.selection_.set_index("n_stages")))
    from journeymodel.analysis.experience import emotion_summary

    payload["emotion"], emotion_tables = emotion_summary(getattr(model, "experience_", None))
    tables += emotion_tables[:1]  # the stages' curve; touchpoints are in `pain-points`
    notes = [counts_text(model),
             f"log-likelihood {model.log_likelihood_:,.2f}, AIC {model.aic_:,.1f}, "
             f"BIC {model.bic_:,.1f}, {model.n_parameters_} parameters; EM "
             f"{'converged' if model.converged_ else 'did NOT converge'} in "
             f"{model.n_iter_} iterations",
             f"backward moves: {back:.1%} of a stage's transitions on average go to an "
             "earlier stage"]
    structure = funnel_structure(model)
    if model.topology == "funnel":
        payload["funnel_order"] = [short[k] for k in structure]
        if (structure != np.arange(model.n_stages_)).any():
            notes.append("funnel fitted as " + " > ".join(short[k] for k in structure) +
                         " (starts in the first half, moves forward or one stage back in "
                         "that order); stages are numbered in journey order (mean position)")
    kinds = {c: "probability" for c in ("start", "convert", "churn", "dropoff",
                                        "p_convert", *short)}
    return Result(json=payload, tables=tables, notes=notes, kinds=kinds)


def counts_text(model: StageModel) -> str:
    """One line: what the stages model counts, and why it can differ from ``describe``."""
    oc = model.journeys_.outcome_counts or {}
    journeys = sum(oc.values()) if oc else model.journeys_.n_journeys
    line = (f"counts: {model.n_stages_} stages fitted to {model.n_observations_:,.0f} steps of "
            f"{journeys:,.0f} journeys ({oc.get('conversion', 0):,.0f} conversions, as "
            "`describe` counts them)")
    if oc.get("censored"):
        line += (f"; the {oc['censored']:,.0f} in-flight journeys add their steps but no "
                 "outcome")
    return line + "; a journey with an outcome but no touchpoint is one (direct) step"


def _to_tree(model: StageModel) -> xr.DataTree:
    import xarray as xr

    from journeymodel.io.persist import to_attr

    short = _short_names(model.n_stages_)
    coords = {"stage": short, "from_stage": short, "to_stage": short,
              "touchpoint": list(model.symbols_), "exit": list(EXITS)}
    ds = xr.Dataset({
        "startprob": ("stage", model.startprob_),
        "transmat": (("from_stage", "to_stage"), model.transmat_),
        "emissionprob": (("stage", "touchpoint"), model.emissionprob_),
        "exitprob": (("stage", "exit"), model.exitprob_),
        "mean_position": ("stage", model.mean_position_),
        "stage_name": ("stage", np.asarray(model.stage_names_, dtype=object)),
        "history": ("iteration", model.history_)}, coords=coords)
    if getattr(model, "funnel_rank_", None) is not None:
        ds["funnel_rank"] = ("stage", np.asarray(model.funnel_rank_, np.int64))
    ds.attrs["fit"] = to_attr({
        "log_likelihood": model.log_likelihood_, "n_parameters": model.n_parameters_,
        "n_observations": model.n_observations_, "n_iter": model.n_iter_,
        "converged": model.converged_, "timing": model.timing_})
    tree = xr.DataTree(ds, children={"experience": xr.DataTree(model.experience_)})
    if model.selection_ is not None:
        sel = xr.Dataset({c: ("candidate", model.selection_[c].to_numpy())
                          for c in model.selection_.columns})
        tree["selection"] = xr.DataTree(sel)
    return tree


def _from_tree(model: StageModel, tree: xr.DataTree) -> None:
    import json

    ds = tree.to_dataset()
    fit = json.loads(ds.attrs["fit"])
    model.symbols_ = tuple(str(s) for s in ds["touchpoint"].values)
    model.startprob_ = ds["startprob"].values
    model.transmat_ = ds["transmat"].values
    model.emissionprob_ = ds["emissionprob"].values
    model.exitprob_ = ds["exitprob"].values
    model.mean_position_ = ds["mean_position"].values
    model.stage_names_ = [str(s) for s in ds["stage_name"].values]
    # files from before stages were renumbered kept the funnel's own order
    model.funnel_rank_ = (ds["funnel_rank"].values.astype(np.int64) if "funnel_rank" in ds
                          else np.arange(len(model.startprob_)) if model.topology == "funnel"
                          else None)
    model.history_ = ds["history"].values
    model.log_likelihood_ = float(fit["log_likelihood"])
    model.n_parameters_ = int(fit["n_parameters"])
    model.n_observations_ = float(fit["n_observations"])
    model.n_iter_, model.converged_ = int(fit["n_iter"]), bool(fit["converged"])
    model.timing_ = {k: float("nan") if v is None else float(v)
                     for k, v in fit["timing"].items()}
    model.aic_, model.bic_ = _criteria(model._stage_fit(), model.n_observations_)
    model.experience_ = (tree["experience"].to_dataset(inherit=False)
                         if "experience" in tree.children else None)
    model.selection_ = None
    if "selection" in tree.children:
        sel = tree["selection"].to_dataset()
        model.selection_ = pd.DataFrame({c: sel[c].values for c in
                                         ("n_stages", "log_likelihood", "aic", "bic",
                                          "n_parameters")})
