"""The churn models as hand-written log densities for nutpie (:mod:`journeymodel.fit.native`).

:func:`native_density` gives, for a churn model's sampling key and data (as
:meth:`journeymodel.models.churn.model.ChurnModel` hands them to
:func:`journeymodel.fit.bayes.sample`), the :class:`~journeymodel.fit.native.NativeDensity`
of the model :func:`journeymodel.models.churn.graph.build_pymc` builds: the same free
variables in the same order, the same stored variables and chains' starts, the log density
computed by :mod:`journeymodel.models.churn.kernels`. Models without a hand-written density
(BG/NBD, spend) give None and are compiled from PyMC.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from journeymodel.fit.logdensity import Variable
from journeymodel.models.churn.priors import COORDS, PRIOR_SCALE, SIGMA_PRIOR

#: Models with a hand-written density.
NATIVE_MODELS = ("sbg", "weibull")
#: Their published parameters, stored after the pooling level (graph.PARAMS).
_PARAMS = {"sbg": ("alpha", "beta"), "weibull": ("shape", "scale")}
#: Sampling modes of a coordinate (kernels.py): own prior, pooled with mu integrated out,
#: non-centred.
OWN, POOLED, NON_CENTRED = 0, 1, 2
#: The start of ``log sigma`` before its jitter: PyMC's support point of ``LogNormal(m, s)``,
#: ``exp(m + s**2 / 2)``, which PyMC computes in float32 (its constants' type), logged.
LOG_SIGMA_START = float(np.log(np.float64(np.exp(np.float32(
    SIGMA_PRIOR[0] + 0.5 * SIGMA_PRIOR[1] ** 2)))))


def native_density(key: Hashable, data: Mapping[str, Any] | None):
    """The hand-written density of churn model ``key`` on ``data``, or None.

    ``key``: ``("journeymodel.churn", model, n_personas, non_centred coordinates, *extra)``
    (``extra``: ``"spend"``, and the pooling ``"none"``), as ChurnModel builds it.
    """
    if not isinstance(key, tuple) or len(key) < 4 or data is None:
        return None
    _, model, n_p, weak, *extra = key
    if model not in NATIVE_MODELS or "spend" in extra or set(extra) - {"none"}:
        return None
    return density(model, int(n_p), frozenset(weak), "none" if "none" in extra else
                   "partial", data)


def density(model: str, n_personas: int, non_centered: frozenset[str], pooling: str,
            data: Mapping[str, Any]):
    """The :class:`~journeymodel.fit.native.NativeDensity` of ``build_pymc(model,
    n_personas, data, data["prior_loc"], non_centered, pooling=pooling)``."""
    from journeymodel.fit.native import NativeDensity, jitter_start

    t0 = time.perf_counter()
    from journeymodel.models.churn import kernels

    modes = [OWN if n_personas == 1 or pooling == "none" else
             NON_CENTRED if name in non_centered else POOLED for name in COORDS[model]]
    free, derived, support, head = layout(model, n_personas, modes,
                                          np.asarray(data["prior_loc"], dtype=np.float64))
    length, stats = (sbg_table(data, n_personas) if model == "sbg"
                     else weibull_table(data, n_personas))
    n_dim = int(sum(np.prod(v.shape, dtype=int) for v in free))
    n_expanded = n_dim + int(sum(np.prod(v.shape, dtype=int) for v in derived))
    packed = pack(n_personas, len(modes), length, n_dim, n_expanded, head, stats)
    logp_callback, expand_callback = kernels.callbacks(model)
    return NativeDensity(
        logp=getattr(kernels, f"{model}_logp"), expand=getattr(kernels, f"{model}_expand"),
        logp_address=logp_callback.address, expand_address=expand_callback.address,
        data=packed, free=free, derived=derived, initial_point=jitter_start(support, free),
        reparameterized=tuple(v.name for v in free if v.name.endswith("_log__")),
        coords={"persona": pd.Index(range(n_personas))},
        keep=(logp_callback, expand_callback), timings={"numba": time.perf_counter() - t0})


def layout(model: str, n_personas: int, modes: list[int], prior_loc: np.ndarray):
    """Free and derived variables (PyMC's order), the support point (flat, transformed) and
    the coordinates' rows of the data head (mode, offsets, prior centre and scale, prior
    of ``log sigma``)."""
    free, derived_sigma, derived_coord, support, head = [], [], [], [], []
    persona = ("persona",)
    log_sigma = LOG_SIGMA_START
    offset = 0
    for j, (name, mode) in enumerate(zip(COORDS[model], modes, strict=True)):
        loc, scale = float(prior_loc[j]), PRIOR_SCALE[model][j]
        if mode == OWN:
            free.append(Variable(name, (n_personas,), persona))
            support += [loc] * n_personas
            head.append([mode, -1, offset, -1, loc, scale, *SIGMA_PRIOR])
            offset += n_personas
            continue
        free.append(Variable(f"sigma_{name}_log__", ()))
        derived_sigma.append(Variable(f"sigma_{name}", ()))
        if mode == POOLED:
            free += [Variable(name, (n_personas,), persona), Variable(f"eta_{name}", ())]
            derived_coord.append(Variable(f"mu_{name}", ()))
            support += [log_sigma] + [0.0] * n_personas + [0.0]
            head.append([mode, offset, offset + 1, offset + 1 + n_personas, loc, scale,
                         *SIGMA_PRIOR])
        else:
            free += [Variable(f"mu_{name}", ()), Variable(f"z_{name}", (n_personas,), persona)]
            derived_coord.append(Variable(name, (n_personas,), persona))
            support += [log_sigma, loc] + [0.0] * n_personas
            head.append([mode, offset, offset + 1, offset + 2, loc, scale, *SIGMA_PRIOR])
        offset += n_personas + 2
    derived = (*derived_sigma, *derived_coord,
               *(Variable(n, (n_personas,), persona) for n in _PARAMS[model]))
    return tuple(free), derived, np.array(support), np.array(head, dtype=np.float64)


def pack(n_personas: int, n_coords: int, n_periods: int, n_dim: int, n_expanded: int,
         head: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """The one float64 array the callbacks read (layout: kernels.py)."""
    sizes = [n_personas, n_coords, n_periods, n_dim, n_expanded]
    body = np.concatenate([np.array(sizes, dtype=np.float64), head.ravel(), stats])
    return np.ascontiguousarray(np.concatenate([[body.size + 1.0], body]))


def sbg_table(data: Mapping[str, Any], n_personas: int) -> tuple[int, np.ndarray]:
    """sBG counts by persona and period ``j`` = 0..T-1: ``T`` and, flat, the (2, P, T)
    table of customers who survive period ``j + 1`` (still active after it) and customers
    lost in it.

    From the count cells of :func:`journeymodel.models.churn.data` (``lost_n`` of persona
    ``lost_p`` lost in period ``lost_t`` >= 1, ``alive_n`` still active after ``alive_t``
    renewals): a customer lost in period t survived periods 1..t-1; one active after t
    renewals survived periods 1..t.
    """
    lost_p, alive_p = (np.asarray(data[k], dtype=np.int64) for k in ("lost_p", "alive_p"))
    lost_t, alive_t = (np.rint(np.asarray(data[k], dtype=np.float64)).astype(np.int64)
                       for k in ("lost_t", "alive_t"))
    lost_n, alive_n = (np.asarray(data[k], dtype=np.float64) for k in ("lost_n", "alive_n"))
    n_t = int(max(lost_t.max(initial=0), alive_t.max(initial=0)))
    ends = np.zeros((n_personas, n_t + 1))  # customers whose survival ends after j periods
    np.add.at(ends, (alive_p, alive_t), alive_n)
    np.add.at(ends, (lost_p, lost_t - 1), lost_n)
    lost = np.zeros((n_personas, n_t + 1))
    np.add.at(lost, (lost_p, lost_t - 1), lost_n)
    # survive period j + 1: survival ends after more than j periods
    at_risk = np.cumsum(ends[:, ::-1], axis=1)[:, ::-1]
    survive = at_risk[:, 1:]
    return n_t, np.stack([survive, lost[:, :n_t]]).ravel()


def weibull_table(data: Mapping[str, Any], n_personas: int) -> tuple[int, np.ndarray]:
    """The Weibull statistics as kernels.weibull_logp reads them: the number of rows and,
    flat, churned weight and weighted log durations per persona, row offsets, log durations
    and weights (the layout of ``churn.data.weibull_rows``)."""
    offsets = np.asarray(data["offsets"], dtype=np.float64)
    log_d = np.asarray(data["log_d"], dtype=np.float64)
    if offsets.shape != (n_personas + 1,):
        raise ValueError(f"offsets of {offsets.size - 1} personas for {n_personas}")
    parts = [data["events"], data["events_log_d"], offsets, log_d, data["weight"]]
    return log_d.size, np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in parts])
