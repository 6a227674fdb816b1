"""A fitted segment model as an xarray DataTree (what its model file holds) and back.

Root: the segments' shares, names, processes (``theta`` for Markov chains; ``startprob``,
``transmat``, ``emissionprob``, ``exitprob`` for stages HMMs) and profile (customers, journeys,
outcomes, touchpoint steps), the EM history and the fit's figures (JSON attribute ``fit``).
Groups: ``paths`` and ``transitions`` (tables per segment), ``selection`` (the K tried) and,
with timestamps, ``holding`` (the holding times the in-flight journeys' survival term reads;
``censored_survival`` in ``fit`` says whether the fit used it, issue 17). No customer ids are
stored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from journeymodel.data.journeyset import OUTCOMES
from journeymodel.models.segments.em import CHAIN_EXITS, criteria
from journeymodel.models.segments.profile import Profile
from journeymodel.stats.holding import HoldingTimes
from journeymodel.stats.sequences import EXITS

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from journeymodel.models.segments.model import SegmentModel

#: The tables stored as groups, with their text columns.
TABLES = {"paths": ("kind", "path"), "transitions": ("from", "to")}


def _table(frame: pd.DataFrame, text: tuple[str, ...]):
    import xarray as xr

    return xr.Dataset({c: ("row", frame[c].to_numpy(dtype=object if c in text else None))
                       for c in frame.columns})


def to_tree(model: SegmentModel) -> xr.DataTree:
    """The model's fitted state as a DataTree (see the module docstring)."""
    import xarray as xr

    from journeymodel.io.persist import to_attr

    p = model.profile_
    names = list(model.segment_names_)
    coords = {"segment": names, "touchpoint": list(model.symbols_),
              "outcome": list(OUTCOMES)}
    ds = xr.Dataset({
        "weight": ("segment", model.weights_),
        "customers": ("segment", p.customers), "journeys": ("segment", p.journeys),
        "outcomes": (("segment", "outcome"), p.outcomes),
        "steps": (("segment", "touchpoint"), p.touchpoints),
        "history": ("iteration", model.history_)}, coords=coords)
    if model.kind == "markov":
        ds = ds.assign_coords({"from_state": [*model.symbols_, "(start)"],
                               "to_state": [*model.symbols_, *CHAIN_EXITS]})
        ds["theta"] = (("segment", "from_state", "to_state"), model.theta_)
    else:
        stages = [f"S{s + 1}" for s in range(model.startprob_.shape[1])]
        ds = ds.assign_coords({"stage": stages, "from_stage": stages, "to_stage": stages,
                               "exit": list(EXITS)})
        ds["startprob"] = (("segment", "stage"), model.startprob_)
        ds["transmat"] = (("segment", "from_stage", "to_stage"), model.transmat_)
        ds["emissionprob"] = (("segment", "stage", "touchpoint"), model.emissionprob_)
        ds["exitprob"] = (("segment", "stage", "exit"), model.exitprob_)
    ds.attrs["fit"] = to_attr({
        "log_likelihood": model.log_likelihood_, "n_parameters": model.n_parameters_,
        "n_customers": model.n_customers_, "n_iter": model.n_iter_,
        "converged": model.converged_,
        "censored_survival": bool(getattr(model, "censored_survival_", False))})
    children = {name: xr.DataTree(_table(getattr(p, name), text))
                for name, text in TABLES.items()}
    sel = model.selection_
    children["selection"] = xr.DataTree(xr.Dataset(
        {c: ("candidate", sel[c].to_numpy()) for c in sel.columns}))
    if getattr(model, "holding_", None) is not None:
        children["holding"] = xr.DataTree(model.holding_.to_dataset())
    return xr.DataTree(ds, children=children)


def from_tree(model: SegmentModel, tree: xr.DataTree) -> None:
    """Set ``model``'s fitted attributes from ``tree`` (as :func:`to_tree` wrote it)."""
    ds = tree.to_dataset(inherit=False)
    fit = json.loads(ds.attrs["fit"])
    model.symbols_ = tuple(str(s) for s in ds["touchpoint"].values)
    model.segment_names_ = [str(s) for s in ds["segment"].values]
    model.weights_ = ds["weight"].values.astype(np.float64)
    if model.kind == "markov":
        model.theta_ = ds["theta"].values.astype(np.float64)
    else:
        for name in ("startprob", "transmat", "emissionprob", "exitprob"):
            setattr(model, f"{name}_", ds[name].values.astype(np.float64))
    tables = {}
    for name, text in TABLES.items():
        g = tree[name].to_dataset(inherit=False)
        tables[name] = pd.DataFrame({c: (g[c].values.astype(str) if c in text
                                         else g[c].values) for c in g.data_vars})
    model.profile_ = Profile(ds["customers"].values, ds["journeys"].values,
                             ds["outcomes"].values, ds["steps"].values, tables["paths"],
                             tables["transitions"])
    model.history_ = ds["history"].values
    model.log_likelihood_ = float(fit["log_likelihood"])
    model.n_parameters_, model.n_customers_ = int(fit["n_parameters"]), int(fit["n_customers"])
    model.n_iter_, model.converged_ = int(fit["n_iter"]), bool(fit["converged"])
    model.censored_survival_ = bool(fit.get("censored_survival", False))  # issue 17 on
    model.holding_ = (HoldingTimes.from_dataset(tree["holding"].to_dataset(inherit=False))
                      if "holding" in tree.children else None)
    model.aic_, model.bic_ = criteria(model.log_likelihood_, model.n_parameters_,
                                      model.n_customers_)
    sel = tree["selection"].to_dataset(inherit=False)
    model.selection_ = pd.DataFrame({c: sel[c].values for c in
                                     ("n_segments", "log_likelihood", "aic", "bic",
                                      "n_parameters")})
