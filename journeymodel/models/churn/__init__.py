"""Churn by persona: Bayesian retention models (sBG, Weibull, BG/NBD) with partial pooling.

Modules: ``model`` (:class:`ChurnModel`: parameters, fit, model files), ``data`` (per-customer
summaries reduced to each likelihood's distinct tuples), ``likelihoods`` (closed forms, numpy and
PyTensor), ``pooling`` (centred or non-centred per coordinate), ``graph`` (the PyMC graph),
``results`` (summary, retention curves, forecasts), ``simulate`` (logs with known parameters).
The per-customer summaries, which add up over parts of a log, are
:mod:`journeymodel.stats.customers`.

``ChurnModel`` is re-exported here lazily (PEP 562), so importing one module of the package does
not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journeymodel.lazy import exports

__all__ = ["ChurnModel"]
__getattr__ = exports(__name__, {"ChurnModel": "journeymodel.models.churn.model"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.churn.model import ChurnModel
