"""What a fitted segment model shows (``journeymodel inspect``): the segments side by side, their
paths and transitions, and every number of segments tried."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeymodel.models.base import Result

if TYPE_CHECKING:  # pragma: no cover
    from journeymodel.models.segments.model import SegmentModel


def segment_table(model: SegmentModel) -> pd.DataFrame:
    """One row per segment: share, expected customers and journeys, outcome rates, the
    touchpoints that distinguish it."""
    p = model.profile_
    ended = np.maximum(p.outcomes[:, :3].sum(axis=1), 1e-300)
    return pd.DataFrame({
        "segment": model.segment_names_, "share": model.weights_, "customers": p.customers,
        "journeys_per_customer": p.journeys / np.maximum(p.customers, 1e-300),
        "conversion_rate": p.conversion_rate, "churn_rate": p.outcomes[:, 1] / ended,
        "top_touchpoints": [", ".join(t["touchpoint"] for t in tops)
                            for tops in top_touchpoints(model)]})


def top_touchpoints(model: SegmentModel, n: int = 3) -> list[list[dict[str, Any]]]:
    """Each segment's ``n`` most over-represented touchpoints: share of its steps and lift
    (that share over the share among all steps)."""
    steps = model.profile_.touchpoints[:, :-1]
    mix = steps / np.maximum(steps.sum(axis=1, keepdims=True), 1e-300)
    overall = steps.sum(axis=0) / max(steps.sum(), 1e-300)
    lift = np.where(overall > 0, mix / np.where(overall > 0, overall, 1.0), 0.0)
    out = []
    for k in range(len(mix)):
        order = np.lexsort((np.arange(mix.shape[1]), -np.where(mix[k] >= 0.05, lift[k], -1)))
        out.append([{"touchpoint": model.symbols_[i], "share": float(mix[k, i]),
                     "lift": float(lift[k, i])} for i in order[:n] if mix[k, i] > 0])
    return out


def paths_side_by_side(model: SegmentModel, kind: str = "top") -> pd.DataFrame:
    """Rank x segment: the ``kind`` paths (``top`` or ``characteristic``) of each segment with
    their share of its journeys, e.g. ``web > conversion (21%)``."""
    paths = model.profile_.paths
    paths = paths[paths["kind"] == kind]
    ranks = sorted(set(paths["rank"].tolist())) or [1]
    out = pd.DataFrame({"rank": ranks})
    for k, name in enumerate(model.segment_names_):
        mine = paths[paths["segment"] == k].set_index("rank")
        out[name] = [f"{mine.at[r, 'path']} ({mine.at[r, 'share']:.0%})" if r in mine.index
                     else "" for r in ranks]
    return out


def _records(frame: pd.DataFrame, k: int, columns: list[str]) -> list[dict[str, Any]]:
    rows = frame[frame["segment"] == k]
    return [{c: (float(v) if isinstance(v, (float, np.floating)) else
                 int(v) if isinstance(v, (np.integer,)) else v) for c, v in zip(
                     columns, row, strict=True)} for row in rows[columns].itertuples(index=False)]


def summary(model: SegmentModel) -> Result:
    """The inspect result: JSON with the issue's keys, tables for people."""
    table = segment_table(model)
    tops = top_touchpoints(model)
    p = model.profile_
    segments = []
    for k, row in table.iterrows():
        paths = p.paths[p.paths["kind"] == "top"]
        char = p.paths[p.paths["kind"] == "characteristic"]
        segments.append({
            "name": row["segment"], "share": float(row["share"]),
            "customers": float(row["customers"]), "journeys": float(p.journeys[k]),
            "conversion_rate": _num(row["conversion_rate"]),
            "churn_rate": _num(row["churn_rate"]),
            "journeys_per_customer": float(row["journeys_per_customer"]),
            "top_touchpoints": tops[k],
            "top_paths": _records(paths, k, ["path", "journeys", "share", "lift"]),
            "characteristic_paths": _records(char, k, ["path", "journeys", "share", "lift"]),
            "transitions": _records(p.transitions, k, ["from", "to", "probability",
                                                       "journeys"])})
    sel = model.selection_
    payload = {
        "n_segments": model.n_segments_, "kind": model.kind,
        "log_likelihood": model.log_likelihood_, "bic": model.bic_, "aic": model.aic_,
        "n_customers": model.n_customers_, "n_parameters": model.n_parameters_,
        "converged": model.converged_,
        "selection": [{"n_segments": int(r.n_segments), "log_likelihood": float(
            r.log_likelihood), "bic": float(r.bic)} for r in sel.itertuples(index=False)],
        "segments": segments}
    chosen = sel.assign(chosen=np.where(sel["n_segments"] == model.n_segments_, "<-", ""))
    notes = [f"{model.n_segments_} segments of {model.n_customers_:,} customers "
             f"({model.kind}{f', {model.n_stages} stages each' if model.kind == 'hmm' else ''}"
             f"); log-likelihood {model.log_likelihood_:,.1f}, BIC {model.bic_:,.1f}"
             f"{'' if model.converged_ else '; EM did not converge (raise max_iter)'}"]
    if len(sel) > 1:
        notes.append(f"K chosen by BIC among {sel['n_segments'].min()}.."
                     f"{sel['n_segments'].max()}")
    return Result(
        json=payload,
        tables=[("Segments", table),
                ("Characteristic paths (share of the segment's journeys; more common there "
                 "than overall)", paths_side_by_side(model, "characteristic")),
                ("Segments tried (BIC: lower is better)",
                 chosen[["n_segments", "log_likelihood", "bic", "n_parameters", "chosen"]])],
        notes=notes,
        kinds={"share": "probability", "customers": "count", "conversion_rate": "probability",
               "churn_rate": "probability", "journeys_per_customer": "number",
               "top_touchpoints": "text", "log_likelihood": "number", "bic": "number",
               "n_parameters": "count", "segment": "name"})


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
