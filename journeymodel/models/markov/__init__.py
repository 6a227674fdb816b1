"""Markov journey models: the chain and its solves, attribution, prediction, order selection.

``MarkovJourneyModel`` lives in :mod:`journeymodel.models.markov.model`; it is re-exported here
lazily (PEP 562), so importing one module of the package does not load the others. What the
model is fitted from (transition counts, heuristics, totals, the experience) is counted in
:mod:`journeymodel.stats.transitions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journeymodel.lazy import exports

__all__ = ["MarkovJourneyModel"]
__getattr__ = exports(__name__, {"MarkovJourneyModel": "journeymodel.models.markov.model"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from journeymodel.models.markov.model import MarkovJourneyModel
