"""A fitted stages model as an xarray DataTree (what its model file holds) and back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from journeymodel.models.stages.fit import criteria
from journeymodel.models.stages.summary import short_names
from journeymodel.stats.sequences import EXITS

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.models.stages.model import StageModel


def to_tree(model: StageModel) -> xr.DataTree:
    """Parameters per stage, touchpoint and exit; the EM history; the fit's figures as a JSON
    attribute; the experience and (``n_stages="auto"``) the selection as child groups."""
    import xarray as xr

    from journeymodel.io.persist import to_attr

    short = short_names(model.n_stages_)
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
        "converged": model.converged_, "timing": model.timing_,
        "censored_survival": bool(getattr(model, "censored_survival_", False))})
    experience = getattr(model, "experience_", None)  # None when fitted from statistics
    tree = xr.DataTree(ds, children={} if experience is None else {
        "experience": xr.DataTree(experience)})
    if model.selection_ is not None:
        sel = xr.Dataset({c: ("candidate", model.selection_[c].to_numpy())
                          for c in model.selection_.columns})
        tree["selection"] = xr.DataTree(sel)
    return tree


def from_tree(model: StageModel, tree: xr.DataTree) -> None:
    """Set ``model``'s fitted attributes from ``tree`` (as :func:`to_tree` wrote it)."""
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
    model.censored_survival_ = bool(fit.get("censored_survival", False))  # issue 17 on
    model.timing_ = {k: float("nan") if v is None else float(v)
                     for k, v in fit["timing"].items()}
    model.aic_, model.bic_ = criteria(model.stage_fit(), model.n_observations_)
    model.experience_ = (tree["experience"].to_dataset(inherit=False)
                         if "experience" in tree.children else None)
    model.selection_ = None
    if "selection" in tree.children:
        sel = tree["selection"].to_dataset()
        model.selection_ = pd.DataFrame({c: sel[c].values for c in
                                         ("n_stages", "log_likelihood", "aic", "bic",
                                          "n_parameters")})
