"""Conversion by persona: a hierarchical Bayesian model fitted on counts.

Modules: ``model`` (:class:`ConversionModel`: parameters, fit, posterior rates, model files),
``graph`` (the PyMC graph and the rule that picks its parameterisation), ``results`` (printed
summary and forecast). The counts it fits on, which add up over parts of a log, are
:mod:`journeymodel.stats.conversion`.

``ConversionModel`` is re-exported here lazily (PEP 562), so importing one module of the
package does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journeymodel.lazy import exports

__all__ = ["ConversionModel"]
__getattr__ = exports(__name__, {"ConversionModel": "journeymodel.models.conversion.model"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.conversion.model import ConversionModel
