"""Per model type checks of model files, and :func:`check_tree`, which runs them on a loaded
file (the shared tools are in :mod:`journeymodel.io.validate`).

Each function reads the layout the model's ``_to_tree`` writes (``models/markov/``,
``models/stages/``, ``models/conversion/``, ``models/churn/``) and fails with a
:class:`~journeymodel.errors.ModelFileError` on the first thing a loaded model could not use
honestly: a missing or mistyped variable, arrays whose shapes disagree, indices out of range,
probabilities that are not finite, not in [0, 1] or whose rows do not sum to 1, counts below 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from journeymodel.choices import SEGMENT_KINDS
from journeymodel.io.validate import NUM, OPT_NUM, Checker, check_common, check_experience

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr


# ---------------------------------------------------------------------------------------------
# Markov


#: The heuristic attributions a Markov model file stores, in order (models/markov/).
HEURISTICS = ("first", "last", "linear")


def check_markov(c: Checker) -> None:
    """States, absorbing outcomes, the sparse transition matrix, counts, dwell, heuristics."""
    import numpy as np

    from journeymodel.stats.transitions import ABSORBING

    ds, attrs = c.root, c.root.attrs
    states = c.var(ds, "state", ("state",), "U")
    n = len(states)
    if n < 1:
        c.fail("the model has no states")
    keys = c.var(ds, "state_key", ("state",), "i").astype(np.int64)
    if n > 1 and not np.all(np.diff(keys) > 0):
        c.fail("state_key must be strictly increasing")
    outcomes = c.var(ds, "outcome", ("outcome",), "U")
    k = len(outcomes)
    if outcomes.tolist() not in (list(ABSORBING[:2]), list(ABSORBING)):
        c.fail(f"outcome must be {list(ABSORBING[:2])} or {list(ABSORBING)} "
               f"(got {outcomes.tolist()})")
    c.probabilities(c.var(ds, "p_conversion", ("state",)), "p_conversion", rows=False)
    c.finite(c.var(ds, "expected_steps", ("state",)), "expected_steps", low=0.0)
    c.finite(c.var(ds, "mean_dwell", ("state",)), "mean_dwell", low=0.0, nan_ok=True)
    c.finite(c.var(ds, "conversion_value", ("state",)), "conversion_value", nan_ok=True)
    c.probabilities(c.var(ds, "absorption", ("state", "outcome")), "absorption")

    # transitions: indices in range, probabilities in [0, 1] summing to 1 per state
    fi = c.var(ds, "from_index", ("transition",), "i").astype(np.int64)
    ti = c.var(ds, "to_index", ("transition",), "i").astype(np.int64)
    _in_range(c, fi, n, "from_index")
    _in_range(c, ti, n + k, "to_index")
    for name in ("from_state", "to_state"):
        c.var(ds, name, ("transition",), "U")
    c.finite(c.var(ds, "concentration", ("transition",)), "concentration", low=0.0)
    p = c.probabilities(c.var(ds, "probability", ("transition",)), "probability", rows=False)
    c.probabilities(p, "transition probabilities", sums=np.bincount(fi, p, minlength=n))

    # observed counts and dwell statistics
    cf = c.var(ds, "count_from", ("observed",), "i").astype(np.int64)
    ct = c.var(ds, "count_to", ("observed",), "i").astype(np.int64)
    _in_range(c, cf, n, "count_from")
    _in_range(c, ct, n + k, "count_to")
    c.finite(c.var(ds, "count", ("observed",)), "count", low=0.0)
    c.finite(c.var(ds, "count_value", ("observed",)), "count_value", nan_ok=True)
    c.var(ds, "dwell_key", ("dwelling",), "i")
    c.finite(c.var(ds, "dwell_sum", ("dwelling",)), "dwell_sum", low=0.0)
    c.finite(c.var(ds, "dwell_n", ("dwelling",)), "dwell_n", low=0.0)

    import json

    touchpoints = json.loads(c.tree.attrs["journeys"])["touchpoints"]
    c.var(ds, "touchpoint", ("touchpoint",), "U")
    c.length(ds, "touchpoint", len(touchpoints), "the touchpoints in 'journeys'")
    heuristics = c.var(ds, "heuristic", ("heuristic",), "U").tolist()
    if heuristics != list(HEURISTICS):
        c.fail(f"heuristic must be {list(HEURISTICS)} (got {heuristics})")
    c.finite(c.var(ds, "heuristic_conversions", ("heuristic", "touchpoint")),
             "heuristic_conversions", low=0.0)
    c.finite(c.var(ds, "heuristic_value", ("heuristic", "touchpoint")), "heuristic_value",
             nan_ok=True)

    order = c.number_attr(attrs, "order_", integer=True)
    if order not in (1, 2, 3, 4):
        c.fail(f"attribute 'order_' must be 1, 2, 3 or 4 (got {order})")
    c.number_attr(attrs, "total_conversions", low=0.0)
    c.number_attr(attrs, "total_value")
    start = np.atleast_1d(np.asarray(attrs.get("start_range", [])))
    if start.dtype.kind not in "iuf" or start.size not in (1, 2):
        c.fail(f"attribute 'start_range' must be one or two numbers (got {start.tolist()})")
    c.finite(start, "start_range", nan_ok=True)
    notes = c.json_attr(attrs, "notes", list)
    if not all(isinstance(x, str) for x in notes):
        c.fail("attribute 'notes' must be a list of text")
    if "censored_count" in ds:  # files from issue 17 on: the censored journeys' expected moves
        cf = c.var(ds, "censored_from", ("censored_pair",), "i").astype(np.int64)
        ct = c.var(ds, "censored_to", ("censored_pair",), "i").astype(np.int64)
        _in_range(c, cf, n, "censored_from")
        _in_range(c, ct, n + k, "censored_to")
        c.finite(c.var(ds, "censored_count", ("censored_pair",)), "censored_count", low=0.0)
    check_experience(c)
    _numeric_group(c, "order_selection")
    _holding(c)


def _holding(c: Checker) -> None:
    """The optional ``holding`` group (holding times, issue 17), checked by the class that
    reads it."""
    if "holding" not in c.tree.children:
        return
    from journeymodel.errors import ModelFileError
    from journeymodel.stats.holding import HoldingTimes

    try:
        HoldingTimes.from_dataset(c.tree["holding"].to_dataset(inherit=False))
    except ModelFileError as exc:
        c.fail(f"group 'holding': {exc}")


def _in_range(c: Checker, idx, n: int, name: str) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)][0]
        c.fail(f"{name} must be in 0..{n - 1} (got {int(bad)})")


def _numeric_group(c: Checker, name: str) -> None:
    """An optional table group: numbers finite or NaN, text as text."""
    if name not in c.tree.children:
        return
    ds = c.tree[name].to_dataset(inherit=False)
    for var, da in ds.variables.items():
        if da.dtype.kind in "OUS":
            continue
        if da.dtype.kind not in "biuf":
            c.fail(f"group {name!r}: variable {var!r} has type {da.dtype}")
        c.finite(da.values, f"group {name!r}: {var}", nan_ok=True)


# ---------------------------------------------------------------------------------------------
# Stages (hidden Markov model)


def check_stages(c: Checker) -> None:
    """Start, transition, emission and exit probabilities of the stages; the fit record."""
    from journeymodel.stats.sequences import EXITS

    ds = c.root
    stages = c.var(ds, "stage", ("stage",), "U")
    if len(stages) < 1:
        c.fail("the model has no stages")
    for dim in ("from_stage", "to_stage"):
        c.var(ds, dim, (dim,), "U")
        c.length(ds, dim, len(stages), "one per stage")
    if len(c.var(ds, "touchpoint", ("touchpoint",), "U")) < 1:
        c.fail("the model has no touchpoints")
    exits = c.var(ds, "exit", ("exit",), "U").tolist()
    if exits != list(EXITS):
        c.fail(f"exit must be {list(EXITS)} (got {exits})")
    c.probabilities(c.var(ds, "startprob", ("stage",)), "startprob")
    c.probabilities(c.var(ds, "transmat", ("from_stage", "to_stage")), "transmat")
    c.probabilities(c.var(ds, "emissionprob", ("stage", "touchpoint")), "emissionprob")
    c.probabilities(c.var(ds, "exitprob", ("stage", "exit")), "exitprob")
    c.finite(c.var(ds, "mean_position", ("stage",)), "mean_position", low=0.0, nan_ok=True)
    c.var(ds, "stage_name", ("stage",), "U")
    c.finite(c.var(ds, "history", ("iteration",)), "history")
    fit = c.json_attr(ds.attrs, "fit", dict)
    c.fields(fit, {"log_likelihood": NUM, "n_parameters": int, "n_observations": NUM,
                   "n_iter": int, "converged": bool, "timing": dict,
                   "censored_survival": bool}, "attribute 'fit'",
             optional=("censored_survival",))  # issue 17 on
    if fit["n_parameters"] < 0 or fit["n_observations"] < 0 or fit["n_iter"] < 0:
        c.fail("attribute 'fit': n_parameters, n_observations and n_iter must be >= 0")
    # NaN timing: a log without times (plain order) has no step gap, origin or span
    c.fields(fit["timing"], dict.fromkeys(fit["timing"], OPT_NUM), "attribute 'fit': timing",
             nan_ok=True)
    check_experience(c)
    _holding(c)
    if "selection" in c.tree.children:
        sel = c.tree["selection"].to_dataset(inherit=False)
        for name in ("n_stages", "log_likelihood", "aic", "bic", "n_parameters"):
            c.finite(c.var(sel, name, ("candidate",), where="group 'selection': "),
                     f"selection {name}", nan_ok=True)


# ---------------------------------------------------------------------------------------------
# Bayesian models: conversion, churn


def _diagnostics(c: Checker, attrs: dict) -> None:
    d = c.json_attr(attrs, "diagnostics", dict)
    c.fields(d, {"r_hat_max": NUM, "ess_bulk_min": NUM, "divergences": int, "chains": int,
                 "draws": int, "r_hat_worst": str, "ess_worst": str}, "attribute 'diagnostics'",
             optional=("r_hat_worst", "ess_worst", "r_hat_max", "ess_bulk_min"))
    if min(d["divergences"], d["chains"], d["draws"]) < 0:
        c.fail("attribute 'diagnostics': counts must be >= 0")


def _posterior(c: Checker, required: dict[str, tuple[str, ...]]) -> xr.Dataset:
    """The posterior group: each required variable with dims (chain, draw, *extra), finite;
    the sample_stats group present with (chain, draw) variables."""
    post = c.child("posterior")
    for name, extra in required.items():
        c.finite(c.var(post, name, ("chain", "draw", *extra), where="posterior: "),
                 f"posterior {name}")
    if post.sizes.get("chain", 0) < 1 or post.sizes.get("draw", 0) < 1:
        c.fail("the posterior has no draws")
    for name, da in post.data_vars.items():
        if da.dims[:2] != ("chain", "draw") or da.dtype.kind not in "biuf":
            c.fail(f"posterior variable {name!r} must be numbers with dims (chain, draw, ...)")
    stats = c.child("sample_stats")
    for name, da in stats.data_vars.items():
        if da.dims[:2] != ("chain", "draw") or da.dtype.kind not in "biuf":
            c.fail(f"sample_stats variable {name!r} must be numbers with dims (chain, draw)")
    return post


def check_conversion(c: Checker) -> None:
    """Trials and conversions per level, the posterior of the level rates."""
    import json

    import numpy as np

    by = tuple(json.loads(c.tree.attrs["params"]).get("by", ("persona",)))
    if not 1 <= len(by) <= 2 or not all(isinstance(b, str) for b in by):
        c.fail(f"parameter 'by' must name one or two groupings (got {list(by)})")
    ds = c.root
    for name in by:
        if len(c.var(ds, name, (name,), "U")) < 1:
            c.fail(f"grouping {name!r} has no levels")
    trials = c.var(ds, "trials", by, "i")
    conversions = c.var(ds, "conversions", by, "i")
    c.finite(trials, "trials", low=0)
    c.finite(conversions, "conversions", low=0)
    if np.any(conversions > trials):
        c.fail("conversions must not exceed trials")
    c.number_attr(ds.attrs, "censored_journeys", integer=True, low=0)
    _diagnostics(c, ds.attrs)
    c.json_attr(ds.attrs, "parameterization", dict)
    c.json_attr(ds.attrs, "timing", dict)
    required = {"mu": (), "logit_levels": by[:1]}
    if len(by) == 2:
        required.update(effect_second=by[1:], effect_cells=by)
    _posterior(c, required)


def check_churn(c: Checker) -> None:
    """Customers per persona, the per-persona parameter posteriors, the at-risk table."""
    import json

    from journeymodel.models.churn.graph import PARAMS

    model = json.loads(c.tree.attrs["params"]).get("model", "sbg")
    ds = c.root
    personas = c.var(ds, "persona", ("persona",), "U")
    if len(personas) < 1:
        c.fail("the model has no personas")
    c.finite(c.var(ds, "customers", ("persona",), "i"), "customers", low=0)
    c.finite(c.var(ds, "events", ("persona",), "i"), "events", low=0)
    info = c.json_attr(ds.attrs, "info", dict)
    c.fields(info, {"time_unit": str, "unit_seconds": OPT_NUM, "origin": str, "notes": list},
             "attribute 'info'", optional=("notes",))
    if info["unit_seconds"] is not None and info["unit_seconds"] <= 0:
        c.fail(f"attribute 'info': unit_seconds must be > 0 (got {info['unit_seconds']})")
    _diagnostics(c, ds.attrs)
    post = _posterior(c, dict.fromkeys(PARAMS[model], ("persona",)))
    for name in PARAMS[model]:
        c.finite(post[name].values, f"posterior {name}", low=0.0)
        if not (post[name].values > 0).all():
            c.fail(f"posterior {name} must be > 0")
    _at_risk(c, model, len(personas))


def _at_risk(c: Checker, model: str, n_personas: int) -> None:
    cells = c.child("at_risk")
    where = "group 'at_risk': "
    persona = c.var(cells, "cell_persona", ("cell",), "i", where=where)
    if persona.size and (persona.min() < 0 or persona.max() >= n_personas):
        c.fail(f"{where}cell_persona must be in 0..{n_personas - 1}")
    names = ("x", "t_x", "T") if model == "bgnbd" else ("cell_age", "cell_count")
    values = {n: c.finite(c.var(cells, n, ("cell",), where=where), f"at_risk {n}", low=0.0)
              for n in names}
    if model == "bgnbd":
        if (values["t_x"] > values["T"] * (1 + 1e-9) + 1e-9).any():
            c.fail(f"{where}recency t_x must not exceed age T")
        if "customer_id" in cells:
            c.var(cells, "customer_id", ("cell",), "U", where=where)


CHECKS = {"markov": check_markov, "stages": check_stages, "conversion": check_conversion,
          "churn": check_churn}


# ---------------------------------------------------------------------------------------------
# Entry point


def check_tree(tree: xr.DataTree, model_type: str, cls: type, source: str) -> None:
    """Check a loaded model tree of ``model_type`` before ``cls.from_datatree`` builds it.

    Raises
    ------
    ModelFileError
        Naming ``source`` and the first problem found.
    """
    import numpy as np

    c = Checker(tree, source, model_type)
    with np.errstate(all="ignore"):
        check_common(c, cls)
        specific: Callable[[Checker], None] | None = CHECKS.get(model_type)
        if specific is not None:
            specific(c)


# ---------------------------------------------------------------------------------------------
# Segments (mixtures over customers)


def check_segments(c: Checker) -> None:
    """Shares, the segments' processes (Markov chains or stages HMMs), the profile, the path
    and transition tables and the K tried."""
    import json

    ds = c.root
    kind = json.loads(c.tree.attrs["params"]).get("kind", "markov")
    if kind not in SEGMENT_KINDS:
        c.fail(f"parameter 'kind' must be one of {SEGMENT_KINDS} (got {kind!r})")
    names = c.var(ds, "segment", ("segment",), "U")
    K = len(names)
    if K < 1:
        c.fail("the model has no segments")
    n_sym = len(c.var(ds, "touchpoint", ("touchpoint",), "U"))
    if n_sym < 1:
        c.fail("the model has no touchpoints")
    c.probabilities(c.var(ds, "weight", ("segment",)), "weight")
    for name in ("customers", "journeys"):
        c.finite(c.var(ds, name, ("segment",)), name, low=0.0)
    c.finite(c.var(ds, "outcomes", ("segment", "outcome")), "outcomes", low=0.0)
    c.length(ds, "outcome", 4, "conversion, churn, dropoff, censored")
    c.finite(c.var(ds, "steps", ("segment", "touchpoint")), "steps", low=0.0)
    c.finite(c.var(ds, "history", ("iteration",)), "history")
    if kind == "markov":
        c.var(ds, "from_state", ("from_state",), "U")
        c.var(ds, "to_state", ("to_state",), "U")
        c.length(ds, "from_state", n_sym + 1, "the touchpoints and (start)")
        c.length(ds, "to_state", n_sym + 3, "the touchpoints and three exits")
        c.probabilities(c.var(ds, "theta", ("segment", "from_state", "to_state")), "theta")
    else:
        for dim in ("stage", "from_stage", "to_stage", "exit"):
            c.var(ds, dim, (dim,), "U")
        n_st = ds.sizes.get("stage", 0)
        for dim in ("from_stage", "to_stage"):
            c.length(ds, dim, n_st, "one per stage")
        c.length(ds, "exit", 4, "continue, conversion, churn, dropoff")
        c.probabilities(c.var(ds, "startprob", ("segment", "stage")), "startprob")
        c.probabilities(c.var(ds, "transmat", ("segment", "from_stage", "to_stage")),
                        "transmat")
        c.probabilities(c.var(ds, "emissionprob", ("segment", "stage", "touchpoint")),
                        "emissionprob")
        c.probabilities(c.var(ds, "exitprob", ("segment", "stage", "exit")), "exitprob")
    fit = c.json_attr(ds.attrs, "fit", dict)
    c.fields(fit, {"log_likelihood": NUM, "n_parameters": int, "n_customers": int,
                   "n_iter": int, "converged": bool, "censored_survival": bool},
             "attribute 'fit'", optional=("censored_survival",))  # issue 17 on
    if min(fit["n_parameters"], fit["n_customers"], fit["n_iter"]) < 0:
        c.fail("attribute 'fit': n_parameters, n_customers and n_iter must be >= 0")
    _holding(c)
    _segment_tables(c, K)


def _segment_tables(c: Checker, K: int) -> None:
    """The paths, transitions and selection groups: segment indices in range, numbers finite."""
    import numpy as np

    columns = {"paths": {"segment": "i", "kind": "U", "rank": "i", "path": "U",
                         "journeys": "f", "share": "f", "lift": "f"},
               "transitions": {"segment": "i", "rank": "i", "from": "U", "to": "U",
                               "probability": "f", "journeys": "f"}}
    for group, spec in columns.items():
        g = c.child(group)
        where = f"group {group!r}: "
        for name, kind in spec.items():
            values = c.var(g, name, ("row",), kind, where=where)
            if kind == "f":
                c.finite(values, f"{group} {name}", low=0.0,
                         high=1.0 if name in ("share", "probability") else None)
        seg = g["segment"].values.astype(np.int64)
        _in_range(c, seg, K, f"{group} segment")
    sel = c.child("selection")
    for name in ("n_segments", "log_likelihood", "aic", "bic", "n_parameters"):
        c.finite(c.var(sel, name, ("candidate",), where="group 'selection': "),
                 f"selection {name}")


CHECKS["segments"] = check_segments
