"""What a fitted stages model shows: stage names and roles, the stage table, the summary
(``journeymodel inspect``) and the counts line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.models.base import Result
from journeymodel.models.stages.fit import absorption
from journeymodel.stats.sequences import DIRECT

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.stages.model import StageModel


def short_names(K: int) -> list[str]:
    """``S1`` .. ``SK``."""
    return [f"S{k + 1}" for k in range(K)]


def funnel_structure(model: StageModel) -> np.ndarray:
    """Stage indices in the order of the fitted funnel (``arange(K)`` for ``free``)."""
    rank = getattr(model, "funnel_rank_", None)
    return np.arange(len(model.startprob_)) if rank is None else np.argsort(rank)


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
    for k, short in enumerate(short_names(K)):
        order = np.argsort(-model.emissionprob_[k, :-1], kind="stable")[:top]
        tps = ", ".join(model.symbols_[i] for i in order)
        names.append(f"{short}: {roles[k]} ({tps})")
    return names


def stage_table(model: StageModel) -> pd.DataFrame:
    """One row per stage: start, exit rates, P(convert eventually), dwell, mean position."""
    ends = absorption(model.stage_fit())
    dwell = 1.0 / np.maximum(1.0 - model.exitprob_[:, 0] * np.diag(model.transmat_), 1e-12)
    return pd.DataFrame({
        "stage": model.stage_names_, "start": model.startprob_,
        "conversion_rate": model.exitprob_[:, 1], "churn_rate": model.exitprob_[:, 2],
        "dropoff_rate": model.exitprob_[:, 3], "p_convert_eventually": ends[:, 0],
        "expected_dwell": dwell, "mean_position": model.mean_position_}).set_index("stage")


def _stage_json(model: StageModel, stages: pd.DataFrame, short: list[str]) -> list[dict]:
    out = []
    for k, (name, row) in enumerate(stages.iterrows()):
        order = np.argsort(-model.emissionprob_[k, :-1], kind="stable")[:3]
        out.append({
            "name": name, "short": short[k],
            "top_touchpoints": [{"touchpoint": model.symbols_[i],
                                 "probability": float(model.emissionprob_[k, i])}
                                for i in order],
            **{c: float(row[c]) for c in stages.columns},
            "emission": dict(zip(model.symbols_, model.emissionprob_[k].tolist(),
                                 strict=True))})
    return out


def summary(model: StageModel) -> Result:
    """Stages (names, touchpoints, exits, dwell), transitions, emission profile, selection and
    the stages' emotion curve, as tables, JSON and notes."""
    short = short_names(model.n_stages_)
    stages = stage_table(model)
    trans = pd.DataFrame(model.transmat_, index=pd.Index(short, name="from \\ to"),
                         columns=short)
    # touchpoints as rows: a column per stage fits a terminal, a column per touchpoint not
    profile = pd.DataFrame(model.emissionprob_.T, index=pd.Index(list(model.symbols_),
                                                                  name="touchpoint"),
                           columns=short)
    if not (profile.loc[DIRECT] > 0).any():
        profile = profile.drop(index=DIRECT)
    payload: dict[str, Any] = {
        "n_stages": model.n_stages_, "log_likelihood": model.log_likelihood_,
        "aic": model.aic_, "bic": model.bic_, "n_parameters": model.n_parameters_,
        "n_observations": model.n_observations_, "n_iter": model.n_iter_,
        "converged": model.converged_, "topology": model.topology,
        "stages": _stage_json(model, stages, short),
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
    notes = [counts_text(model), *_fit_notes(model, short, payload)]
    kinds = {c: "probability" for c in ("start", "convert", "churn", "dropoff",
                                        "p_convert", *short)}
    return Result(json=payload, tables=tables, notes=notes, kinds=kinds)


def _fit_notes(model: StageModel, short: list[str], payload: dict[str, Any]) -> list[str]:
    """Fit quality, backward moves and (funnel) the fitted funnel order; adds
    ``funnel_order`` to ``payload`` for a funnel."""
    back = float(np.tril(model.transmat_, -1).sum(1).mean()) if model.n_stages_ > 1 else 0.0
    notes = [f"log-likelihood {model.log_likelihood_:,.2f}, AIC {model.aic_:,.1f}, "
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
    return notes


def counts_text(model: StageModel) -> str:
    """One line: what the stages model counts, and why it can differ from ``describe``."""
    oc = model.journeys_.outcome_counts or {}
    journeys = sum(oc.values()) if oc else model.journeys_.n_journeys
    line = (f"counts: {model.n_stages_} stages fitted to {model.n_observations_:,.0f} steps of "
            f"{journeys:,.0f} journeys ({oc.get('conversion', 0):,.0f} conversions, as "
            "`describe` counts them)")
    if oc.get("censored") and getattr(model, "censored_survival_", False):
        line += (f"; the {oc['censored']:,.0f} in-flight journeys add their steps, and their "
                 "last step its chance of moving on or ending given the time already spent "
                 "silent")
    elif oc.get("censored"):
        line += (f"; the {oc['censored']:,.0f} in-flight journeys add their steps but no "
                 "outcome")
    return line + "; a journey with an outcome but no touchpoint is one (direct) step"
